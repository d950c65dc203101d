#!/usr/bin/env python3
"""Imports every ComfyUI console log in a folder, replays each on the machine
its log names (--profile captured when the log has machine lines, else
auto = rtx4090-64g) and prints a markdown table: import result, what was
inferred, and simulated against measured time per complete prompt.

A prompt is complete when it has a 'Prompt executed' time, did not fail, holds
at least one model load or pass (else nothing in it is simulated), and (for the
first prompt) the log shows its start: the importer warns when prompt 1
began before the log did. Logs are read, never copied: docs/FIDELITY.md keeps
only the figures.

usage: import_corpus_table.py LOG_DIR [--bin build/release/residency] [--policy comfy-classic]
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

def run(args, log, tmp):
    name = os.path.splitext(os.path.basename(log))[0]
    out = os.path.join(tmp, name + ".jsonl")
    imp = subprocess.run([args.bin, "import", "comfyui-log", log, "--out", out], capture_output=True, text=True)
    row = {"log": name, "imported": imp.returncode == 0}
    if imp.returncode != 0:
        row["why"] = imp.stderr.strip().split("\n")[-1][:160]
        return row
    lines = imp.stderr.strip().split("\n")
    row["warnings"] = sum(1 for l in lines if l.startswith("warning:"))
    row["summary"] = [l.strip() for l in lines if l.startswith("  ")]
    # Prompts that failed, and prompts whose time holds work the trace cannot
    # replay (nothing in it to simulate, or a pass on a model loaded before the
    # log began): the importer names both.
    left_out = {int(m.group(1)) for m in re.finditer(r"prompt (\d+) failed", imp.stderr)}
    left_out |= {int(m.group(1)) for m in re.finditer(r"prompt (\d+)[^\n]*not comparable", imp.stderr)}
    with open(out) as f:
        header = json.loads(f.readline())
    machine = header.get("machine")
    row["machine"] = ("unified %d GB" % (machine["ram"] >> 30) if machine and machine.get("unified") else
                      "%d GB VRAM, %d GB RAM" % (machine["vram"] >> 30, machine["ram"] >> 30) if machine else "not in log")
    profile = "captured" if machine else "auto"
    rep = subprocess.run([args.bin, "replay", out, "--profile", profile, "--policy", args.policy, "--json"],
                         capture_output=True, text=True)
    # 3: the replay ran, and a prompt failed or memory ran out (its JSON says which).
    if rep.returncode not in (0, 1, 3):
        row["why"] = "replay: " + rep.stderr.strip()[:160]
        return row
    result = json.loads(rep.stdout)
    whole_first = "prompt 1 began before the log did" not in imp.stderr
    errors, sim_failed = [], []
    for p in result["prompts"]:
        measured = p.get("measured_wall_ns", -1)
        if measured <= 0 or p["prompt"] in left_out or (p["prompt"] == 1 and not whole_first):
            continue
        if p.get("failed"):
            sim_failed.append(p["prompt"])  # the real prompt finished; the simulated one did not
            continue
        errors.append((p["prompt"], (p["wall_ns"] - measured) / measured))
    row["sim_failed"] = sim_failed
    row["profile"] = profile
    row["oom"] = bool(result.get("oom"))
    row["errors"] = errors
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("log_dir")
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", "build", "release", "residency"))
    ap.add_argument("--policy", default="comfy-classic")
    args = ap.parse_args()
    logs = sorted(os.path.join(args.log_dir, f) for f in os.listdir(args.log_dir) if f.endswith(".txt"))
    all_errors = []
    sim_failures = 0
    print("| log | machine (from the log) | import | inferred | per complete prompt: simulated vs measured | median |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for log in logs:
            r = run(args, log, tmp)
            if not r["imported"]:
                print("| %s | | refused: %s | | | |" % (r["log"], r["why"]))
                continue
            if "why" in r:
                print("| %s | %s | imported | | %s | |" % (r["log"], r["machine"], r["why"]))
                continue
            inferred = r["summary"][0] if r["summary"] else ""
            errs = ", ".join(["p%d %+.0f%%" % (p, 100 * e) for p, e in r["errors"]] +
                             ["p%d failed in the simulator" % p for p in r["sim_failed"]]) or "no complete prompt"
            sim_failures += len(r["sim_failed"])
            med = statistics.median(abs(e) for _, e in r["errors"]) if r["errors"] else None
            all_errors += [abs(e) for _, e in r["errors"]]
            print("| %s | %s | %d warnings%s | %s | %s | %s |" % (
                r["log"], r["machine"], r["warnings"], ", OOM" if r["oom"] else "", inferred, errs,
                "%.1f %%" % (100 * med) if med is not None else "-"))
    if all_errors:
        print("\n%d complete prompts: median |error| %.1f %%, p90 %.1f %%" % (
            len(all_errors), 100 * statistics.median(all_errors),
            100 * sorted(all_errors)[int(0.9 * (len(all_errors) - 1))]))
    if sim_failures:
        print("%d complete real prompts failed in the simulator (not in the figures above)" % sim_failures)


if __name__ == "__main__":
    sys.exit(main())
