#!/usr/bin/env bash
# The runtime commands as a user meets them: gen-model, load (every device
# and method, --verify, malformed files), run with --capture and a replay of
# the capture, calibrate into a profile that replay accepts.
set -u
source "$(dirname "$0")/cli_lib.sh" "$@"
trace=$root/tests/data/tiny-swap.jsonl
for m in a b lora; do
  expect 0 "wrote $tmp/models/$m.safetensors" -- "$bin" gen-model --trace "$trace" --model $m --out "$tmp/models"
done
# Progress: a bar on a terminal (script gives it one), nothing on stderr in a pipe.
"$bin" gen-model --trace "$trace" --model a --out "$tmp/g2" > /dev/null 2> "$tmp/g2.err"
[ ! -s "$tmp/g2.err" ] || { echo "FAIL: gen-model wrote to stderr in a pipe: $(cat "$tmp/g2.err")"; fail=1; }
if command -v script > /dev/null; then
  script -qec "'$bin' gen-model --trace '$trace' --model a --out '$tmp/g3'" /dev/null | grep -q "writing a.safetensors (MiB) \[#" ||
    { echo "FAIL: gen-model shows no progress on a terminal"; fail=1; }
fi
expect 2 "no model 'zz' \(models: a, b, lora\)" -- "$bin" gen-model --trace "$trace" --model zz --out "$tmp/models"
[ "$(stat -c %s "$tmp/models/a.safetensors")" = 50000000 ] || { echo "FAIL: a.safetensors is not the declared 50000000 bytes"; fail=1; }

expect 0 "verify: every tensor matches the file" -- "$bin" load "$tmp/models/a.safetensors" "$tmp/models/b.safetensors" --verify
expect 0 "faulted in before the load" -- "$bin" load "$tmp/models/a.safetensors" --device host --verify --threads 3 --chunk 1MiB
expect 0 "verify: every tensor matches the file" -- "$bin" load "$tmp/models/a.safetensors" --device host --lazy-device --verify
grep -q "faulted in before" <<<"$out" && { echo "FAIL: --lazy-device still faulted the device memory up front"; fail=1; }
expect 0 "mmap-copy" -- "$bin" load "$tmp/models/b.safetensors" --method mmap-copy --verify
expect 0 '"verified": true' -- "$bin" load "$tmp/models/lora.safetensors" --json --verify
printf 'garbage' > "$tmp/bad.safetensors"
expect 2 "^residency: $tmp/bad.safetensors: safetensors: truncated" -- "$bin" load "$tmp/bad.safetensors"
head -c 1000 "$tmp/models/a.safetensors" > "$tmp/cut.safetensors"
expect 2 "^residency: $tmp/cut.safetensors: safetensors: truncated" -- "$bin" load "$tmp/cut.safetensors"
expect 2 "chunk" -- "$bin" load "$tmp/models/a.safetensors" --chunk lots
# No GPU here: the CUDA path says so plainly (where a GPU exists, it loads).
out=$("$bin" load "$tmp/models/lora.safetensors" --device cuda --verify 2>&1); rc=$?
if [ $rc = 0 ]; then grep -q "verify: every tensor matches" <<<"$out" || { echo "FAIL: cuda load: $out"; fail=1; }
else grep -qE "no usable CUDA GPU|no CUDA backend" <<<"$out" || { echo "FAIL: cuda error unclear: $out"; fail=1; }
     echo "SKIPPED cuda load: $out"; fi

# A device the policy's reserve takes whole is refused up front, naming the reserve
# (it used to fail every op with "0 MiB obtainable (limit 0 MiB)").
expect 2 "the device has 1024 MiB and policy 'ram-lru' keeps 1024 MiB of it free \(device_reserve\)" -- \
  "$bin" run "$trace" --models "$tmp/models" --device-capacity 1GiB --time-scale 0
expect 0 "ram_cache_hit=2" -- "$bin" run "$trace" --models "$tmp/models" --device-capacity 1088MiB --time-scale 0 --capture "$tmp/cap.jsonl" --metrics-file "$tmp/run.prom" --timeline "$tmp/run-timeline.json"
# A real run's timeline has replay's tracks: lanes, slices that name models, memory.
"$bin" replay "$trace" --profile sandbox-2c-24g --timeline "$tmp/replay-timeline.json" > /dev/null 2>&1
python3 - "$tmp/run-timeline.json" "$tmp/replay-timeline.json" <<'PY' || { echo "FAIL: run --timeline"; fail=1; }
import json, sys
def tracks(path):
    events = json.load(open(path))["traceEvents"]
    lanes = {e["args"]["name"] for e in events if e.get("name") == "thread_name"}
    used = {e["tid"] for e in events if e.get("ph") in ("X", "i")}
    ids = {e["args"]["name"]: e["tid"] for e in events if e.get("name") == "thread_name"}
    return events, lanes, {name for name, tid in ids.items() if tid in used}
