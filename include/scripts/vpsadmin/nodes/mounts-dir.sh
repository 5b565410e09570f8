#!/bin/bash
# Step nodes.mounts-dir: /var/vpsadmin/mounts, where vpsAdmind 2.0 keeps the VPSes' mount
# files (its :mounts_dir).
#   mounts-dir.sh [--check]
set -euo pipefail
if [ -d /var/vpsadmin/mounts ]; then
    exit 0
fi
if [ "${1:-}" = --check ]; then
    echo "mkdir -p /var/vpsadmin/mounts"
    exit 10
fi
mkdir -p /var/vpsadmin/mounts
