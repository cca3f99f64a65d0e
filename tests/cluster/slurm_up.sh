#!/usr/bin/env bash
# A one-node Slurm cluster on this machine (as root), for the `slurm`-marked tests (tests/cluster/).
#
#   tests/cluster/slurm_up.sh          install (apt) if missing, configure, start; exit 0 once `sinfo` answers
#   tests/cluster/slurm_up.sh --down   stop slurmd and slurmctld (munged stays: idle, and other tools may use it)
#
# Idempotent: when the cluster answers already it exits 0 at once. Exits 1 with the reason on stderr
# where it cannot bring one up (not root, no apt and no Slurm, a daemon that does not start); the
# tests then skip with their own reason (tests/cluster/test_slurm_cluster.py).
#
# The settings that matter for gat-tui's Slurm path (README "On a cluster"):
# - ProctrackType=proctrack/linuxproc, TaskPlugin=task/none: no cgroups needed (containers);
#   signals still reach every process of a job step;
# - SelectType=select/cons_tres with CR_Core_Memory: each 1-CPU job takes one core, so jobs run
#   side by side; DefMemPerCPU keeps a job's memory small enough for two at once;
# - KillWait=30: between the SIGTERM of `scancel` (or of the time limit) and SIGKILL, the time a
#   job has to write its checkpoint;
# - SchedulerParameters=sched_interval=1 and a 1 s backfill: a job whose dependency is met starts
#   within a second or two, not at the next 60 s pass; MinJobAge=900 keeps ended jobs in
#   `scontrol show job` for the tests;
# - AuthInfo=cred_expire=10: a requeued job waits cred_expire seconds before it may start again
#   (default 120 s, which would double the time-limit test);
# - JobCompType=jobcomp/filetxt: `sacct -c` lists ended jobs (state, start, end) without slurmdbd
#   (Slurm 22.05 has no accounting_storage/filetxt; `sacct` without -c needs slurmdbd and a database).
set -euo pipefail

conf_dir=/etc/slurm
conf="$conf_dir/slurm.conf"
spool=/var/spool/slurm-gat-tui
logs=/var/log/slurm-gat-tui
marker="# written by gat-tui tests/cluster/slurm_up.sh"

say() { echo "slurm_up: $*" >&2; }
answers() { timeout 5 sinfo -h -o '%T' 2>/dev/null | grep -Eq '^(idle|mixed|allocated|completing)'; }

stop_daemons() {
  local daemon pid
  for daemon in slurmd slurmctld; do
    if [ -f "$spool/$daemon.pid" ]; then
      pid="$(cat "$spool/$daemon.pid")"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
  done
}

if [ "${1:-}" = "--down" ]; then
  stop_daemons
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  if command -v sinfo >/dev/null && answers; then say "already up (not root: left as it is)"; exit 0; fi
  say "not root: cannot install or start Slurm here"
  exit 1
fi
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  if command -v sinfo >/dev/null && answers; then say "already up (another installation)"; exit 0; fi
  if ! command -v apt-get >/dev/null; then
    say "Slurm is not installed and apt-get is unavailable"
    exit 1
  fi
  say "installing slurm-wlm and munge with apt"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=120 slurm-wlm munge; } >/tmp/slurm_up_apt.log 2>&1; then
    say "apt-get install slurm-wlm munge failed (see /tmp/slurm_up_apt.log)"
    exit 1
  fi
fi
if [ -f "$conf" ] && ! grep -qF "$marker" "$conf"; then
  if answers; then say "already up (a slurm.conf of its own: $conf)"; exit 0; fi
  say "$conf exists and was not written by this script: start that cluster yourself"
  exit 1
fi

host="$(hostname -s)"
node="$(slurmd -C | head -1)"   # NodeName=<host> CPUs=... RealMemory=...
cpus="$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$node")"
memory="$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node")"
wanted="$(cat <<CONF
$marker
ClusterName=gattui
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# a requeued job waits cred_expire seconds before it may start again (default 120)
AuthInfo=cred_expire=10
StateSaveLocation=$spool/ctld
SlurmdSpoolDir=$spool/d
SlurmctldPidFile=$spool/slurmctld.pid
SlurmdPidFile=$spool/slurmd.pid
SlurmctldLogFile=$logs/slurmctld.log
SlurmdLogFile=$logs/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1
KillWait=30
MinJobAge=900
SlurmdTimeout=30
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$logs/jobcomp.txt
MpiDefault=none
MailProg=/bin/true
NodeName=$host CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
)"
if [ -f "$conf" ] && [ "$(cat "$conf")" = "$wanted" ] && answers; then
  say "already up: $(sinfo -h -o '%P %D %T' | head -1)"
  exit 0
fi

# munge: the key the package made (or a new one), its daemon
mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
fi
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
chmod 0700 /etc/munge && chmod 0400 /etc/munge/munge.key
if ! munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
  runuser -u munge -- /usr/sbin/munged
  sleep 0.5
fi

mkdir -p "$conf_dir" "$spool/ctld" "$spool/d" "$logs"
if [ -f "$conf" ] && [ "$(cat "$conf")" != "$wanted" ]; then
  say "slurm.conf changed: restarting the daemons"
  stop_daemons
fi
printf '%s\n' "$wanted" >"$conf.new"
mv "$conf.new" "$conf"

if ! { [ -f "$spool/slurmctld.pid" ] && kill -0 "$(cat "$spool/slurmctld.pid")" 2>/dev/null; }; then
  slurmctld
fi
if ! { [ -f "$spool/slurmd.pid" ] && kill -0 "$(cat "$spool/slurmd.pid")" 2>/dev/null; }; then
  slurmd
fi
for _ in $(seq 50); do
  if answers; then
    say "up: $(sinfo -h -o '%P %D %c CPUs %T' | head -1)"
    exit 0
  fi
  if timeout 5 sinfo -h -o '%T' 2>/dev/null | grep -Eq '^(down|drain)'; then
    scontrol update NodeName="$host" State=RESUME 2>/dev/null || true
  fi
  sleep 0.2
done
say "the cluster did not answer within 10 s; see $logs/slurmctld.log and $logs/slurmd.log"
exit 1
