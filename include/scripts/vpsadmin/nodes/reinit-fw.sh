#!/bin/bash
# Step nodes.reinit-fw: `vpsadmindctl reinit fw` once after the upgrade (only the rules of
# active addresses stay); the marker /var/vpsadmin/.fw-reinit-v2 says it was done.
#   reinit-fw.sh [--check]
set -euo pipefail
marker=/var/vpsadmin/.fw-reinit-v2
if [ -e "$marker" ]; then
    exit 0
fi
if [ "${1:-}" = --check ]; then
    echo "vpsadmindctl reinit fw"
    exit 10
fi
vpsadmindctl reinit fw
mkdir -p "$(dirname "$marker")"
touch "$marker"
