#!/usr/bin/env bash
# A two-node SLURM cluster on this one machine, for the `slurm` tests and for trying hydra/launcher=slurm:
# Debian's slurmctld, two slurmd and munge, started by hand (no systemd). Debian builds SLURM with
# MULTIPLE_SLURMD, so each node is its own slurmd (`slurmd -N <node>`) on its own port. One-node jobs run
# on either node; a job of trainer.num_nodes=2 spans both. Idempotent: a running cluster of this same
# config is kept; one of another config (an earlier one-node version of this script) is restarted.
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

# The machine's own node line (CPUs, sockets, memory) from slurmd -C, for each of the two nodes: the first
# named after the host, as a one-node cluster's node is, the second after it with a 2.
hardware="$(slurmd -C | head -1)"
host="$(awk '{print $1}' <<<"$hardware" | cut -d= -f2)"
nodes=("$host" "${host}2")
# Lightning's SLURM environment reaches rank zero at the first node's name, as on a cluster, where node
# names resolve to their hosts: here both are this machine.
for node in "${nodes[@]}"; do
  getent hosts "$node" >/dev/null || echo "127.0.0.1 $node" >> /etc/hosts
done
node_lines="$(for i in "${!nodes[@]}"; do
  echo "${hardware/NodeName=$host/NodeName=${nodes[$i]}} NodeHostname=$host NodeAddr=127.0.0.1 Port=$((6818 + i)) State=UNKNOWN"
done)"

nodes_up() { [ "$(sinfo -h -N -o '%T' 2>/dev/null | grep -cx 'idle\|mixed\|allocated')" -eq "${#nodes[@]}" ]; }
# A pid file's daemon is alive: its pid runs a SLURM daemon (not another process that got the pid since).
pid_alive() { [ -s "$1" ] && grep -qx 'slurmctld\|slurmd' "/proc/$(cat "$1")/comm" 2>/dev/null; }

mkdir -p /var/spool/slurmctld /var/log/slurm /run/munge /etc/slurm
for node in "${nodes[@]}"; do mkdir -p "/var/spool/slurmd/$node"; done
chown munge:munge /run/munge
[ -s /etc/munge/munge.key ] || { mungekey --create --keyfile=/etc/munge/munge.key; chown munge:munge /etc/munge/munge.key; chmod 600 /etc/munge/munge.key; }

config="$(cat <<CONF
ClusterName=mnistlab
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
# %n: each node's own slurmd keeps its own spool, pid and log files.
SlurmdSpoolDir=/var/spool/slurmd/%n
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd-%n.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd-%n.log
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
$node_lines
PartitionName=debug Nodes=$(IFS=,; echo "${nodes[*]}") Default=YES MaxTime=INFINITE State=UP
CONF
)"

if [ "$config" = "$(cat /etc/slurm/slurm.conf 2>/dev/null)" ] && scontrol ping >/dev/null 2>&1 && nodes_up; then
  echo "slurm: already running"; sinfo; exit 0
fi
# A cluster of another config: its daemons stop (by their pid files), to start again on this one.
for pidfile in /run/slurmctld.pid /run/slurmd.pid /run/slurmd-*.pid; do
  if pid_alive "$pidfile"; then
    pid="$(cat "$pidfile")"; kill "$pid"
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  fi
done
echo "$config" > /etc/slurm/slurm.conf

pgrep -u munge -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged
pid_alive /run/slurmctld.pid || slurmctld
for node in "${nodes[@]}"; do
  pid_alive "/run/slurmd-$node.pid" || slurmd -N "$node"
done

for _ in $(seq 60); do
  if nodes_up; then echo "slurm: nodes ${nodes[*]} are up"; sinfo; exit 0; fi
  sleep 1
done
echo "error: the SLURM nodes did not become idle within 60 s; see /var/log/slurm/slurmctld.log and slurmd-<node>.log" >&2
exit 1
