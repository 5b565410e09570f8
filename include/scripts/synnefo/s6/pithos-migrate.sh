#!/bin/bash
# Step s6.pithos-migrate on the Pithos host (seed 004, 6.4; research synnefo.md §3): the
# Pithos backend database to alembic head. An installation that never ran pithos-migrate has
# no revision ("current" prints None): it is at 0.12.5's head, 3dd56e750a3, and is stamped so
# first. `upgrade head` runs in one transaction (PostgreSQL's DDL is transactional), so a
# failure leaves the database as it was. Run as a remote job.
#   pithos-migrate.sh BASE_REVISION
set -euo pipefail
base=$1
current=$(pithos-migrate current 2>/dev/null | sed -n 's/^Current revision for .*: //p' | tail -1)
echo "current: ${current:-(nothing printed)}"
if [ -z "$current" ]; then
    echo "airlift: pithos-migrate current printed no revision" >&2
    exit 1
fi
if [ "$current" = None ]; then
    echo "+ pithos-migrate stamp $base"
    pithos-migrate stamp "$base"
fi
echo "+ pithos-migrate upgrade head"
pithos-migrate upgrade head
