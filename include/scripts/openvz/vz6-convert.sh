#!/bin/bash
# One `vpsadminos-convert vz6 migrate STEP` for one container, run as a remote job (job.sh:
# detached from the SSH session, one copy at a time, its state on the node). stdin is empty:
# the converter never waits on a prompt.
#   vz6-convert.sh STEP [CONVERTER ARGS...]
#   vz6-convert.sh transfer CTID DST PORT SLOTS OWNER START(yes|no)
# A transfer takes a transfer slot, stops the container itself (so the converter hands it over
# stopped), lets the converter sync and hand over, sets the owner's user namespace and starts
# it on the destination; it prints the downtime, from the stop to the start.
set -uo pipefail
step=$1
shift
if [ "$step" != transfer ]; then
    vpsadminos-convert vz6 migrate "$step" "$@" < /dev/null
    exit
fi
ctid=$1 dst=$2 port=$3 slots=$4 owner=$5 start=$6
{% include "pair.sh" %}
take_slot "$slots"
down=$(date +%s.%N)
vzctl stop "$ctid" || exit 1
vpsadminos-convert vz6 migrate transfer "$ctid" < /dev/null || exit 1
settle "$ctid" "$owner" "$start" || { echo "airlift: the destination refused the container" >&2; exit 1; }
up=$(date +%s.%N)
echo "airlift: downtime $(awk -v a="$down" -v b="$up" 'BEGIN { printf "%.3f", b - a }') s"
