#!/usr/bin/env bash
# The real-world scenarios in traces/scenarios/ (see its README): each
# expected outcome, asserted on `residency replay --json`.
set -u
source "$(dirname "$0")/cli_lib.sh" "$@"
sc=$root/traces/scenarios
# Exit 3 is a failed prompt: some scenarios assert exactly that, below.
replay() {
  "$bin" replay "$1" --profile "$2" --policy "$3" --json > "$4"
  local rc=$?
  [ $rc -eq 0 ] || [ $rc -eq 3 ] || { echo "FAIL: replay $* -> exit $rc"; fail=1; }
}

replay "$sc/wan22-reload-every-run.jsonl" "$sc/rtx5090-24g-64g-gen1.profile.json" "$sc/comfy-v022.policy.json" "$tmp/v022.json"
replay "$sc/wan22-reload-every-run.jsonl" "$sc/rtx5090-24g-64g-gen1.profile.json" ram-cache-14076 "$tmp/cache.json"
replay "$sc/ltx23-threaded-loader-first-run.jsonl" rtx5060-64g comfy-classic "$tmp/classic.json"
replay "$sc/ltx23-threaded-loader-first-run.jsonl" rtx5060-64g comfy-13802 "$tmp/threaded.json"
replay "$sc/ltx23-threaded-loader-first-run-linux.jsonl" rtx5090-96g comfy-classic "$tmp/linux-classic.json"
replay "$sc/ltx23-threaded-loader-first-run-linux.jsonl" rtx5090-96g comfy-13802 "$tmp/linux-threaded.json"
replay "$sc/dgx-spark-flux2-double-memory.jsonl" dgx-spark-128g comfy-classic "$tmp/spark-mmap.json"
replay "$sc/dgx-spark-flux2-double-memory.jsonl" dgx-spark-128g comfy-13802 "$tmp/spark-threaded.json"
replay "$sc/dgx-spark-flux2-double-memory.jsonl" dgx-spark-128g no-mmap-13609 "$tmp/spark-readinto.json"
python3 - "$tmp" <<'PY' || fail=1
import json, sys
d = sys.argv[1]
r = {k: json.load(open(f"{d}/{k}.json")) for k in ("v022", "cache", "classic", "threaded", "linux-classic", "linux-threaded")}
spark = {k: json.load(open(f"{d}/spark-{k}.json")) for k in ("mmap", "threaded", "readinto")}
ok = True
def check(cond, msg):
    global ok
    print(("ok   " if cond else "FAIL ") + msg)
    ok = ok and cond
for k, v in r.items():
    check(not v["oom"] and not v["violations"] and not v["failed_ops"], f"{k}: runs clean")
reads = lambda k: [p["disk_read_bytes"] for p in r[k]["prompts"]]
v, c = reads("v022"), reads("cache")
check(len(v) == 3 and all(x >= 0.9 * v[0] for x in v[1:]) and v[0] > 30e9,
      f"#14076 without a RAM cache every run re-reads the models: {[round(x / 1e9, 2) for x in v]} GB")
check(c[0] > 30e9 and all(x <= 0.01 * c[0] for x in c[1:]),
      f"#14076 with ram-cache-14076 runs 2 and 3 read about nothing: {[round(x / 1e9, 2) for x in c]} GB")
speedup = r["classic"]["makespan_ns"] / r["threaded"]["makespan_ns"]
reported = 120.73 / 90.43
check(abs(speedup / reported - 1) <= 0.10,
      f"seed 001 (RTX 5060): the threaded loader's speedup lands within 10 % of the reported one: "
      f"{speedup:.2f}x simulated vs {reported:.2f}x reported")
linux = r["linux-classic"]["makespan_ns"] / r["linux-threaded"]["makespan_ns"]
check(linux > 1.0, f"seed 001 (Linux RTX 5090): the threaded loader is faster: {linux:.2f}x simulated vs "
      f"{49.66 / 35.50:.2f}x reported (direction only, see traces/scenarios/README.md)")
m = spark["mmap"]
check(m["oom"] and "unified-memory allocation" in m["oom_detail"]["message"] and "page cache" in m["oom_detail"]["message"],
      "#10896 on the DGX Spark: the mmap path (comfy-classic) runs out of memory, page cache and device copy together: "
      + m.get("oom_detail", {}).get("message", "no OOM"))
t = spark["threaded"]
check(not t["oom"] and not t["failed_ops"] and not t["violations"] and t["peak_page_cache_bytes"] == 0,
      f"#10896: a no-mmap loader through a staging ring (comfy-13802) fits: {t['makespan_ns'] / 1e9:.1f} s, no page cache kept")
ri = spark["readinto"]
check(not ri["oom"] and ri["failed_ops"] and "needs" in ri["failed_ops"][0],
      "#13609's whole-file readinto needs model + device copy at once on unified memory: refused, not OOM: "
      + (ri["failed_ops"][0][:120] if ri["failed_ops"] else "accepted"))
sys.exit(0 if ok else 1)
PY
# A workflow switch (#14076's pattern): model objects deleted and built again
# from the same files. Keyed by file, the RAM cache serves the third prompt.
replay "$sc/workflow-switch-rebuilds-models.jsonl" "$sc/rtx5090-24g-64g-gen1.profile.json" "$sc/comfy-v022.policy.json" "$tmp/switch-v022.json"
replay "$sc/workflow-switch-rebuilds-models.jsonl" "$sc/rtx5090-24g-64g-gen1.profile.json" ram-cache-14076 "$tmp/switch-cache.json"
python3 - "$tmp" <<'PY' || fail=1
import json, sys
d = sys.argv[1]
v, c = (json.load(open(f"{d}/switch-{k}.json")) for k in ("v022", "cache"))
ok = True
for r in (v, c):
    ok &= not r["oom"] and not r["violations"] and not r["failed_ops"] and r["finalizers"] == 3
rv, rc = ([p["disk_read_bytes"] for p in r["prompts"]] for r in (v, c))
ok &= rv[2] >= 0.9 * rv[0] and rc[2] == 0 and c["ram_cache_hits"] == 2
print(("ok   " if ok else "FAIL ") + f"workflow switch: rebuilt models read {rv[2] / 1e9:.2f} GB without a RAM cache, "
      f"{rc[2] / 1e9:.2f} GB with ram-cache-14076 ({c['ram_cache_hits']} hits); every deleted model finalized")
sys.exit(0 if ok else 1)
PY
[ $fail -eq 0 ] && echo "scenario checks pass"
exit $fail
