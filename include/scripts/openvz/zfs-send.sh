#!/bin/bash
# ZFS streams of one container's datasets from the OpenVZ node to its staged copy on the
# vpsAdminOS node (`zfs send | ssh root@DST zfs recv -s`), run as a remote job (job.sh: it
# outlives the SSH session and the Airflow worker, never two copies at once).
#   zfs-send.sh sync  CTID DATASET DST PORT DST_DATASET DELTA_BYTES PASSES
#   zfs-send.sh final CTID DATASET DST PORT DST_DATASET SLOTS OWNER START(yes|no)
# sync: passes while the container runs, each sending what changed since the last one (the
# first: every snapshot the dataset has, then the new one), until one moves at most
# DELTA_BYTES or PASSES were made. final: one more pass while it runs, then the downtime:
# vzctl stop, a last snapshot and its (small) delta, the handover to osctld (`receive transfer
# CTID`), the owner's user namespace and the start; prints the downtime.
# Every send first finishes an interrupted receive from its resume token; each dataset goes
# from the newest snapshot the destination has, so a rerun continues where the last one
# stopped. Snapshots are named airlift-<mode>-<ns>; only the newest is kept on each side.
set -uo pipefail
mode=$1 ctid=$2 src=$3 dst=$4 port=$5 dst_root=$6
shift 6
{% include "pair.sh" %}

to_bytes() {  # 1.23G -> bytes (zfs's 1024-based short sizes)
    awk -v s="$1" 'BEGIN { n = s + 0; u = substr(s, length(s)); m = index("KMGTPE", u);
        if (m) n *= 1024 ^ m; printf "%d", n }'
}

progress() {  # zfs send -v on stderr -> "sent X of Y (P%) at R MiB/s" lines
    awk 'function b(s,  n, u, m) { n = s + 0; u = substr(s, length(s)); m = index("KMGTPE", u);
            if (m) n *= 1024 ^ m; return n }
         /^total estimated size is/ { total = b($5); start = systime(); print; fflush(); next }
         /^[0-9][0-9]:[0-9][0-9]:[0-9][0-9]/ { sent = b($2); t = systime() - start; if (t < 1) t = 1;
            printf "sent %s of %.0f bytes (%d%%) at %.1f MiB/s %s\n", sent, total,
                   total ? 100 * sent / total : 100, sent / t / 1048576, $3; fflush(); next }
         { print; fflush() }'
}

pass_bytes=0
send() {  # send [-I @from] DATASET@SNAP into DST_DATASET
    local target=$1 size
    shift
    size=$(zfs send -nv "$@" 2>&1 | awk '/^total estimated size is/ { print $5 }' | tail -1)
    pass_bytes=$((pass_bytes + $(to_bytes "${size:-0}")))
    zfs send -v -p "$@" 2> >(progress >&2) | remote zfs recv -s -F -u "$target"
    local rc=("${PIPESTATUS[@]}")
    [ "${rc[0]}" = 0 ] && [ "${rc[1]}" = 0 ] || { echo "airlift: stream into $dst:$target failed (send ${rc[0]}, receive ${rc[1]})" >&2; return 1; }
}

sync_dataset() {  # sync_dataset DATASET SNAP
    local ds=$1 snap=$2 target=$dst_root${1#"$src"} token newest oldest
    token=$(remote zfs get -H -o value receive_resume_token "$target" 2>/dev/null) || token=
    if [ -n "$token" ] && [ "$token" != - ]; then
        echo "airlift: $target: resuming an interrupted receive from its token"
        zfs send -v -t "$token" 2> >(progress >&2) | remote zfs recv -s -u "$target" || return 1
    fi
    newest=$(remote zfs list -H -o name -t snapshot -d 1 "$target" 2>/dev/null | tail -1)
    newest=${newest#*@}
    if [ -z "$newest" ]; then
        oldest=$(zfs list -H -o name -t snapshot -d 1 "$ds" | head -1)
        echo "airlift: $ds: full stream of ${oldest#*@}"
        send "$target" "$oldest" || return 1
        newest=${oldest#*@}
    fi
    if [ "$newest" != "$snap" ]; then
        zfs list -H -o name "$ds@$newest" > /dev/null 2>&1 || {
            echo "airlift: $target's newest snapshot $newest is not on $ds: cannot send incrementally" >&2
            return 1; }
        echo "airlift: $ds: incremental @$newest -> @$snap"
        send "$target" -I "@$newest" "$ds@$snap" || return 1
    fi
}

one_pass() {  # one_pass NAME: snapshot every dataset at once and sync them all
    local snap=$1 ds previous
    pass_bytes=0
    previous=$(zfs list -H -o name -t snapshot -d 1 "$src" | sed -n 's/.*@\(airlift-.*\)/\1/p' | tail -1)
    zfs snapshot -r "$src@$snap" || return 1
    for ds in $(zfs list -H -o name -r -t filesystem "$src"); do
        sync_dataset "$ds" "$snap" || return 1
    done
    if [ -n "$previous" ]; then  # the new snapshot is the base from now on
        zfs destroy -r "$src@$previous"
        remote zfs destroy -r "$dst_root@$previous" 2>/dev/null || true
    fi
    echo "airlift: pass $snap moved $pass_bytes bytes"
}

case "$mode" in
    sync)
        delta=$1 passes=$2
        for pass in $(seq 1 "$passes"); do
            one_pass "airlift-sync-$(date +%s%N)" || exit 1
            [ "$pass_bytes" -gt "$delta" ] || break
        done
        ;;
    final)
        slots=$1 owner=$2 start=$3
        take_slot "$slots"
        state=$(remote osctl -j ct show "$ctid" | sed -n 's/.*"state": *"\([a-z]*\)".*/\1/p')
        if [ "$state" = staged ]; then
            one_pass "airlift-sync-$(date +%s%N)" || exit 1
            down=$(date +%s.%N)
            vzctl stop "$ctid" || exit 1
            one_pass "airlift-final-$(date +%s%N)" || exit 1
            ssh -p "$port" -o BatchMode=yes -T -l osctl-ct-receive "$dst" receive transfer "$ctid" < /dev/null \
                || { echo "airlift: the destination refused the transfer" >&2; exit 1; }
            settle "$ctid" "$owner" "$start" || { echo "airlift: the destination refused the container" >&2; exit 1; }
            up=$(date +%s.%N)
            echo "airlift: downtime $(awk -v a="$down" -v b="$up" 'BEGIN { printf "%.3f", b - a }') s"
        else
            settle "$ctid" "$owner" "$start" || exit 1
            echo "airlift: container $ctid is already $state on $dst: handed over before"
        fi
        ;;
    *)
        echo "zfs-send.sh: unknown mode $mode" >&2
        exit 2
        ;;
esac
