#!/bin/bash
# Load a SQL file into a database on the DB host, the way the runbook reloads the encoding
# dump: `mysql --default-character-set=utf8 DATABASE < FILE`.
#   mysql_load.sh FILE DATABASE SHA256
# The file's checksum is checked first, so what is loaded is exactly what was dumped.
set -euo pipefail
file=$1 database=$2 sha256=$3
actual=$(sha256sum "$file" | cut -d' ' -f1)
if [ "$actual" != "$sha256" ]; then
    echo "$file changed since it was dumped: sha256 $actual, expected $sha256" >&2
    exit 1
fi
mysql --default-character-set=utf8 "$database" < "$file"
