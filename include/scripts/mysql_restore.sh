#!/bin/bash
# Restore a verified full dump (mysql_dump.sh full) into its database on the DB host:
#   mysql_restore.sh FILE.sql.gz DATABASE SHA256
# The file's checksum and completeness are checked before anything is dropped; then every
# table and view of DATABASE is dropped (a failed migration leaves tables the dump does not
# know) and the dump is loaded. Credentials come from ~/.my.cnf.
set -euo pipefail
file=$1 database=$2 sha256=$3
actual=$(sha256sum "$file" | cut -d' ' -f1)
if [ "$actual" != "$sha256" ]; then
    echo "$file changed since it was dumped: sha256 $actual, expected $sha256" >&2
    exit 1
fi
if ! gzip -t "$file" || ! gzip -dc "$file" | tail -n 1 | grep -q '^-- Dump completed'; then
    echo "$file is not a complete dump" >&2
    exit 1
fi
drop=$(mysql --batch --skip-column-names -e "
    SELECT CONCAT('DROP ', IF(TABLE_TYPE = 'VIEW', 'VIEW', 'TABLE'), ' IF EXISTS \`', TABLE_NAME, '\`;')
    FROM information_schema.tables WHERE TABLE_SCHEMA = '$database'")
{ echo 'SET FOREIGN_KEY_CHECKS = 0;'; echo "$drop"; } | mysql "$database"
gzip -dc "$file" | mysql "$database"
echo "restored $database from $file"
