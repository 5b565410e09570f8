#!/bin/bash
# Step db.timezones: load the MySQL time zone tables from the DB host's zoneinfo (runbook:
# "Database timezones"). Credentials come from the DB host's ~/.my.cnf.
set -euo pipefail
mysql_tzinfo_to_sql /usr/share/zoneinfo 2>/dev/null | mysql mysql
