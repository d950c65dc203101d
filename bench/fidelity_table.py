#!/usr/bin/env python3
"""The docs/FIDELITY.md table: `residency fidelity` on every bundled example
trace with one calibrated profile, then the error over all prompts that loaded.

  python3 bench/fidelity_table.py --models /var/tmp/fid [--scale 0.05] [--repeat 3]

Without --profile, `fidelity` calibrates into MODELS/calibrated.json once (delete
it to measure afresh). Prints one line per trace and the summary the docs quote.
"""
import argparse
import pathlib
import re
import statistics
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
ROW = re.compile(r"^(cold|warm)\s+(\d+)\s+\S+ \S+\s+\S+ \S+\s+(no load|[+-][\d.]+%)\s+([\d.]+)%", re.M)
TOTAL = re.compile(r"^total: real (\S+ \S+), simulated (\S+ \S+)", re.M)


def percentile(values, q):
    """Linear interpolation between closest ranks, as `residency fidelity` does."""
    s = sorted(values)
    if not s:
        return float("nan")
    pos = q * (len(s) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", required=True, help="folder for the scaled model files and calibrated.json")
    ap.add_argument("--bin", default=str(ROOT / "build/release/residency"))
    ap.add_argument("--profile", help="calibrated profile (default: MODELS/calibrated.json, measured if missing)")
    ap.add_argument("--scale", default="0.05")
    ap.add_argument("--repeat", default="3")
    ap.add_argument("--policy", default="ram-lru")
    ap.add_argument("--device-capacity", default="4GiB")
    a = ap.parse_args()

    traces = sorted((ROOT / "traces/examples").glob("*.jsonl"))
    errors = {"cold": [], "warm": []}
    print("| trace | cold |error| | warm |error| | real spread (median) | total real / simulated |")
    print("|---|---|---|---|---|")
    for trace in traces:
        cmd = [a.bin, "fidelity", str(trace), "--models", a.models, "--scale", a.scale, "--repeat", a.repeat,
               "--policy", a.policy, "--device-capacity", a.device_capacity]
        if a.profile:
            cmd += ["--profile", a.profile]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"{trace.name}: residency fidelity exited {out.returncode}:\n{out.stderr}")
        cells = {"cold": [], "warm": []}
        spreads = []
        for pass_, _prompt, err, spread in ROW.findall(out.stdout):
            if err == "no load":
                continue
            cells[pass_].append(abs(float(err.rstrip("%"))))
            spreads.append(float(spread))
        for k in cells:
            errors[k] += cells[k]
        total = TOTAL.search(out.stdout)
        fmt = lambda v: ", ".join(f"{e:.1f} %" for e in v) or "(no load)"
        spread = f"{statistics.median(spreads):.1f} %" if spreads else "-"
        print(f"| {trace.stem} | {fmt(cells['cold'])} | {fmt(cells['warm'])} | {spread} | "
              f"{total.group(1) if total else '?'} / {total.group(2) if total else '?'} |", flush=True)
    both = errors["cold"] + errors["warm"]
    print()
    for name, v in (("all", both), ("cold", errors["cold"]), ("warm", errors["warm"])):
        if v:
            print(f"{name}: {len(v)} prompts, median |error| {statistics.median(v):.1f} %, "
                  f"p95 {percentile(v, 0.95):.1f} %, max {max(v):.1f} %")


if __name__ == "__main__":
    main()
