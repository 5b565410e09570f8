#!/bin/bash
# The steps of a container's move that run on the OpenVZ node, each as a remote job (job.sh:
# detached from the SSH session, so it outlives a lost connection or a killed worker; one copy
# at a time; its state on the node, so a retry finds out what happened).
#   migrate.sh convert STEP [CONVERTER ARGS...]
#   migrate.sh convert transfer CTID DST PORT OWNER START(yes|no)
#   migrate.sh zfs-sync  CTID DATASET DST PORT DST_DATASET DELTA_BYTES PASSES
#   migrate.sh zfs-final CTID DATASET DST PORT DST_DATASET OWNER START(yes|no)
#   migrate.sh export CTID FILE [CONVERTER OPTIONS...]
#   migrate.sh copy-archive FILE DST PORT DST_FILE
#   migrate.sh import CTID FILE OWNER CPU_LIMIT(-|percent) START(yes|no)   (on the destination)
# Against today's osctld, where no converter can stage (the DAG stages itself; RECORD is its
# record of the step done, as the converter's state would be):
#   migrate.sh skel CTID FILE DST PORT POOL RECORD
#   migrate.sh rsync-sync CTID SRC_DIR DST PORT POOL ROOTFS LAYOUT RECORD
#   migrate.sh rsync-transfer CTID SRC_DIR DST PORT POOL ROOTFS LAYOUT OWNER START(yes|no) RECORD
# convert: one `vpsadminos-convert vz6 migrate STEP` (stdin empty: it never waits on a prompt).
# Its transfer stops the container itself (so the converter hands it over
# stopped), lets the converter sync and hand over, sets the owner's user and starts it there.
# zfs-sync: `zfs send | ssh root@DST zfs recv -s` passes of the dataset and its descendants
# while the container runs, each sending what changed during the one before (the first: every
# snapshot the dataset has, then the new one), until one moves at most DELTA_BYTES or PASSES
# were made. zfs-final: one more pass while it runs, then the downtime: vzctl stop, a last
# snapshot and its small delta, the handover to osctld (`receive transfer CTID`), the owner's
# user and the start. Transfers print the downtime, from the stop to the start.
# The offline path: export stops the container (the downtime starts: FILE.down holds when) and
# writes `vz6 export` into FILE.part, renamed to FILE once whole, beside its sha256 (FILE.sha256);
# an archive already there is the export done. copy-archive sends it with rsync into
# DST_FILE.part (a cut copy continues with --append-verify), compares the checksum on the
# destination and only then renames it. import, on the destination: `osctl ct import` with the
# owner's user and the /default group (the converter writes the group as `default`, which
# osctld refuses), the CPU limit the converter ignores, and the start (`airlift: up at`).
# skel sends the skel archive FILE to osctld's `receive skel POOL` (the token it prints stays
# on the destination, in the container's send log). rsync-sync and rsync-transfer are the
# converter's simfs/ploop sync and transfer (its rsync command, research §1.5) into the staged
# root, mounted first (today's osctld leaves a staged container's datasets unmounted); the
# handover, here and in zfs-final, names the container by the token its send log holds, or by
# its id where osctld has no tokens.
# Every ZFS send first finishes an interrupted receive from its resume token, and each dataset
# goes from the newest snapshot the destination has, so a rerun continues where the last one
# stopped. Snapshots are named airlift-sync|final-<ns>; only the newest is kept on each side.
set -uo pipefail
mode=$1
shift

