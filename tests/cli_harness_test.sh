#!/usr/bin/env bash
# The harness commands as a user meets them: sweep (progress, resume, shards),
# merge (idempotent), compare (the gate's exit codes), report --html, and
# their errors.
set -u
source "$(dirname "$0")/cli_lib.sh" "$@"
ex=$root/traces/examples
sweep() { "$bin" sweep --traces "$ex/sdxl-txt2img.jsonl" "$ex/chroma-6lora.jsonl" --profiles rtx4090-64g rtx5060-16g \
  --policies drop ram-lru "$@"; }

expect 0 "8 planned, 8 ran, 0 already stored" -- sweep --db "$tmp/all.db" -j 2
expect 0 "sweep: 8/8 \(100%\)" -- sweep --db "$tmp/progress.db" -j 1   # plain progress lines off a terminal
expect 0 "8 planned, 0 ran, 8 already stored" -- sweep --db "$tmp/all.db"
# One run: its time, not a rate over a fraction of a second, and "1 job".
expect 0 "s wall on 1 job for 1 run \(" -- "$bin" sweep --traces "$ex/sdxl-txt2img.jsonl" --profiles rtx4090-64g \
  --policies drop --db "$tmp/one.db" -j 1
if "$bin" sweep --traces "$ex/sdxl-txt2img.jsonl" --profiles rtx4090-64g --policies ram-lru --db "$tmp/one.db" -j 1 2>&1 |
   grep -q "runs/s"; then echo "FAIL: a one-run sweep printed a rate"; fail=1; fi
for i in 0 1 2; do
  expect 0 "sweep $i/3 into" -- sweep --db "$tmp/shard$i.db" --shard $i/3 -q
done
expect 0 "8 runs added, 8 in total" -- "$bin" merge "$tmp/merged.db" "$tmp/shard0.db" "$tmp/shard1.db" "$tmp/shard2.db"
expect 0 "0 runs added, 8 in total" -- "$bin" merge "$tmp/merged.db" "$tmp/shard0.db" "$tmp/shard1.db" "$tmp/shard2.db"
q="select t.hash, p.hash, o.hash, seed, outcome, makespan_ns, event_log_hash from runs r join traces t on t.id = r.trace_id
   join profiles p on p.id = r.profile_id join policies o on o.id = r.policy_id order by 1, 2, 3, 4"
if command -v sqlite3 >/dev/null; then
  [ "$(sqlite3 "$tmp/all.db" "$q")" = "$(sqlite3 "$tmp/merged.db" "$q")" ] || { echo "FAIL: merged shards differ from one sweep"; fail=1; }
fi

# The gate: ram-lru pays page-locking on these small workflows (+9 % makespan).
expect 1 "REGRESSION" -- "$bin" compare --db "$tmp/all.db" --baseline drop --candidate ram-lru --threshold 5
expect 0 "0 failing" -- "$bin" compare --db "$tmp/all.db" --baseline drop --candidate ram-lru --threshold 15
expect 0 "disk-read: drop \(baseline\)" -- "$bin" compare --db "$tmp/all.db" --baseline drop --candidate ram-lru --metric disk-read
expect 2 "no such results database" -- "$bin" compare --db "$tmp/none.db" --baseline drop --candidate ram-lru
expect 2 "no runs of candidate policy 'nope'" -- "$bin" compare --db "$tmp/all.db" --baseline drop --candidate nope
expect 2 "metric" -- "$bin" compare --db "$tmp/all.db" --baseline drop --candidate ram-lru --metric speed

expect 0 "report of 8 runs written" -- "$bin" report --db "$tmp/all.db" --html "$tmp/r.html"
grep -q "<svg" "$tmp/r.html" && grep -q "chroma-6lora" "$tmp/r.html" && grep -q "infeasible" "$tmp/r.html" ||
  { echo "FAIL: report lacks the chart, a trace or the infeasible runs"; fail=1; }
! grep -qE "<script|(src|href)=" "$tmp/r.html" || { echo "FAIL: report is not self-contained"; fail=1; }

expect 2 "--shard '3/3': expected i/N" -- sweep --db "$tmp/x.db" --shard 3/3
expect 2 "unknown profile 'nope'" -- "$bin" sweep --traces "$ex" --profiles nope --policies drop --db "$tmp/x.db"
expect 2 "no such trace file or folder" -- "$bin" sweep --traces "$tmp/missing" --profiles rtx4090-64g --policies drop --db "$tmp/x.db"
printf 'not a database, just text long enough to fill a header......................\n' > "$tmp/junk.db"
expect 2 "junk.db" -- sweep --db "$tmp/junk.db"
expect 2 "--listen 'nohost': no port" -- "$bin" serve --listen nohost --data "$tmp/d"
: > "$tmp/empty-token"
expect 2 "one non-empty token" -- "$bin" serve --token-file "$tmp/empty-token" --data "$tmp/d"
# explain: where the time goes, and the best bundled alternative.
sc=$root/traces/scenarios
"$bin" explain "$sc/wan22-reload-every-run.jsonl" --profile "$sc/rtx5090-24g-64g-gen1.profile.json" \
  --policy "$sc/comfy-v022.policy.json" > "$tmp/explain.txt" 2>&1 || { echo "FAIL: explain"; fail=1; }
