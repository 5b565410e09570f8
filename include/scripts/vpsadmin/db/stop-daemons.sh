#!/bin/bash
# Step db.stop-daemons: vpsAdmind stopped on this node. 1.22 watches the MyISAM UPDATE_TIME of
# `transactions`, which the InnoDB conversion takes away.
#   stop-daemons.sh [--check]
# --check: change nothing; exit 0 when vpsAdmind is stopped (`service` status 3), else print
# the command and exit 10. A stop by this step is marked on the node (MARK), so preflight
# tells a daemon the upgrade stopped from one that died; start-vpsadmind.sh removes it.
set -euo pipefail
MARK=/var/lib/airlift/vpsadmind-stopped-by-upgrade
status=0
service vpsadmind status >/dev/null 2>&1 || status=$?
if [ "$status" -eq 3 ]; then
    exit 0
fi
if [ "${1:-}" = --check ]; then
    echo "service vpsadmind stop"
    exit 10
fi
mkdir -p "${MARK%/*}"
date -u +%FT%TZ > "$MARK"
service vpsadmind stop
