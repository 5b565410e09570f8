#!/bin/bash
# Step db.stop-daemons: vpsAdmind stopped on this node. 1.22 watches the MyISAM UPDATE_TIME of
# `transactions`, which the InnoDB conversion takes away.
#   stop-daemons.sh [--check]
# --check: change nothing; exit 0 when vpsAdmind is stopped (`service` status 3), else print
# the command and exit 10.
set -euo pipefail
status=0
service vpsadmind status >/dev/null 2>&1 || status=$?
if [ "$status" -eq 3 ]; then
    exit 0
fi
if [ "${1:-}" = --check ]; then
    echo "service vpsadmind stop"
    exit 10
fi
service vpsadmind stop