# The job's SSH connections to the destination go through one master connection per login
# user (OpenSSH ControlMaster, its socket in a private directory), so a command costs a new
# session, not a new connection: the downtime makes three of them. Without a master (it could
# not start, or died) ssh connects on its own, as before; the masters end with the job.
mux=$(mktemp -d /tmp/airlift-ssh.XXXXXX)
close_masters() {
    local socket
    for socket in "$mux"/*; do
        [ -S "$socket" ] && ssh -o ControlPath="$socket" -O exit -p "$port" "$dst" 2> /dev/null
    done
    rm -rf "$mux"
}
trap close_masters EXIT

to_dst() {  # to_dst USER [SSH OPTION...] -- COMMAND...: ssh to the destination as USER,
    # through USER's master if it runs
    local user=$1 opts=()
    shift
    while [ "$1" != -- ]; do opts+=("$1"); shift; done
    shift
    ssh -p "$port" -o BatchMode=yes -o ControlPath="$mux/$user" "${opts[@]}" -l "$user" "$dst" -- "$@"
}

open_master() {  # open_master USER: USER's master connection, in the background
    to_dst "$1" -o ControlMaster=yes -f -N -- 2> /dev/null \
        || echo "airlift: no shared connection as $1; each command connects on its own"
}

remote() {  # a command on the destination as root, its argv quoted for the remote shell
    to_dst root -- "$(printf '%q ' "$@")"
}

ct_state() {  # ct_state CTID: the container's state on the destination, empty when it has none
    remote osctl -j ct show "$1" 2> /dev/null | sed -n 's/.*"state": *"\([a-z]*\)".*/\1/p'
}

handover_id() {  # handover_id CTID POOL: what `receive transfer` takes: the token today's
    # osctld keeps in the staged container's send log (its config is YAML; the lab's is JSON),
    # else the id (osctld before tokens). Never printed: it authorises the receive.
    local token
    token=$(remote cat "/$2/conf/ct/$1.yml" 2> /dev/null | grep -oE '"?token"?: *"?[0-9a-f]{40}' \
        | grep -oE '[0-9a-f]{40}$')
    echo "${token:-$1}"
}

put_record() {  # put_record FILE STEP: the DAG's record of the step done (written whole)
    mkdir -p "$(dirname "$1")" && echo "$2" > "$1.new" && mv "$1.new" "$1"
}

vz_mount() {  # vz_mount CTID: a ploop container's root mounted (it is while it runs)
    vzctl status "$1" | grep -q ' mounted ' || vzctl mount "$1"
}

rsync_root() {  # the converter's rsync of the root into the staged container's (its exit
    # codes 23 and 24 accepted, as it accepts them: verify compares every file after)
    [ "$(remote zfs get -H -o value mounted "$pool/ct/$ctid")" = yes ] || remote zfs mount "$pool/ct/$ctid" \
        || return 1
    rsync -rlptgoDHX --numeric-ids --inplace --delete-after --exclude .zfs/ --protect-args \
        -e "ssh -p $port -o BatchMode=yes -o ControlPath=$mux/root" "$src_dir/" "root@$dst:$rootfs/"
    local rc=$?
    case $rc in
        0|23|24) ;;
        12|30|35|255) echo "airlift: stream into $dst:$rootfs was cut (rsync exit $rc)" >&2; return 1 ;;
        *) echo "airlift: rsync into $dst:$rootfs failed with exit $rc" >&2; return 1 ;;
    esac
}

settle() {  # settle CTID OWNER START(yes|no): after the handover (the container stopped there)
    # The converter gives every container the user `default`; osctl changes a container's user
    # only while it is stopped, so the owner's is set here, between the handover and the start.
    local ctid=$1 owner=$2 start=$3 shown
    shown=$(remote osctl -j ct show "$ctid") || return 1
    if ! grep -q "\"user\": *\"$owner\"" <<< "$shown"; then
        remote osctl ct chown "$ctid" "$owner" || return 1
    fi
    if [ "$start" = yes ] && ! grep -q '"state": *"running"' <<< "$shown"; then
        remote osctl ct start "$ctid" || return 1
    fi
}

own_and_start() {  # own_and_start CTID OWNER START(yes|no): settle in one round trip, for the
    # downtime: the container was just handed over stopped, with the converter's user
    local cmd
    cmd="osctl ct chown $(printf %q "$1") $(printf %q "$2")"
    [ "$3" = yes ] && cmd+=" && osctl ct start $(printf %q "$1")"
    remote sh -c "$cmd"
}

downtime() {  # downtime START_SECONDS: the line the operators read
    echo "airlift: downtime $(awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }') s"
}

