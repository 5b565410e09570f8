#!/bin/bash
# Step prereq.install-nc: `yum install nc` on a node that lacks it.
#   install-nc.sh [--check]
# --check: change nothing; exit 0 when nc is installed, else print the command and exit 10.
set -euo pipefail
if rpm -q nc >/dev/null 2>&1; then
    exit 0
fi
if [ "${1:-}" = --check ]; then
    echo "yum -y install nc"
    exit 10
fi
yum -y install nc
