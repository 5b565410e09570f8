#!/bin/bash
# Load the MySQL time zone tables from the system's zoneinfo (runbook: Database timezones).
set -euo pipefail
mysql_tzinfo_to_sql /usr/share/zoneinfo 2>/dev/null | mysql mysql