# Its progress shows on a terminal only (script gives it one), never in a pipe.
! grep -q "replaying under each bundled policy" "$tmp/explain.txt" || { echo "FAIL: explain progress in a pipe"; fail=1; }
if command -v script > /dev/null; then
  script -qec "'$bin' explain '$sc/wan22-reload-every-run.jsonl' --profile '$sc/rtx5090-24g-64g-gen1.profile.json'" \
    /dev/null | grep -q "replaying under each bundled policy \[" || { echo "FAIL: explain shows no progress on a terminal"; fail=1; }
fi
for pattern in "prompt 2: .*40.25 GB read from disk" "reloads of evicted models .*wan-high: 14.30 GB" \
               "disk-bound reads" "What would help most: --policy "; do
  grep -qE -- "$pattern" "$tmp/explain.txt" || { echo "FAIL: explain lacks /$pattern/"; cat "$tmp/explain.txt"; fail=1; }
done
expect 0 "Every bundled policy runs out of memory or is refused" -- "$bin" explain "$ex/wan22-14b-t2v.jsonl" \
  --profile rtx5060-16g --policy drop
expect 2 "unknown profile 'nope'" -- "$bin" explain "$ex/sdxl-txt2img.jsonl" --profile nope
# import: a console log in, a replayable trace out.
expect 0 "imported 4 models and 3 prompts" -- "$bin" import comfyui-log "$root/tests/data/comfyui-console.txt" --out "$tmp/imp.jsonl"
expect 0 "measured 76.33 s" -- "$bin" replay "$tmp/imp.jsonl" --profile rtx5090-96g
printf 'nothing here\n' > "$tmp/empty.log"
expect 2 "no model load could be read" -- "$bin" import comfyui-log "$tmp/empty.log"
expect 0 "^residency [0-9a-f]" -- "$bin" --version

# Bundled trace names work wherever a trace file does; an unknown one lists them.
expect 0 "Replay of 'wan22-14b-t2v'" -- "$bin" replay wan22-14b-t2v --profile rtx5090-96g
expect 2 "'wan99' is neither a trace file nor a bundled trace \(bundled: .*wan22-14b-t2v" -- "$bin" replay wan99

# A prompt whose loads cannot fit fails, and says so: never a clean time.
expect 3 "prompt 1: FAILED \(6 ops failed" -- "$bin" replay "$ex/flux2-dev-quants.jsonl" --profile rtx5060-16g --policy drop
expect 3 '"failed": true' -- "$bin" replay "$ex/flux2-dev-quants.jsonl" --profile rtx5060-16g --policy drop --json
expect 0 '"failed": false' -- "$bin" replay "$ex/sdxl-txt2img.jsonl" --profile rtx4090-64g --json

# A captured trace replays on the machine it names, and on any other.
cap=$root/tests/data/captured-tiny.jsonl
expect 0 "on profile 'captured'" -- "$bin" replay "$cap" --profile captured
expect 0 "on profile 'captured'" -- "$bin" replay "$cap" --profile auto
expect 0 "on profile 'rtx5060-16g'" -- "$bin" replay "$cap" --profile rtx5060-16g
expect 0 "on profile 'captured'" -- "$bin" replay "$cap" --profile captured:rtx5090-96g
expect 2 "needs a trace with a machine record" -- "$bin" replay "$ex/sdxl-txt2img.jsonl" --profile captured
expect 0 "2 of 2 prompts compared: median \|error\|" -- "$bin" fidelity --captured "$cap"
expect 0 '"compared": 2' -- "$bin" fidelity --captured "$cap" --json
expect 2 "takes no --models" -- "$bin" fidelity --captured "$cap" --models "$tmp"
# replay --compare covers every policy: --json is an array, one file per policy.
mkdir -p "$tmp/cmp"
"$bin" replay "$root/traces/examples/sdxl-txt2img.jsonl" --profile rtx4090-64g --policy drop --compare ram-lru \
  --json --svg "$tmp/cmp/memory.svg" --timeline "$tmp/cmp/t.json" > "$tmp/cmp/out.json" 2> "$tmp/cmp/err.txt" ||
  { cat "$tmp/cmp/err.txt"; echo "FAIL: replay --compare --json"; fail=1; }
python3 - "$tmp/cmp" <<'PY' || fail=1
import json, os, sys
d = sys.argv[1]
runs = json.load(open(os.path.join(d, "out.json")))
assert isinstance(runs, list) and [r["policy"] for r in runs] == ["drop", "ram-lru"], runs
for f in ("memory.svg", "memory.ram-lru.svg", "t.json", "t.ram-lru.json"):
    assert os.path.getsize(os.path.join(d, f)) > 0, f
