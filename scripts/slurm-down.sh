#!/usr/bin/env bash
# Stops what scripts/slurm-up.sh STATEDIR started (slurmd, slurmctld, munged).
set -u
S=$(realpath -m "${1:?usage: slurm-down.sh STATEDIR}")
stop() {  # stop PIDFILE: SIGTERM, then wait up to 10 s, then SIGKILL
  [ -f "$1" ] || return 0
  local pid; pid=$(cat "$1")
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}
stop "$S/run/slurmd.pid"
stop "$S/run/slurmctld.pid"
munged --socket="$S/munge-run/munge.socket.2" --stop >/dev/null 2>&1 || stop "$S/munge-run/munged.pid"
