#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for the `slurm` tests and for trying hydra/launcher=slurm:
# Debian's slurmctld, slurmd and munge, started by hand (no systemd). Idempotent: a running cluster is kept.
# Usage: bash .ci/slurm/start.sh   (as root; installs the packages if they are missing)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
fi

# No accounting here, so the real sacct fails; submitit asks sacct for the state of a job that died before
# writing its result. This one answers from `scontrol show job`, and /usr/local/bin comes before /usr/bin.
install -m 0755 "$here/sacct" /usr/local/bin/sacct

node_idle() { sinfo -h -N -o '%T' 2>/dev/null | grep -qx 'idle\|mixed\|allocated'; }
if scontrol ping >/dev/null 2>&1 && node_idle; then
  echo "slurm: already running"; sinfo; exit 0
fi

mkdir -p /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge /etc/slurm
chown munge:munge /run/munge
[ -s /etc/munge/munge.key ] || { mungekey --create --keyfile=/etc/munge/munge.key; chown munge:munge /etc/munge/munge.key; chmod 600 /etc/munge/munge.key; }

# The node's own line (CPUs, sockets, memory) from slurmd -C; 127.0.0.1 needs no DNS.
node_line="$(slurmd -C | head -1) NodeAddr=127.0.0.1 State=UNKNOWN"
node_name="$(awk '{print $1}' <<<"$node_line" | cut -d= -f2)"
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=mnistlab
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# Jobs share the node by CPU: a sweep's one-task jobs run side by side.
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
# Finished jobs stay known for a day: the sacct above reads their state from scontrol.
MinJobAge=86400
ReturnToService=2
SlurmdTimeout=60
KillWait=30
$node_line
PartitionName=debug Nodes=$node_name Default=YES MaxTime=INFINITE State=UP
CONF

pgrep -u munge -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged
pidof slurmctld >/dev/null || slurmctld
pidof slurmd >/dev/null || slurmd

for _ in $(seq 60); do
  if node_idle; then echo "slurm: node $node_name is up"; sinfo; exit 0; fi
  sleep 1
done
echo "error: the SLURM node did not become idle within 60 s; see /var/log/slurm/slurmctld.log and slurmd.log" >&2
exit 1