assert "memory picture written to %s/memory.ram-lru.svg (ram-lru)" % d in open(os.path.join(d, "err.txt")).read()
# Timeline bars name the model whose commands they hold (they said only "h2d copies").
names = {e["name"] for e in json.load(open(os.path.join(d, "t.json")))["traceEvents"] if e.get("ph") == "X"}
assert any(n.startswith("h2d copies: sdxl-base") for n in names), sorted(names)[:20]
assert any(n.startswith("disk reads: sdxl-base") for n in names), sorted(names)[:20]
print("replay --compare: 2 policies in --json, 4 files; timeline bars name their model")
PY
# The SVG is well-formed XML whatever the trace is called, with round ticks and
# the machine's RAM and VRAM drawn as lines.
python3 - "$root/traces/examples/sdxl-txt2img.jsonl" "$tmp/amp.jsonl" <<'PY'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
head = json.loads(lines[0]); head["name"] = "flux & lora <v2>"
open(sys.argv[2], "w").write("\n".join([json.dumps(head)] + lines[1:]) + "\n")
PY
"$bin" replay "$tmp/amp.jsonl" --profile rtx4090-64g --svg "$tmp/amp.svg" > /dev/null 2>&1
python3 - "$tmp/amp.svg" <<'PY' || fail=1
import math, re, sys
import xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()  # raises on unescaped & or <
texts = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]
assert any("flux & lora <v2>" in t for t in texts), texts[:3]
for unit in ("GB", "s"):
    ticks = [float(t[:-len(unit) - 1]) for t in texts if re.fullmatch(r"[0-9.e+]+ " + unit, t)]
    assert len(ticks) >= 3 and ticks[0] == 0, (unit, ticks)
    step = ticks[1] - ticks[0]
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert any(abs(mantissa - m) < 1e-9 for m in (1, 2, 5)), (unit, ticks)
    assert all(abs((b - a) - step) < step * 1e-6 for a, b in zip(ticks, ticks[1:])), (unit, ticks)
assert any(t.startswith("RAM ") for t in texts) and any(t.startswith("VRAM ") for t in texts), texts
print("svg: escaped title, round ticks, RAM and VRAM lines")
PY
# Slurm commands are bounded: a hung squeue (here a stand-in that sleeps) is
# killed after --command-timeout and named, instead of hanging `slurm status`.
mkdir -p "$tmp/fakebin"
printf '#!/bin/sh\nexec sleep 30\n' > "$tmp/fakebin/squeue" && chmod +x "$tmp/fakebin/squeue"
expect 0 "wrote .*/shard.sbatch" -- "$bin" slurm submit --traces "$root/traces/examples/sdxl-txt2img.jsonl" \
  --profiles rtx4090-64g --policies drop --shards 1 --out "$tmp/sjob" --dry-run
echo '{"array_job":"101","merge_job":"102","shards":[0]}' > "$tmp/sjob/submissions.jsonl"
t0=$SECONDS
PATH="$tmp/fakebin:$PATH" expect 2 "'squeue' did not finish within 1 s and was killed" -- \
  "$bin" slurm status --out "$tmp/sjob" --command-timeout 1
[ $((SECONDS - t0)) -lt 15 ] || { echo "FAIL: slurm status waited $((SECONDS - t0)) s for a hung squeue"; fail=1; }
# Captured traces: the server's own settings by default, an unknown flag named;
# the agent's gate and --traces-from fail with the URL named when no agent answers.
sed 's/"flags":\["--reserve-vram","0.5"\]/"flags":["--reserve-vram","0.5","--turbo-vram","3"]/' \
  "$root/tests/data/captured-tiny.jsonl" > "$tmp/captured-flags.jsonl"
expect 0 "policy captured = comfy-classic \+ --reserve-vram 0.5 --turbo-vram 3" -- \
  "$bin" replay "$tmp/captured-flags.jsonl" --profile captured
expect 0 "warning: unknown server flag --turbo-vram 3" -- "$bin" replay "$tmp/captured-flags.jsonl" --profile captured
expect 0 "policy 'captured'" -- "$bin" fidelity --captured "$tmp/captured-flags.jsonl"
expect 2 "needs a trace with a machine record" -- "$bin" replay "$root/traces/examples/sdxl-txt2img.jsonl" --policy captured
expect 2 "agent URL 'https://x:1': https is not spoken" -- "$bin" gate --agent https://x:1
expect 2 "http://127.0.0.1:1/v1/gate: cannot connect" -- "$bin" gate --agent http://127.0.0.1:1
expect 2 "http://127.0.0.1:1/v1/traces: cannot connect" -- "$bin" sweep --traces-from http://127.0.0.1:1 \
  --profiles rtx4090-64g --policies drop --db "$tmp/tf.db"
expect 2 "give --traces or --traces-from" -- "$bin" sweep --profiles rtx4090-64g --policies drop --db "$tmp/tf.db"
[ $fail -eq 0 ] && echo "cli harness checks pass"
exit $fail
