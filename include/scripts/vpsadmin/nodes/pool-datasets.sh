#!/bin/bash
# Step nodes.pool-datasets: POOL/vpsadmin/mount and POOL/vpsadmin/download on a pool.
#   pool-datasets.sh [--check] POOL
set -euo pipefail
check=0
if [ "${1:-}" = --check ]; then check=1; shift; fi
pool=$1
status=0
for dataset in "$pool/vpsadmin/mount" "$pool/vpsadmin/download"; do
    zfs list -H -o name "$dataset" >/dev/null 2>&1 && continue
    status=10
    if [ "$check" = 1 ]; then
        echo "zfs create -p $dataset"
    else
        zfs create -p "$dataset"
    fi
done
[ "$check" = 1 ] && exit "$status"
exit 0
