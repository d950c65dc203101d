#!/usr/bin/env python3
"""The docs/FIDELITY.md table: `residency fidelity` on every bundled example
trace with one calibrated profile, then the error over all prompts that loaded.

  python3 bench/fidelity_table.py --models /var/tmp/fid [--scale 0.05] [--repeat 3]

With --save-real DIR each trace's real runs are kept in DIR/TRACE.json; with
--real DIR the table simulates against those instead of running the traces
again, so two simulator builds or two profiles meet the same real runs.

Without --profile, `fidelity` calibrates into MODELS/calibrated.json once (delete
it to measure afresh). Prints one line per trace and the summary the docs quote:
the simulator's |error| over every prompt that loaded, and, as the machine's
own floor, each real run's error against the median of the other runs.
"""
import argparse
import json
import pathlib
import statistics
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


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
    runs = ap.add_mutually_exclusive_group()
    runs.add_argument("--save-real", metavar="DIR", help="keep each trace's real runs in DIR/TRACE.json")
    runs.add_argument("--real", metavar="DIR", help="simulate against the real runs in DIR instead of running")
    a = ap.parse_args()
    if a.save_real:
        pathlib.Path(a.save_real).mkdir(parents=True, exist_ok=True)

    traces = sorted((ROOT / "traces/examples").glob("*.jsonl"))
    errors = {"cold": [], "warm": []}
    floor = {"cold": [], "warm": []}  # each real run against the median of the others
    print("| trace | cold |error| | warm |error| | real spread (median) | total real / simulated |")
    print("|---|---|---|---|---|")
    for trace in traces:
        cmd = [a.bin, "fidelity", str(trace), "--models", a.models, "--scale", a.scale, "--repeat", a.repeat,
               "--policy", a.policy, "--device-capacity", a.device_capacity, "--json"]
        if a.profile:
            cmd += ["--profile", a.profile]
        if a.save_real:
            cmd += ["--save-real-runs", str(pathlib.Path(a.save_real) / f"{trace.stem}.json")]
        if a.real:
            cmd += ["--real-runs", str(pathlib.Path(a.real) / f"{trace.stem}.json")]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"{trace.name}: residency fidelity exited {out.returncode}:\n{out.stderr}")
        report = json.loads(out.stdout)
        cells = {"cold": [], "warm": []}
        spreads = []
        for p in report["prompts"]:
            if p["no_load"]:
                continue
            cells[p["pass"]].append(100 * abs(p["error"]))
            floor[p["pass"]] += [100 * e for e in p["real_vs_real"]]
            spreads.append(100 * p["real_spread"])
        for k in cells:
            errors[k] += cells[k]
        fmt = lambda v: ", ".join(f"{e:.1f} %" for e in v) or "(no load)"
        spread = f"{statistics.median(spreads):.1f} %" if spreads else "-"
        print(f"| {trace.stem} | {fmt(cells['cold'])} | {fmt(cells['warm'])} | {spread} | "
              f"{seconds(report['real_total_ns'])} / {seconds(report['sim_total_ns'])} |", flush=True)
    print()
    for name, v, f in (("all", errors["cold"] + errors["warm"], floor["cold"] + floor["warm"]),
                       ("cold", errors["cold"], floor["cold"]), ("warm", errors["warm"], floor["warm"])):
        if v:
            line = (f"{name}: {len(v)} prompts, simulator |error| median {statistics.median(v):.1f} %, "
                    f"p95 {percentile(v, 0.95):.1f} %, max {max(v):.1f} %")
            if f:
                line += (f"; real against real ({len(f)} run-prompts) median {statistics.median(f):.1f} %, "
                         f"p95 {percentile(f, 0.95):.1f} %")
            print(line)


def seconds(ns):
    return f"{ns / 1e9:.2f} s" if ns >= 1e9 else f"{ns / 1e6:.1f} ms"


if __name__ == "__main__":
    main()