real, real_lanes, real_used = tracks(sys.argv[1])
_, sim_lanes, sim_used = tracks(sys.argv[2])
assert real_lanes == sim_lanes, (real_lanes, sim_lanes)
for lane in ("prompts", "loads", "disk reads", "h2d copies", "evictions"):
    assert lane in real_used, f"the real run's timeline has nothing in '{lane}' (it has {sorted(real_used)})"
names = [e["name"] for e in real if e.get("ph") in ("X", "i")]
assert any(n.startswith("h2d copies: a") for n in names), names[:20]
assert any(n.startswith("evict ") and "(" in n for n in names), "no eviction names its reason"
assert any(e.get("ph") == "C" for e in real), "no memory counters"
print(f"run --timeline: {len(names)} slices in {len(real_used)} lanes, like replay's {len(sim_used)}")
PY
grep -q 'residency_runs_total{outcome="ok",policy="ram-lru",profile="this-machine",source="real"} 1' "$tmp/run.prom" &&
  grep -q 'residency_load_bytes_total{from="disk"' "$tmp/run.prom" || { echo "FAIL: run --metrics-file lacks the run"; fail=1; }
if command -v promtool >/dev/null; then
  promtool check metrics < "$tmp/run.prom" || { echo "FAIL: promtool rejects run --metrics-file"; fail=1; }
fi
grep -q '"source":"captured"' "$tmp/cap.jsonl" && grep -q measured_wall_ns "$tmp/cap.jsonl" || { echo "FAIL: capture lacks measured timings"; fail=1; }
expect 0 "measured" -- "$bin" replay "$tmp/cap.jsonl" --profile sandbox-2c-24g
expect 2 "$tmp/empty/a.safetensors: model 'a' file missing" -- "$bin" run "$trace" --models "$tmp/empty"

expect 0 "profile written" -- "$bin" calibrate --out "$tmp/me.json" --dir "$tmp" --file-size 64MiB --memory-size 16MiB --threads 1 --threads 2
# The calibrated profile reads without complaint; its 1 GiB emulated device is
# all ram-lru's 1 GiB device_reserve, so the loads fail and the prompts say so (exit 3).
expect 3 "prompt 1: FAILED" -- "$bin" replay "$trace" --profile "$tmp/me.json" --policy ram-lru
grep -q '"prefault_per_thread": "residency calibrate: .*of memory freed just before (fresh: ' "$tmp/me.json" ||
  { echo "FAIL: the prefault source note does not name recycled memory and the fresh figure"; fail=1; }
grep -q '"disk_read": "residency calibrate: .* reads of 2048 KiB chunks' "$tmp/me.json" ||
  { echo "FAIL: calibrate does not read in the policies' 2 MiB chunks by default"; fail=1; }
expect 0 "the profile takes fresh" -- "$bin" calibrate --out "$tmp/fresh.json" --dir "$tmp" --file-size 16MiB --memory-size 16MiB --threads 1 --prefault-memory fresh --chunk 1MiB
grep -q 'reads of 1024 KiB chunks' "$tmp/fresh.json" || { echo "FAIL: --chunk not recorded"; fail=1; }
# A calibrate killed by a signal leaves nothing in --dir (its scratch file has no name).
mkdir -p "$tmp/killed"
"$bin" calibrate --out "$tmp/killed.json" --dir "$tmp/killed" --file-size 256MiB --memory-size 16MiB --repeats 9 \
  2> "$tmp/killed.err" &
pid=$!
for _ in $(seq 300); do grep -q "disk write" "$tmp/killed.err" && break; sleep 0.1; done
grep -q "disk write" "$tmp/killed.err" || { echo "FAIL: calibrate never reached the disk write"; fail=1; }
kill -9 $pid 2> /dev/null; wait $pid 2> /dev/null
# The old spelling still works for one release, hidden from --help, with a note.
grep -q "residency: --repeats is now --repeat" "$tmp/killed.err" || { echo "FAIL: no note for the old --repeats"; fail=1; }
"$bin" calibrate --help | grep -q -- "--repeats\|--read-chunk" && { echo "FAIL: old spellings shown in --help"; fail=1; }
"$bin" calibrate --help | grep -q -- "--chunk" || { echo "FAIL: calibrate --help lacks --chunk"; fail=1; }
[ -z "$(ls -A "$tmp/killed")" ] || { echo "FAIL: a killed calibrate left files: $(ls -A "$tmp/killed")"; fail=1; }
expect 2 "--prefault-memory: warm not in \{recycled,fresh\}" -- "$bin" calibrate --out "$tmp/x.json" --prefault-memory warm
expect 0 "torture: 1 cases, no violation \(base seed 7\)" -- "$bin" torture --seconds 0 --seed 7 --out "$tmp/torture"
[ $fail -eq 0 ] && echo "cli runtime checks pass"
exit $fail
