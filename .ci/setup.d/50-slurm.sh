#!/usr/bin/env bash
# A single-node Slurm (slurmctld + slurmd + munge from Debian) with one fake GPU, for the
# `engine_slurm_*` tests (tests/it/slurm.rs): they submit the script `labup export slurm`
# writes and check that the job's service answers and that `scancel` ends every process.
# Configuration from ENGINES.md: proctrack/cgroup (with linuxproc a child that escaped with
# setsid survives scancel), OverSubscribe=FORCE:8 (else only two jobs at once on two cores),
# gres.conf with File=/dev/null (without File= the node is marked INVAL).
# Idempotent: when slurmctld, slurmd and munged already run and the node answers, it does nothing.
set -euo pipefail

running() { pgrep -x "$1" >/dev/null 2>&1; }
node_up() { timeout 5 sinfo -h -o %T 2>/dev/null | grep -qxE 'idle|mixed|allocated'; }

if running slurmctld && running slurmd && running munged && node_up; then
  exit 0
fi

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null \
  || ! command -v munged >/dev/null; then
  for i in $(seq 1 60); do
    if apt-get update -qq && apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null; then
      break
    fi
    [ "$i" = 60 ] && { echo "apt-get could not install Slurm" >&2; exit 1; }
    sleep 5 # another apt-get holds the lock
  done
fi

H=$(hostname -s)
mkdir -p /run/munge /run/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /etc/slurm
chown munge:munge /run/munge
[ -s /etc/munge/munge.key ] || { mungekey --create >/dev/null 2>&1 || /usr/sbin/create-munge-key -f >/dev/null; }
running munged || runuser -u munge -- /usr/sbin/munged

cat > /etc/slurm/slurm.conf <<CONF
ClusterName=labup
SlurmctldHost=$H
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/cgroup
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
GresTypes=gpu
NodeName=$H CPUs=$(nproc) RealMemory=2000 Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:8
CONF
echo "NodeName=$H Name=gpu File=/dev/null" > /etc/slurm/gres.conf
printf 'CgroupPlugin=cgroup/v1\nCgroupAutomount=no\n' > /etc/slurm/cgroup.conf

running slurmctld || slurmctld
running slurmd || slurmd
for _ in $(seq 1 150); do
  node_up && exit 0
  sleep 0.2
done
# A node left DOWN/INVAL by an earlier configuration comes back with a resume.
scontrol update nodename="$H" state=resume >/dev/null 2>&1 || true
for _ in $(seq 1 50); do
  node_up && exit 0
  sleep 0.2
done
echo "Slurm did not bring node $H up; see /var/log/slurm/" >&2
sinfo >&2 || true
exit 1
