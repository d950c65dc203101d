#!/usr/bin/env bash
# `residency slurm` against a real single-node Slurm cluster (scripts/slurm-up.sh):
# a sweep of 8 shards, one shard task killed mid-run, `slurm resubmit --failed`,
# and the merged database equal to a local sweep of the same inputs.
set -u
source "$(dirname "$0")/cli_lib.sh" "$@"
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null || ! command -v sqlite3 >/dev/null; then
  echo "SKIPPED: needs Debian's slurmctld, slurmd, slurm-client, munge and sqlite3 (scripts/install-deps.sh)"; exit 77
fi
[ "$(id -u)" = 0 ] || { echo "SKIPPED: the test cluster runs as root (SlurmUser=root)"; exit 77; }
chmod 755 "$tmp"   # munged needs o+x on every folder above its socket
state=$tmp/slurm
"$root/scripts/slurm-up.sh" "$state" 8 || { cat "$state"/log/*.log; exit 1; }
trap '"$root/scripts/slurm-down.sh" "$state"; rm -rf "$tmp"' EXIT
export SLURM_CONF=$state/slurm.conf

ex=$root/traces/examples
inputs=(--traces "$ex/sdxl-txt2img.jsonl" "$ex/chroma-6lora.jsonl" "$ex/ltx2-19b-lora.jsonl"
        --profiles rtx4090-64g rtx5090-96g --policies drop ram-lru --seeds $(seq 1 40))
expect 0 "submitted array job [0-9]+ \(8 shards\)" -- "$bin" slurm submit "${inputs[@]}" --shards 8 --out "$tmp/job"
array=$(grep -o '"array_job":"[0-9]*"' "$tmp/job/submissions.jsonl" | head -1 | grep -o '[0-9]*')

# Kill shard 3 with SIGKILL once it is running and has stored some runs.
db=$tmp/job/shards/shard-3.db
killed=0
for _ in $(seq 1 600); do
  n=$(sqlite3 "$db" "select count(*) from runs" 2>/dev/null || echo 0)
  if [ "${n:-0}" -ge 1 ] && squeue -h -r -j "${array}_3" -o %T 2>/dev/null | grep -qx RUNNING; then
    scancel --signal=KILL --full "${array}_3" && killed=1; break
  fi
  sleep 0.05
done
[ $killed = 1 ] || { echo "FAIL: shard 3 was never caught running"; fail=1; }
for _ in $(seq 1 600); do [ -z "$(squeue -h -j "$array" 2>/dev/null)" ] && break; sleep 0.1; done
planned3=$("$bin" slurm status --out "$tmp/job" | awk '$2 == 3 {print $4}')
expect 0 "shard +3 +failed" -- "$bin" slurm status --out "$tmp/job"
echo "shard 3 when killed: $planned3 runs"
expect 1 "results.db holds" -- "$bin" slurm status --out "$tmp/job" --require-merged
expect 0 "resubmitted shards 3 as array job" -- "$bin" slurm resubmit --out "$tmp/job" --failed
for _ in $(seq 1 600); do
  "$bin" slurm status --out "$tmp/job" --require-merged >/dev/null 2>&1 && break; sleep 0.1
done
expect 0 "8/8 shards done; merge: merged \(480/480 runs" -- "$bin" slurm status --out "$tmp/job" --require-merged
expect 0 "no failed shards" -- "$bin" slurm resubmit --out "$tmp/job" --failed

# The merged database equals a local sweep of the same inputs.
"$bin" sweep "${inputs[@]}" --db "$tmp/local.db" -j 2 -q >/dev/null
q="select t.hash, p.hash, o.hash, seed, outcome, makespan_ns, load_ns, peak_host_bytes, event_log_hash
   from runs r join traces t on t.id = r.trace_id join profiles p on p.id = r.profile_id
   join policies o on o.id = r.policy_id order by 1, 2, 3, 4"
[ "$(sqlite3 "$tmp/job/results.db" "$q" | md5sum)" = "$(sqlite3 "$tmp/local.db" "$q" | md5sum)" ] ||
  { echo "FAIL: the merged Slurm results differ from a local sweep"; fail=1; }
[ "$(sqlite3 "$tmp/job/results.db" "select count(*) from runs")" = 480 ] || { echo "FAIL: merged run count"; fail=1; }

expect 2 "already holds a job" -- "$bin" slurm submit "${inputs[@]}" --shards 8 --out "$tmp/job"
expect 2 "--shards must be between" -- "$bin" slurm submit "${inputs[@]}" --shards 0 --out "$tmp/job2"
expect 2 "job.json: cannot open" -- "$bin" slurm status --out "$tmp/nothing"
[ $fail -eq 0 ] && echo "slurm checks pass"
exit $fail
