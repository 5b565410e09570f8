# Sourced by the transfer scripts: take one of SLOTS transfer slots on this node (a lock file
# each, held by fd 9 until the script ends), so at most SLOTS containers are down at once
# however many tasks start a transfer. The wait happens here on the node, in the detached job,
# not in an Airflow worker.
take_slot() {
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
