#!/bin/bash
# Restore a database from a dump made by dump.sh, in one transaction.
#   restore.sh SERVER PORT USER DATABASE DUMP SHA256
# The dump must still have the checksum recorded when it was made. The database's schema
# `public` is dropped and rebuilt from the dump inside the same transaction as the restore,
# so tables a failed migration added go too, and a restore that fails leaves the database
# as it was. The services that use the database must be stopped. Prints one JSON line:
# {"database", "dump", "sha256"}.
set -euo pipefail

server=$1 port=$2 user=$3 database=$4 dump=$5 sha=$6
plain='^[A-Za-z0-9_]{1,63}$'
if [[ ! $database =~ $plain || ! $user =~ $plain ]]; then
    echo "$database or $user is not a plain PostgreSQL name" >&2
    exit 2
fi
if [[ ! $server =~ ^[A-Za-z0-9.:-]+$ || ! $port =~ ^[0-9]{1,5}$ ]]; then
    echo "$server:$port is not a host name or address and a port" >&2
    exit 2
fi
if [[ ! $dump =~ ^/[A-Za-z0-9._+/-]+\.dump$ || /$dump/ == */../* || ! $sha =~ ^[0-9a-f]{64}$ ]]; then
    echo "$dump is not an absolute path ending in .dump, or $sha not a sha256" >&2
    exit 2
fi
actual=$(sha256sum -- "$dump" | cut -d' ' -f1)
if [[ $actual != "$sha" ]]; then
    echo "$dump has sha256 $actual, not $sha as when it was made: not restoring it" >&2
    exit 1
fi
# The restore's SQL is written out whole first: psql must see it only once pg_restore has
# read the entire dump, or a truncated dump would commit the schema's drop alone.
umask 077  # the SQL holds every row of the database
script=$(mktemp "$dump.restore.XXXXXX")
trap 'rm -f -- "$script"' EXIT
{
    echo 'DROP SCHEMA public CASCADE;'
    echo 'CREATE SCHEMA public;'
} > "$script"
pg_restore --file=- -- "$dump" >> "$script"
PGOPTIONS="-c client_min_messages=warning" psql --host="$server" --port="$port" --username="$user" \
    --no-password --dbname="$database" --single-transaction --set=ON_ERROR_STOP=1 --quiet --no-psqlrc \
    --file="$script" > /dev/null
printf '{"database": "%s", "dump": "%s", "sha256": "%s"}\n' "$database" "$dump" "$sha"
