#!/bin/bash
# {% raw %} (Airflow shows this script through Jinja; ${#...} is bash, not a Jinja comment)
# Step nas.move-data: move all data of every NAS dataset of one pool into its top-level
# folder private/:
#   move-data.sh [--check] POOL
# The runbook's migrate_nas_step1.sh + step2.sh (research/vpsadmin.md §4.4), fixed: hidden
# files are moved too (the runbook's known issue), names with spaces or newlines are safe
# (NUL-separated), mountpoints come from zfs (not assumed /<name>), child datasets' mountpoints
# and the pool's vpsadmin/ datasets are left in place (exact paths, not a substring grep).
# Nothing is overwritten: before the first move every dataset is checked, and an entry whose
# name already exists under private/, or a private/ that is another dataset's mountpoint (a
# child dataset named `private`, which storage.rename-private renames first), refuses the
# whole move (exit 1, each refusal on stderr), in --check too. Every moved file's sha256 is
# compared with its copy under private/ before it reports done. An interrupted move resumes:
# what is still outside private/ moves on the next run. Before the first move the pool gets a
# recursive snapshot @airlift-before-nas-move (kept if it exists), the way back should the
# move go wrong; nas/snapshot-release.sh destroys it once the NAS remount ran.
# --check: change nothing; exit 0 when every dataset holds only private/ (and child
# mountpoints), else print what would move and exit 10.
set -euo pipefail
check=0
if [ "${1:-}" = --check ]; then check=1; shift; fi
pool=$1
mapfile -t datasets < <(zfs list -H -r -t filesystem -o name "$pool")
declare -A mountpoint
for ds in "${datasets[@]}"; do
    mountpoint[$ds]=$(zfs get -H -o value mountpoint "$ds")
done

# entries of a dataset root that are neither private/ nor a child dataset's mountpoint (NUL-separated)
entries_of() {
    local mp=$1 entry child
    while IFS= read -r -d '' entry; do
        [ "$entry" = "$mp/private" ] && continue
        for child in "${datasets[@]}"; do
            [ "${mountpoint[$child]}" = "$entry" ] && continue 2
        done
        printf '%s\0' "$entry"
    done < <(find "$mp" -mindepth 1 -maxdepth 1 -print0)
}

todo=() refused=0
for ds in "${datasets[@]}"; do
    [ "$ds" = "$pool" ] && continue
    case "$ds" in "$pool"/vpsadmin|"$pool"/vpsadmin/*) continue ;; esac
    mp=${mountpoint[$ds]}
    case "$mp" in none|legacy|-) continue ;; esac
    mapfile -d '' -t entries < <(entries_of "$mp")
    [ ${#entries[@]} -eq 0 ] && continue
    for child in "${datasets[@]}"; do
        if [ "${mountpoint[$child]}" = "$mp/private" ]; then
            echo "refused: $ds: $mp/private is the mountpoint of dataset $child (rename it first)" >&2
            refused=1
            continue 2
        fi
    done
    for e in "${entries[@]}"; do
        name=${e##*/}
        if [ -e "$mp/private/$name" ] || [ -L "$mp/private/$name" ]; then
            echo "refused: $ds: $mp/private/$name exists; moving $e there would overwrite it" >&2
            refused=1
        fi
    done
    todo+=("$ds")
done
[ $refused = 1 ] && exit 1

snapshot="$pool@airlift-before-nas-move"
if [ ${#todo[@]} -gt 0 ] && ! zfs list -H -t snapshot -o name "$snapshot" >/dev/null 2>&1; then
    if [ $check = 1 ]; then
        echo "zfs snapshot -r $snapshot (kept until the NAS remount ran)"
    else
        zfs snapshot -r "$snapshot"
    fi
fi

for ds in "${todo[@]}"; do
    mp=${mountpoint[$ds]}
    mapfile -d '' -t entries < <(entries_of "$mp")
    if [ $check = 1 ]; then
        echo "$ds: move ${#entries[@]} entr$( [ ${#entries[@]} = 1 ] && echo y || echo ies) into $mp/private/"
        continue
    fi
    mkdir -p "$mp/private"
    before=$(cd "$mp" && for e in "${entries[@]}"; do find "./${e#"$mp"/}" -type f -print0; done \
             | sort -z | xargs -0r sha256sum)
    for e in "${entries[@]}"; do
        mv -n -- "$e" "$mp/private/"
    done
    after=$(cd "$mp/private" && for e in "${entries[@]}"; do find "./${e#"$mp"/}" -type f -print0; done \
            | sort -z | xargs -0r sha256sum)
    if [ "$before" != "$after" ]; then
        echo "$ds: checksums under $mp/private differ from the originals" >&2
        exit 1
    fi
    echo "$ds: moved ${#entries[@]} entries into $mp/private/"
done
[ $check = 1 ] && [ ${#todo[@]} -gt 0 ] && exit 10
exit 0
# {% endraw %}