mark() {  # mark NAME: the downtime so far, split by part (parts is printed after the downtime)
    local now
    now=$(date +%s.%N)
    parts+="${parts:+, }$1 $(awk -v a="$last_mark" -v b="$now" 'BEGIN { printf "%.3f", b - a }') s"
    last_mark=$now
}

to_bytes() {  # 1.23G -> bytes (zfs's 1024-based short sizes)
    awk -v s="$1" 'BEGIN { n = s + 0; u = substr(s, length(s)); m = index("KMGTPE", u);
        if (m) n *= 1024 ^ m; printf "%d", n }'
}

progress() {  # zfs send -v on stderr -> "sent X of Y (P%) at R MiB/s" lines
    awk 'function b(s,  n, u, m) { n = s + 0; u = substr(s, length(s)); m = index("KMGTPE", u);
            if (m) n *= 1024 ^ m; return n }
         /^total estimated size is/ { total = b($5); start = systime(); print; fflush(); next }
         /^[0-9][0-9]:[0-9][0-9]:[0-9][0-9]/ { sent = b($2); t = systime() - start; if (t < 1) t = 1;
            printf "sent %.0f of %.0f bytes (%d%%) at %.1f MiB/s %s\n", sent, total,
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
        zfs send -v -t "$token" 2> >(progress >&2) | remote zfs recv -s -F -u "$target"
        local rc=("${PIPESTATUS[@]}")
        [ "${rc[0]}" = 0 ] && [ "${rc[1]}" = 0 ] || { echo "airlift: stream into $dst:$target failed (send ${rc[0]}, receive ${rc[1]})" >&2; return 1; }
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

one_pass() {  # one_pass NAME: snapshot every dataset at once and sync them all; leaves the
    # datasets in $pass_datasets (the downtime's last_delta reuses them)
    local snap=$1 ds previous
    pass_bytes=0
    previous=$(zfs list -H -o name -t snapshot -d 1 "$src" | sed -n 's/.*@\(airlift-.*\)/\1/p' | tail -1)
    zfs snapshot -r "$src@$snap" || return 1
    pass_datasets=$(zfs list -H -o name -r -t filesystem "$src") || return 1
    for ds in $pass_datasets; do
        sync_dataset "$ds" "$snap" || return 1
    done
    if [ -n "$previous" ]; then  # the new snapshot is the base from now on
        zfs destroy -r "$src@$previous"
        remote zfs destroy -r "$dst_root@$previous" 2>/dev/null || true
    fi
    echo "airlift: pass $snap moved $pass_bytes bytes"
}

last_delta() {  # last_delta NAME BASE: in the downtime, the least work: every dataset's delta
    # since the pass just made (BASE, the newest snapshot on both sides), all datasets at once,
    # no lookups, no estimates, no cleanup (the snapshots go at cleanup)
    local snap=$1 base=$2 ds pid failed=0 pids=()
    zfs snapshot -r "$src@$snap" || return 1
    mark snapshot
    for ds in $pass_datasets; do
        (
            zfs send -p -i "@$base" "$ds@$snap" | remote zfs recv -s -F -u "$dst_root${ds#"$src"}"
            rc=("${PIPESTATUS[@]}")
            [ "${rc[0]}" = 0 ] && [ "${rc[1]}" = 0 ] || {
                echo "airlift: stream into $dst:$dst_root${ds#"$src"} failed (send ${rc[0]}, receive ${rc[1]})" >&2
                exit 1; }
        ) &
        pids+=("$!")
    done
    for pid in "${pids[@]}"; do
        wait "$pid" || failed=1
    done
    return "$failed"
}

case "$mode" in
    convert)
        step=$1
        shift
        if [ "$step" != transfer ]; then
            vpsadminos-convert vz6 migrate "$step" "$@" < /dev/null
            exit
        fi
        ctid=$1 dst=$2 port=$3 owner=$4 start=$5
        down=$(date +%s.%N)
        vzctl stop "$ctid" || exit 1
        vpsadminos-convert vz6 migrate transfer "$ctid" < /dev/null || exit 1
        settle "$ctid" "$owner" "$start" || { echo "airlift: the destination refused the container" >&2; exit 1; }
        downtime "$down"
        ;;
    zfs-sync)
        ctid=$1 src=$2 dst=$3 port=$4 dst_root=$5 delta=$6 passes=$7
        open_master root
        for pass in $(seq 1 "$passes"); do
            one_pass "airlift-sync-$(date +%s%N)" || exit 1
            [ "$pass_bytes" -gt "$delta" ] || break
        done
        ;;
    zfs-final)
        ctid=$1 src=$2 dst=$3 port=$4 dst_root=$5 owner=$6 start=$7
        open_master root
        state=$(ct_state "$ctid")
        if [ "$state" = staged ]; then
            open_master osctl-ct-receive
            base="airlift-sync-$(date +%s%N)"
            one_pass "$base" || exit 1
            down=$(date +%s.%N) last_mark=$down parts=
            vzctl stop "$ctid" || exit 1
            mark stop
            last_delta "airlift-final-$(date +%s%N)" "$base" || exit 1
            mark "last delta"
            to_dst osctl-ct-receive -T -- receive transfer "$(handover_id "$ctid" "${dst_root%%/*}")" < /dev/null \
                || { echo "airlift: the destination refused the transfer" >&2; exit 1; }
            mark handover
            own_and_start "$ctid" "$owner" "$start" \
                || { echo "airlift: the destination refused the container" >&2; exit 1; }
            mark "owner and start"
            downtime "$down"
            echo "airlift: downtime parts: $parts"
        else
            settle "$ctid" "$owner" "$start" || exit 1
            echo "airlift: container $ctid is already $state on $dst: handed over before"
        fi
        ;;
    skel)
        ctid=$1 file=$2 dst=$3 port=$4 pool=$5 record=$6
        open_master root
        state=$(ct_state "$ctid")
        if [ -z "$state" ]; then
            to_dst osctl-ct-receive -T -- receive skel "$pool" < "$file" > /dev/null \
                || { echo "airlift: $dst refused the skel of container $ctid" >&2; exit 1; }
            echo "airlift: container $ctid staged on $dst"
        elif [ "$state" = staged ]; then  # preflight refused a foreign one: this staging's
            echo "airlift: container $ctid was staged on $dst by an earlier attempt"
        else
            echo "airlift: $dst already has container $ctid ($state)" >&2
            exit 1
        fi
        put_record "$record" stage || exit 1
        ;;
    rsync-sync)
        ctid=$1 src_dir=$2 dst=$3 port=$4 pool=$5 rootfs=$6 layout=$7 record=$8
        open_master root
        if [ "$layout" = ploop ] && ! vzctl status "$ctid" | grep -q ' mounted '; then
            vzctl mount "$ctid" || exit 1
            rsync_root
            rc=$?
            vzctl umount "$ctid"
        else
            rsync_root
            rc=$?
        fi
        [ "$rc" = 0 ] && put_record "$record" sync || exit 1
        ;;
    rsync-transfer)
        ctid=$1 src_dir=$2 dst=$3 port=$4 pool=$5 rootfs=$6 layout=$7 owner=$8 start=$9 record=${10}
        open_master root
        state=$(ct_state "$ctid")
        if [ "$state" = staged ]; then
            open_master osctl-ct-receive
            down=$(date +%s.%N) last_mark=$down parts=
            vzctl stop "$ctid" || exit 1
            mark stop
            if [ "$layout" = ploop ]; then vz_mount "$ctid" || exit 1; fi
            rsync_root || exit 1
            mark "last rsync"
            if [ "$layout" = ploop ]; then vzctl umount "$ctid" || exit 1; fi
            to_dst osctl-ct-receive -T -- receive transfer "$(handover_id "$ctid" "$pool")" < /dev/null \
                || { echo "airlift: the destination refused the transfer" >&2; exit 1; }
            mark handover
            own_and_start "$ctid" "$owner" "$start" \
                || { echo "airlift: the destination refused the container" >&2; exit 1; }
            mark "owner and start"
            put_record "$record" transfer || exit 1
            downtime "$down"
            echo "airlift: downtime parts: $parts"
        else
            settle "$ctid" "$owner" "$start" || exit 1
            put_record "$record" transfer || exit 1
            echo "airlift: container $ctid is already $state on $dst: handed over before"
        fi
        ;;
    export)
        ctid=$1 file=$2
        shift 2
        if vzctl status "$ctid" | grep -q ' running$'; then
            # it runs: an archive from before is stale (it was started again since)
            rm -f "$file" "$file.sha256"
            mkdir -p "$(dirname "$file")"
            date +%s.%N > "$file.down"
            vzctl stop "$ctid" || exit 1
        fi
        if [ -s "$file" ] && [ -s "$file.sha256" ]; then
            echo "airlift: $file was exported before: sha256 $(cat "$file.sha256")"
        else
            mkdir -p "$(dirname "$file")"
            rm -f "$file.part"
            vpsadminos-convert vz6 export "$@" "$ctid" "$file.part" < /dev/null || exit 1
            sha256sum < "$file.part" | cut -d' ' -f1 > "$file.sha256.part" || exit 1
            mv "$file.part" "$file" && mv "$file.sha256.part" "$file.sha256" || exit 1
            echo "airlift: exported $(stat -c %s "$file") bytes, sha256 $(cat "$file.sha256")"
        fi
        [ -s "$file.down" ] && echo "airlift: down since $(cat "$file.down")"
        exit 0
        ;;
    copy-archive)
        file=$1 dst=$2 port=$3 dst_file=$4
        sum=$(cat "$file.sha256") || exit 1
        open_master root
        if [ "$(remote cat "$dst_file.sha256" 2>/dev/null)" = "$sum" ] && remote test -f "$dst_file"; then
            echo "airlift: $dst:$dst_file was copied before"
            exit 0
        fi
        remote mkdir -p "$(dirname "$dst_file")" || exit 1
        rsync --append-verify --protect-args --stats \
            -e "ssh -p $port -o BatchMode=yes -o ControlPath=$mux/root" \
            "$file" "root@$dst:$dst_file.part"
        rc=$?
        case $rc in
            0) ;;
            12|30|35|255) echo "airlift: the copy to $dst was cut (rsync exit $rc)" >&2; exit 1 ;;
            *) echo "airlift: rsync to $dst failed with exit $rc" >&2; exit 1 ;;
        esac
        there=$(remote sha256sum "$dst_file.part" | cut -d' ' -f1)
        if [ "$there" != "$sum" ]; then
            remote rm -f "$dst_file.part"
            echo "airlift: checksum mismatch on $dst: $there, expected $sum; the copy is removed" >&2
            exit 1
        fi
        remote sh -c "echo $sum > $(printf %q "$dst_file.sha256") && mv $(printf %q "$dst_file.part") $(printf %q "$dst_file")" \
            || exit 1
        echo "airlift: copied to $dst:$dst_file, sha256 $sum"
        ;;
    import)
        ctid=$1 file=$2 owner=$3 cpu=$4 start=$5
        state=$(osctl -j ct show "$ctid" 2> /dev/null | sed -n 's/.*"state": *"\([a-z]*\)".*/\1/p')
        if [ "$state" = staged ]; then
            echo "airlift: container $ctid is staged here by the live path; cancel that first" >&2
            exit 1
        fi
        if [ -z "$state" ]; then
            osctl ct import --as-user "$owner" --as-group /default "$file" < /dev/null || exit 1
            state=stopped
        fi
        if [ "$cpu" != - ]; then
            osctl ct set cpu-limit "$ctid" "$cpu" || exit 1
        fi
        if [ "$start" = yes ] && [ "$state" != running ]; then
            osctl ct start "$ctid" || exit 1
        fi
        echo "airlift: up at $(date +%s.%N)"
        ;;
    *)
        echo "migrate.sh: unknown mode $mode" >&2
        exit 2
        ;;
esac
