#!/bin/bash
# Step scheduler.start: vpsadmin-scheduler (the API's repeatable tasks, cron based) running on
# the API host. The runbook leaves starting it to the administrator; an init script for
# /opt/vpsadminapi/bin/vpsadmin-scheduler is installed where there is none.
#   start.sh [--check]
set -euo pipefail
if service vpsadmin-scheduler status >/dev/null 2>&1; then
    exit 0
fi
if [ "${1:-}" = --check ]; then
    [ -x /etc/init.d/vpsadmin-scheduler ] || echo "install /etc/init.d/vpsadmin-scheduler"
    echo "service vpsadmin-scheduler start"
    exit 10
fi
if [ ! -x /etc/init.d/vpsadmin-scheduler ]; then
    printf '%s\n' '#!/bin/sh' '# vpsadmin-scheduler: repeatable tasks of the vpsAdmin API (cron based)' \
        'exec /opt/vpsadminapi/bin/vpsadmin-scheduler "$@"' > /etc/init.d/vpsadmin-scheduler
    chmod 755 /etc/init.d/vpsadmin-scheduler
fi
service vpsadmin-scheduler start
