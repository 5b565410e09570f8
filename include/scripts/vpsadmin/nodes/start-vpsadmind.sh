#!/bin/bash
# vpsAdmind 2.0 started (stopped since the Database section) and answering `vpsadmindctl
# ping`: `reinit fw` talks to it, and the NAS remount needs it. Not a runbook line of its own.
#   start-vpsadmind.sh [--check]
set -euo pipefail
MARK=/var/lib/airlift/vpsadmind-stopped-by-upgrade  # left by db/stop-daemons.sh
if service vpsadmind status >/dev/null 2>&1 && vpsadmindctl ping >/dev/null 2>&1; then
    rm -f "$MARK"
    exit 0
fi
if [ "${1:-}" = --check ]; then
    echo "service vpsadmind start; wait for vpsadmindctl ping"
    exit 10
fi
service vpsadmind status >/dev/null 2>&1 || service vpsadmind start
for _ in $(seq 60); do
    vpsadmindctl ping >/dev/null 2>&1 && { rm -f "$MARK"; exit 0; }
    sleep 1
done
vpsadmindctl ping
