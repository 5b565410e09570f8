#!/bin/bash
# Dump a PostgreSQL database on the host that runs this script and verify the file.
#   dump.sh SERVER PORT USER DATABASE OUTPUT.dump
# SERVER/PORT/USER: where pg_dump connects (the password, if any, comes from that host's
# ~/.pgpass, never from the command line). The dump is pg_dump's custom format (-Fc:
# compressed, restorable table by table with pg_restore), written to OUTPUT.partial and
# renamed once complete. Idempotent: an existing OUTPUT that verifies is kept (a retry does
# not dump twice); a partial one is replaced. Verified by pg_restore reading its whole table
# of contents. Prints one JSON line: {"path", "size", "sha256", "reused", "tables" (the
# tables whose data it holds)}; the step checks every table it expects is there.
set -euo pipefail
umask 077  # the dump holds every user's password hash and token: readable by root only

server=$1 port=$2 user=$3 database=$4 output=$5
plain='^[A-Za-z0-9_]{1,63}$'
if [[ ! $database =~ $plain || ! $user =~ $plain ]]; then
    echo "$database or $user is not a plain PostgreSQL name" >&2
    exit 2
fi
if [[ ! $server =~ ^[A-Za-z0-9.:-]+$ || ! $port =~ ^[0-9]{1,5}$ ]]; then
    echo "$server:$port is not a host name or address and a port" >&2
    exit 2
fi
if [[ ! $output =~ ^/[A-Za-z0-9._+/-]+\.dump$ || /$output/ == */../* ]]; then
    echo "$output is not an absolute path of letters, digits and ._+- ending in .dump" >&2
    exit 2
fi

# The tables whose data a dump holds, one per line, from its table of contents (fails on a
# truncated or corrupt file).
tables() {
    pg_restore --list -- "$1" | LC_ALL=C awk '$4 == "TABLE" && $5 == "DATA" { print $7 }' | sort
}

summary() {
    local reused=$1 size sha names
    size=$(stat -c %s -- "$output")
    sha=$(sha256sum -- "$output" | cut -d' ' -f1)
    names=$(tables "$output" | LC_ALL=C awk '{ printf "%s\"%s\"", (NR > 1 ? ", " : ""), $0 }')
    printf '{"path": "%s", "size": %s, "sha256": "%s", "reused": %s, "tables": [%s]}\n' \
        "$output" "$size" "$sha" "$reused" "$names"
}

if [[ -f $output ]] && tables "$output" > /dev/null 2>&1; then
    summary true
    exit 0
fi
mkdir -p -- "$(dirname -- "$output")"
rm -f -- "$output.partial"
pg_dump --host="$server" --port="$port" --username="$user" --no-password --format=custom \
    --file="$output.partial" -- "$database"
tables "$output.partial" > /dev/null
sync -- "$output.partial"
mv -- "$output.partial" "$output"
summary false
