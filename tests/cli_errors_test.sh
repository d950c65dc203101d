#!/usr/bin/env bash
# The CLI answers bad input with one line naming file:line or the name, and
# exit code 2; --json prints the documented fields.
set -u
source "$(dirname "$0")/cli_lib.sh" "$@"
printf '%s\n' '{"format":"residency-trace","version":1,"name":"t"}' '{"type":"load","model":"a"' > "$tmp/bad.jsonl"
expect 2 "^residency: $tmp/bad.jsonl:2: not valid JSON$" -- "$bin" replay "$tmp/bad.jsonl"
expect 2 "unknown profile 'nope'" -- "$bin" replay "$root/traces/examples/sdxl-txt2img.jsonl" --profile nope
expect 2 "unknown policy 'nope'" -- "$bin" replay "$root/traces/examples/sdxl-txt2img.jsonl" --policy nope
expect 2 "/missing.jsonl: cannot open trace file" -- "$bin" replay "$tmp/missing.jsonl"
"$bin" replay "$root/traces/examples/sdxl-txt2img.jsonl" --json --timeline "$tmp/t.json" --svg "$tmp/m.svg" > "$tmp/out.json" 2>/dev/null || { echo "FAIL: replay --json"; fail=1; }
python3 - "$tmp/out.json" "$tmp/t.json" "$tmp/m.svg" <<'PY' || fail=1
import json, sys
r = json.load(open(sys.argv[1]))
need = ["trace", "profile", "policy", "makespan_ns", "load_ns", "disk_read_bytes", "peak_host_bytes",
        "peak_pinned_bytes", "peak_device_bytes", "oom", "violations", "prompts", "event_log_hash"]
missing = [k for k in need if k not in r]
assert not missing, f"--json lacks {missing}"
assert all("wall_ns" in p for p in r["prompts"]) and len(r["prompts"]) == 4
t = json.load(open(sys.argv[2]))
phases = {e["ph"] for e in t["traceEvents"]}
assert {"C", "X", "M"} <= phases, f"timeline phases {phases}"
svg = open(sys.argv[3]).read()
assert svg.startswith("<svg") and "polyline" in svg and "p1" in svg
print("cli output checks pass")
PY
[ $fail -eq 0 ] && echo "cli error checks pass"
exit $fail
