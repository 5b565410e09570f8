#!/bin/bash
# Dump a MySQL database (or some of its tables) on the DB host and verify the file.
#   dump.sh full DATABASE OUTPUT.sql.gz
#       the whole database, consistent (all tables locked: production has MyISAM tables),
#       with routines, triggers and events, gzip-compressed
#   dump.sh latin1 DATABASE OUTPUT.sql TABLE...
#       the runbook's encoding dump: --skip-set-charset --default-character-set=latin1
# Credentials come from the DB host's ~/.my.cnf, never from the command line.
# Idempotent: an existing OUTPUT that verifies is kept (a retry does not dump twice); a
# partial one is replaced. The dump is written to OUTPUT.partial and renamed when complete.
# Verified by reading it back whole (for a .gz, through gzip's own integrity check): it must
# end in mysqldump's completion trailer. Prints one JSON line: {"path", "size", "sha256",
# "reused", "bytes" (its uncompressed size, counted while reading it back: `gzip -l` is wrong
# past 4 GiB), "tables" (those it creates)}; the step checks every table it expects is there.
set -euo pipefail
umask 077  # the dump holds every password hash of the panel: readable by root only, from its first byte

mode=$1 database=$2 output=$3
shift 3
# Names go to mysqldump as arguments: one that starts with `-` would be an option.
plain='^[A-Za-z0-9_]{1,64}$'
case "$mode" in
    full) suffix=.sql.gz ;;
    latin1) suffix=.sql ;;
    *) echo "unknown dump mode $mode" >&2; exit 2 ;;
esac
if [[ ! $database =~ $plain ]]; then
    echo "$database is not a plain database name" >&2
    exit 2
fi
for table in "$@"; do
    if [[ ! $table =~ $plain ]]; then
        echo "$table is not a plain table name" >&2
        exit 2
    fi
done
if [[ ! $output =~ ^/[A-Za-z0-9._+/-]+$ || /$output/ == */../* || $output != *"$suffix" ]]; then
    echo "$output is not an absolute path of letters, digits and ._+- ending in $suffix" >&2
    exit 2
fi

# The dump read back whole, summed up as JSON fields: "bytes", "complete" (it ends in the
# completion trailer), "tables". A .gz that fails gzip's integrity check fails this.
summary() {
    case "$mode" in
        full) gzip -dc "$1" ;;
        latin1) cat "$1" ;;
    esac | LC_ALL=C awk '
        { bytes += length($0) + 1; last = $0 }
        match($0, /^CREATE TABLE `([^`]|``)*`/) {
            name = substr($0, 15, RLENGTH - 15)
            gsub(/``/, "`", name); gsub(/\\/, "\\\\", name); gsub(/"/, "\\\"", name)
            tables = tables (tables == "" ? "" : ", ") "\"" name "\""
        }
        END {
            printf "\"bytes\": %.0f, \"complete\": %s, \"tables\": [%s]\n", bytes,
                last ~ /^-- Dump completed/ ? "true" : "false", tables
        }'
}

# Prints the summary of a dump that verifies; fails for any other.
verified() {
    local fields
    fields=$(summary "$1") || return 1
    [[ $fields == *'"complete": true'* ]] || return 1
    echo "$fields"
}

report() {
    local size sha
    size=$(stat -c %s "$output")
    sha=$(sha256sum "$output" | cut -d' ' -f1)
    printf '{"path": "%s", "size": %s, "sha256": "%s", "reused": %s, %s}\n' "$output" "$size" "$sha" "$1" "$2"
}

if [ -e "$output" ] && fields=$(verified "$output"); then
    report true "$fields"
    exit 0
fi

dir=$(dirname "$output")
if [ ! -d "$dir" ]; then
    echo "backup directory $dir does not exist" >&2
    exit 2
fi

partial="$output.partial"
case "$mode" in
    full)
        mysqldump --opt --quote-names --lock-all-tables --routines --triggers --events \
            --default-character-set=utf8mb4 "$database" | gzip -c > "$partial"
        ;;
    latin1)
        mysqldump --opt --quote-names --skip-set-charset --default-character-set=latin1 \
            "$database" "$@" > "$partial"
        ;;
esac
if ! fields=$(verified "$partial"); then
    echo "the dump in $partial is incomplete" >&2
    exit 1
fi
mv "$partial" "$output"
report false "$fields"
