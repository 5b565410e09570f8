#!/bin/bash
# The snapshot nas/move-data.sh took of a NAS pool before moving its data, destroyed once the
# run has remounted the NAS (the moved data is in use again): not a runbook line of its own.
#   snapshot-release.sh [--check] POOL
# --check: change nothing; exit 0 when there is no such snapshot, else print the command and
# exit 10.
set -euo pipefail
check=0
if [ "${1:-}" = --check ]; then check=1; shift; fi
snapshot="$1@airlift-before-nas-move"
if ! zfs list -H -t snapshot -o name "$snapshot" >/dev/null 2>&1; then
    exit 0
fi
if [ $check = 1 ]; then
    echo "zfs destroy -r $snapshot"
    exit 10
fi
zfs destroy -r "$snapshot"
