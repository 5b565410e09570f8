#!/bin/bash
# {% raw %} (Airflow shows this script through Jinja; ${#...} is bash, not a Jinja comment)
# Rearrange the backup datasets of one backup pool into the 2.0 tree/branch layout:
#   POOL/<vps>@<ts>...  ->  POOL/<vps>/tree.0/branch-<oldest ts>.0@<ts>...
#   backup-datasets-rearrange.sh [--check] POOL
# The runbook links rearrange_backup_datasets.sh but it was never published (research/
# vpsadmin.md §4.2); this does what the 2.0 code expects (DatasetTree#full_name "tree.N",
# Branch#full_name "branch-<name>.N"). Per dataset: rename it aside to POOL/<vps>.airlift-old,
# create POOL/<vps> and POOL/<vps>/tree.0, rename the old dataset (data and snapshots) to
# POOL/<vps>/tree.0/branch-<oldest>.0. A dataset whose rename aside happened in an interrupted
# run is picked up where it stopped. Run after backup-snapshots-rename.sh (the branch is named
# after the oldest snapshot in the new format). Datasets without snapshots stay as they are.
# --check: change nothing; exit 0 when nothing is left, else print the plan and exit 10.
set -euo pipefail
check=0
if [ "${1:-}" = --check ]; then check=1; shift; fi
pool=$1
aside=.airlift-old
todo=()
while IFS= read -r ds; do
    [ "$ds" = "$pool" ] && continue
    rel=${ds#"$pool"/}
    case "$rel" in */*) continue ;; esac            # direct children only
    if [[ $rel == *"$aside" ]]; then
        todo+=("${rel%"$aside"}")                    # interrupted: finish it
        continue
    fi
    zfs list -H -o name "$ds/tree.0" >/dev/null 2>&1 && continue
    oldest=$(zfs list -H -d 1 -t snapshot -o name -s createtxg "$ds" | head -n 1)
    [ -n "$oldest" ] && todo+=("$rel")
done < <(zfs list -H -d 1 -t filesystem -o name "$pool")
[ ${#todo[@]} -eq 0 ] && exit 0
for rel in $(printf '%s\n' "${todo[@]}" | sort -u); do
    ds=$pool/$rel old=$pool/$rel$aside
    src=$ds
    zfs list -H -o name "$old" >/dev/null 2>&1 && src=$old
    oldest=$(zfs list -H -d 1 -t snapshot -o name -s createtxg "$src" | head -n 1)
    branch=$ds/tree.0/branch-${oldest#*@}.0
    if [ $check = 1 ]; then
        echo "$ds -> $branch"
        continue
    fi
    [ "$src" = "$ds" ] && zfs rename "$ds" "$old"
    zfs list -H -o name "$ds" >/dev/null 2>&1 || zfs create "$ds"
    zfs list -H -o name "$ds/tree.0" >/dev/null 2>&1 || zfs create "$ds/tree.0"
    zfs rename "$old" "$branch"
    echo "$ds: $branch"
done
[ $check = 1 ] && exit 10
exit 0
# {% endraw %}
