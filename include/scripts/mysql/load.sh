#!/bin/bash
# Load a dump into a database on the DB host:
#   load.sh FILE DATABASE SHA256 [--replace]
# FILE is plain SQL (the encoding fix reloads its latin1 dump as utf8, as the runbook does:
# `mysql --default-character-set=utf8 DATABASE < FILE`) or a gzip-compressed full dump
# (dump.sh full). The file's checksum, and for a .gz its integrity and completion
# trailer, are checked before anything changes, so what is loaded is exactly what was dumped.
# --replace first drops every table and view of DATABASE: restoring a backup after a failed
# migration, which leaves tables the dump does not know. Credentials come from ~/.my.cnf.
set -euo pipefail
file=$1 database=$2 sha256=$3 replace=${4:-}
# They come from XCom: checked before any of them reaches SQL or a command's arguments (a
# FILE that starts with `-` would be an option).
if [[ ! $database =~ ^[A-Za-z0-9_]{1,64}$ ]]; then
    echo "$database is not a plain database name" >&2
    exit 2
fi
if [[ ! $file =~ ^/[A-Za-z0-9._+/-]+$ || /$file/ == */../* ]]; then
    echo "$file is not an absolute path of letters, digits and ._+-" >&2
    exit 2
fi
if [[ ! $sha256 =~ ^[0-9a-f]{64}$ ]]; then
    echo "$sha256 is not a sha256 checksum" >&2
    exit 2
fi
if [[ -n $replace && $replace != --replace ]]; then
    echo "unknown option $replace" >&2
    exit 2
fi
actual=$(sha256sum "$file" | cut -d' ' -f1)
if [ "$actual" != "$sha256" ]; then
    echo "$file changed since it was dumped: sha256 $actual, expected $sha256" >&2
    exit 1
fi
case "$file" in
    *.gz)
        if ! gzip -t "$file" || ! gzip -dc "$file" | tail -n 1 | grep -q '^-- Dump completed'; then
            echo "$file is not a complete dump" >&2
            exit 1
        fi
        read_dump() { gzip -dc "$file"; } ;;
    *) read_dump() { cat "$file"; } ;;
esac
if [ "$replace" = --replace ]; then
    drop=$(mysql --batch --skip-column-names -e "
        SELECT CONCAT('DROP ', IF(TABLE_TYPE = 'VIEW', 'VIEW', 'TABLE'), ' IF EXISTS \`', TABLE_NAME, '\`;')
        FROM information_schema.tables WHERE TABLE_SCHEMA = '$database'")
    { echo 'SET FOREIGN_KEY_CHECKS = 0;'; echo "$drop"; } | mysql "$database"
fi
read_dump | mysql --default-character-set=utf8 "$database"
echo "loaded $file into $database"
