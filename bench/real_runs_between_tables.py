#!/usr/bin/env python3
"""How far one table's real runs are from another's: the floor under the
simulator's error in docs/FIDELITY.md.

  python3 bench/real_runs_between_tables.py DIR_A DIR_B

DIR_A and DIR_B hold real runs saved by `bench/fidelity_table.py --save-real`
(one TRACE.json per trace). For every prompt that loaded (median wall time
of 20 ms or more in both), the median over DIR_A's runs is compared with the
median over DIR_B's, |A - B| / B, as `fidelity` compares the simulator with
the median of the real runs; prints the median, p95 and max over the prompts.
"""
import json
import pathlib
import statistics
import sys

from fidelity_table import percentile  # this folder; the statistic `residency fidelity` uses


def medians(folder):
    out = {}
    for path in sorted(pathlib.Path(folder).glob("*.json")):
        runs = json.loads(path.read_text())
        for prompt in runs["runs"][0]["prompts"]:
            walls = [run["prompts"][prompt] for run in runs["runs"]]
            out[(runs["trace"], int(prompt))] = statistics.median(walls)
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    a, b = medians(sys.argv[1]), medians(sys.argv[2])
    errors = [100 * abs(a[k] - b[k]) / b[k] for k in sorted(a) if k in b and min(a[k], b[k]) >= 20e6]
    if not errors:
        sys.exit("no prompt that loaded is in both folders")
    print(f"{len(errors)} prompts: |A - B| / B median {statistics.median(errors):.1f} %, "
          f"p95 {percentile(errors, 0.95):.1f} %, max {max(errors):.1f} %")


if __name__ == "__main__":
    main()
