#!/bin/bash
# {% raw %} (Airflow shows this script through Jinja; ${#...} is bash, not a Jinja comment)
# Rename vpsAdmind 1.22 backup snapshots to the 2.0 format in one backup pool:
#   <ds>@backup-YYYY-mm-ddTHH:MM:SS  ->  <ds>@YYYY-mm-ddTHH:MM:SS
#   backup-snapshots-rename.sh [--check] POOL
# What the runbook's rename_backup_snapshots.sh meant to do, fixed (research/vpsadmin.md §4.1):
# the published one tests with `[ =~ ]`, which is an error, so it reports the first snapshot
# as bad and exits without renaming anything; and its `sed s/backup-//g` also edits dataset
# names containing "backup-". Here only the snapshot part is renamed, every name is checked
# before the first rename, and names already in the new format are left alone (re-runnable).
# --check: change nothing; exit 0 when nothing is left to rename, else print the renames and
# exit 10. A snapshot in neither format stops it before any change (exit 1).
set -euo pipefail
check=0
if [ "${1:-}" = --check ]; then check=1; shift; fi
pool=$1
old='^backup-[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}$'
new='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}$'
renames=() bad=()
while IFS= read -r snap; do
    [ -n "$snap" ] || continue
    ds=${snap%@*} name=${snap#*@}
    if [[ $name =~ $new ]]; then
        continue
    elif [[ $name =~ $old ]]; then
        renames+=("$ds@$name" "$ds@${name#backup-}")
    else
        bad+=("$snap")
    fi
done < <(zfs list -H -r -t snapshot -o name "$pool")
if [ ${#bad[@]} -gt 0 ]; then
    printf 'bad snapshot name: %s\n' "${bad[@]}" >&2
    exit 1
fi
if [ ${#renames[@]} -eq 0 ]; then
    exit 0
fi
for ((i = 0; i < ${#renames[@]}; i += 2)); do
    if [ $check = 1 ]; then
        echo "zfs rename ${renames[i]} ${renames[i+1]}"
    else
        zfs rename "${renames[i]}" "${renames[i+1]}"
    fi
done
[ $check = 1 ] && exit 10
exit 0
# {% endraw %}
