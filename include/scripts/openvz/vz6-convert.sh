#!/bin/bash
# One `vpsadminos-convert vz6 migrate STEP` for one container, run as a remote job (job.sh:
# detached from the SSH session, one copy at a time, its state on the node). stdin is empty:
# the converter never waits on a prompt. A transfer first takes a transfer slot and reports how
# long the step took: the container's downtime (the converter stops it first and starts it on
# the destination last).
#   vz6-convert.sh SLOTS STEP [CONVERTER ARGS...]
set -uo pipefail
slots=$1 step=$2
shift 2
{% include "slot.sh" %}
[ "$step" != transfer ] || take_slot "$slots"
start=$(date +%s.%N)
vpsadminos-convert vz6 migrate "$step" "$@" < /dev/null
status=$?
end=$(date +%s.%N)
echo "airlift: $step exited $status after $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }') s"
exit $status
