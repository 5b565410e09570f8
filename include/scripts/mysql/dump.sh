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
# Prints one JSON line: {"path", "size", "sha256", "reused"}.
set -euo pipefail
umask 077  # the dump holds every password hash of the panel: readable by root only, from its first byte

mode=$1 database=$2 output=$3
shift 3

verify() {
    case "$mode" in
        full) gzip -t "$1" 2>/dev/null && gzip -dc "$1" | tail -n 1 | grep -q '^-- Dump completed' ;;
        latin1) tail -n 1 "$1" | grep -q '^-- Dump completed' ;;
    esac
}

report() {
    local size sha
    size=$(stat -c %s "$output")
    sha=$(sha256sum "$output" | cut -d' ' -f1)
    printf '{"path": "%s", "size": %s, "sha256": "%s", "reused": %s}\n' "$output" "$size" "$sha" "$1"
}

if [ -e "$output" ] && verify "$output"; then
    report true
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
    *)
        echo "unknown dump mode $mode" >&2
        exit 2
        ;;
esac
if ! verify "$partial"; then
    echo "the dump in $partial is incomplete" >&2
    exit 1
fi
mv "$partial" "$output"
report false
