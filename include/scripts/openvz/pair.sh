# Included by the transfer scripts (Jinja include): what a step on the OpenVZ node does on the
# vpsAdminOS node. Expects $dst (its address) and $port (its SSH port).

remote() {  # a command on the destination as root, its argv quoted for the remote shell
    ssh -p "$port" -o BatchMode=yes -l root "$dst" -- "$(printf '%q ' "$@")"
}

take_slot() {  # take_slot SLOTS
    # One of SLOTS transfer slots on this node (a lock file each, held by fd 9 until the script
    # ends), so at most SLOTS containers are down at once however many tasks start a transfer.
    # The wait happens here, in the detached job, not in an Airflow worker.
    local slots=$1 i
    [ "$slots" -gt 0 ] || return 0
    mkdir -p /var/lib/airlift/openvz
    while :; do
        for i in $(seq 1 "$slots"); do
            exec 9> "/var/lib/airlift/openvz/transfer-slot.$i"
            if flock -n 9; then
                echo "airlift: transfer slot $i of $slots taken"
                return 0
            fi
        done
        sleep 1
    done
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
