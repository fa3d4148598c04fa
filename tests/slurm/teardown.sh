#!/usr/bin/env bash
# Stop what bringup.sh DIR started (by the PIDs it recorded) and restore /etc/slurm's earlier files.
set -u
D=$(realpath -m "$1")
if [ -e "$D/pids" ]; then
    tac "$D/pids" | while read -r name pid; do
        kill "$pid" 2>/dev/null || continue
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
fi
for f in slurm.conf gres.conf; do
    if [ -e "$D/etc-backup/$f" ]; then cp -p "$D/etc-backup/$f" "/etc/slurm/$f"; else rm -f "/etc/slurm/$f"; fi
done
