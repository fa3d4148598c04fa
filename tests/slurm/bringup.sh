#!/usr/bin/env bash
# Bring up a single-node SLURM on localhost (Debian 12 packages, root, no systemd), for tests/test_slurm.py.
#   tests/slurm/bringup.sh DIR
# DIR (absolute) receives state, spool, logs, jobcomp.log (SLURM's record of every finished job, used
# instead of an accounting database) and pids ("name pid" lines: the caller stops them, by PID).
# /etc/slurm/slurm.conf and gres.conf are written at the default path (the executor plugin's sbatch/srun
# calls do not carry SLURM_CONF); earlier files there are saved under DIR/etc-backup and restored by
# teardown.sh. Node: CPUs=8 on any machine (config_overrides) and two fake GPUs (/dev/null, /dev/zero).
set -euo pipefail
D=$(realpath -m "$1")
mkdir -p "$D/state" "$D/spool" "$D/etc-backup" /etc/slurm /run/munge /var/log/munge /var/lib/munge
: > "$D/pids"
HOST=$(hostname -s)

for f in slurm.conf gres.conf; do
    if [ -e "/etc/slurm/$f" ]; then cp -p "/etc/slurm/$f" "$D/etc-backup/$f"; fi
done

# munge: a fresh key, daemon as the munge user
dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
chown munge:munge /etc/munge/munge.key /run/munge /var/log/munge /var/lib/munge
chmod 400 /etc/munge/munge.key
chmod 700 /etc/munge
if [ -e /run/munge/munged.pid ] && kill -0 "$(cat /run/munge/munged.pid)" 2>/dev/null; then
    kill "$(cat /run/munge/munged.pid)"; sleep 0.5
fi
rm -f /run/munge/munge.socket.2*
runuser -u munge -- munged --force
for _ in $(seq 50); do [ -s /run/munge/munged.pid ] && break; sleep 0.1; done
echo "munged $(cat /run/munge/munged.pid)" >> "$D/pids"
munge -n | unmunge > /dev/null

cat > /etc/slurm/slurm.conf <<CONF
# Written by tests/slurm/bringup.sh for the unlearnbench SLURM test (state under $D)
ClusterName=unlearnbench
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=300
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
EnforcePartLimits=ALL
GresTypes=gpu
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/slurmctld.log
SlurmdLogFile=$D/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$D/jobcomp.log
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=8 RealMemory=16000 Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
cat > /etc/slurm/gres.conf <<CONF
Name=gpu File=/dev/null
Name=gpu File=/dev/zero
CONF

slurmctld -D -i -f /etc/slurm/slurm.conf > "$D/slurmctld.out" 2>&1 &
echo "slurmctld $!" >> "$D/pids"
slurmd -D -f /etc/slurm/slurm.conf > "$D/slurmd.out" 2>&1 &
echo "slurmd $!" >> "$D/pids"

for _ in $(seq 100); do
    if timeout 5 sinfo -h -o '%T' 2>/dev/null | grep -qx idle; then exit 0; fi
    sleep 0.2
done
echo "SLURM did not come up; logs in $D" >&2
tail -n 20 "$D/slurmctld.log" "$D/slurmd.log" "$D/slurmctld.out" "$D/slurmd.out" >&2 || true
exit 1
