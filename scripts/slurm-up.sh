#!/usr/bin/env bash
# Brings up a single-node Slurm cluster (munge, slurmctld, slurmd) on
# loopback with every file under STATEDIR, for tests and for trying
# `residency slurm` on one machine. Needs root and Debian's slurmctld, slurmd,
# slurm-client and munge packages. Then: export SLURM_CONF=STATEDIR/slurm.conf
# Stop it with scripts/slurm-down.sh STATEDIR. Every folder above STATEDIR
# must be o+x (munged checks its socket path; found setting this up on Debian 12).
set -euo pipefail
S=$(realpath -m "${1:?usage: slurm-up.sh STATEDIR [CPUS]}")
CPUS=${2:-8}   # more than the cores: shard tasks are light and run side by side
NODE=$(hostname -s)
PORT_BASE=${SLURM_PORT_BASE:-$((17000 + RANDOM % 2000 * 2))}
mkdir -p "$S"/{munge,munge-run,state,spool/slurmd,run,log}
chmod 700 "$S/munge"; chmod 755 "$S/munge-run"   # the socket folder must be o+x
[ -f "$S/munge/munge.key" ] || mungekey --create --keyfile="$S/munge/munge.key"
munged --key-file="$S/munge/munge.key" --socket="$S/munge-run/munge.socket.2" \
  --pid-file="$S/munge-run/munged.pid" --log-file="$S/log/munged.log" --seed-file="$S/munge/munged.seed"
cat > "$S/slurm.conf" <<CONF
ClusterName=residency
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$PORT_BASE
SlurmdPort=$((PORT_BASE + 1))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$S/munge-run/munge.socket.2
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool/slurmd
SlurmctldPidFile=$S/run/slurmctld.pid
SlurmdPidFile=$S/run/slurmd.pid
SlurmctldLogFile=$S/log/slurmctld.log
SlurmdLogFile=$S/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MinJobAge=300
SlurmdParameters=config_overrides
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$S/slurm.conf"
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF" -N "$NODE"
for _ in $(seq 1 200); do
  sinfo -h -r -o '%T' 2>/dev/null | grep -qx idle && { echo "slurm-up: node $NODE idle (SLURM_CONF=$SLURM_CONF)"; exit 0; }
  sleep 0.1
done
echo "slurm-up: the node did not come up; logs in $S/log" >&2
exit 1
