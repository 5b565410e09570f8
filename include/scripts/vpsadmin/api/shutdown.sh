#!/bin/bash
# Step api.shutdown: the API, vpsAdmind and the console router stopped wherever they are
# installed on this node (all daemons are already down after the Database section).
#   shutdown.sh [--check]
# --check: change nothing; exit 0 when none of them runs, else print what would be stopped
# and exit 10.
set -euo pipefail
running=""
for service in vpsadmind vpsadmin-api vpsadmin-console; do
    [ -x "/etc/init.d/$service" ] || continue
    status=0
    service "$service" status >/dev/null 2>&1 || status=$?
    [ "$status" -eq 3 ] || running="$running $service"
done
if [ -z "$running" ]; then
    exit 0
fi
for service in $running; do
    if [ "${1:-}" = --check ]; then
        echo "service $service stop"
    else
        service "$service" stop
    fi
done
if [ "${1:-}" = --check ]; then
    exit 10
fi
