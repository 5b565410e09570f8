#!/bin/bash
# Which MySQL server this host's client reaches with its ~/.my.cnf (the one dump.sh and
# load.sh use):
#   server-identity.sh LOCK
# Prints one tab-separated line: the session holding the lock LOCK there (0: none),
# @@hostname, @@port, @@server_id. Preflight holds LOCK, a name made for one check, through
# connection vpsadmin_db: the same server shows that session holding it, another server none
# (hostname, port and server_id alone can be alike on two servers: copies of one image).
set -euo pipefail
lock=$1
if [[ ! $lock =~ ^airlift-[0-9a-f]{32}$ ]]; then
    echo "$lock is not a lock name of this check" >&2
    exit 2
fi
mysql --batch --skip-column-names -e "SELECT IFNULL(IS_USED_LOCK('$lock'), 0), @@hostname, @@port, @@server_id"
