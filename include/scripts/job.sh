#!/bin/bash
# Remote jobs (hooks/node.py NodeHook.start_job, job_status, job_output, kill_job): a step's
# script runs detached from the SSH session, in its own session and process group (setsid), so
# a lost connection or a killed worker does not end it; under a lock per step, so a second
# copy never starts; with its state on the node, so a retry finds out whether the earlier
# attempt still runs, finished or died.
#   job.sh start  DIR RUN [ARG...]    the job's script on stdin
#   job.sh status DIR RUN
#   job.sh output DIR
#   job.sh kill   DIR [GRACE_SECONDS]
#   job.sh forget DIR                 a job that no longer runs: forget its result, so the next
#                                     start starts it anew (a retry after a transient failure)
# DIR (/var/lib/airlift/jobs/<step>, 0700) holds: run (the DAG run that started it), script,
# pgid (the job's process group: it runs while any process of the group lives), output, exit
# (written last, atomically), starts (a line per start) and launch (the lock that makes
# starting one at a time). Every action prints one state line:
#   running RUN PGID | finished RUN EXIT | died RUN | none
# A job that runs is never started again, whichever run asks (the asker waits for it); a job
# of this run that finished keeps its result; one that died, or another run's finished job,
# is started anew (the scripts are idempotent: they check before they change).
set -euo pipefail
umask 077
action=$1 dir=$2
case "$dir" in
    /var/lib/airlift/jobs/?*) ;;
    *) echo "job.sh: $dir is not a job directory" >&2; exit 2 ;;
esac

alive() {
    local pgid
    pgid=$(cat "$dir/pgid" 2>/dev/null) || return 1
    [ -n "$pgid" ] && kill -0 -- "-$pgid" 2>/dev/null
}

state() {
    if [ ! -e "$dir/run" ]; then
        echo none
    elif [ -e "$dir/exit" ]; then
        echo "finished $(cat "$dir/run") $(cat "$dir/exit")"
    elif alive; then
        echo "running $(cat "$dir/run") $(cat "$dir/pgid")"
    elif [ -e "$dir/exit" ]; then  # it ended between the two looks
        echo "finished $(cat "$dir/run") $(cat "$dir/exit")"
    else
        echo "died $(cat "$dir/run")"
    fi
}

case "$action" in
    status)
        state
        ;;
    output)
        cat "$dir/output" 2>/dev/null || true
        ;;
    kill)
        grace=${3:-10}
        if [ -z "$(cat "$dir/exit" 2>/dev/null)" ] && alive; then
            pgid=$(cat "$dir/pgid")
            kill -TERM -- "-$pgid" 2>/dev/null || true
            for _ in $(seq $((grace * 10))); do
                alive || break
                sleep 0.1
            done
            kill -KILL -- "-$pgid" 2>/dev/null || true
        fi
        state
        ;;
    forget)
        mkdir -p "$dir"
        exec 8> "$dir/launch"
        flock 8
        case "$(state)" in
            running\ *) ;;
            *) rm -f "$dir/run" "$dir/exit" "$dir/pgid" ;;
        esac
        state
        ;;
    start)
        run=$3
        shift 3
        mkdir -p "$dir"
        exec 8> "$dir/launch"
        flock 8
        current=$(state)
        case "$current" in
            running\ *|"finished $run "*)
                cat > /dev/null
                echo "$current"
                exit 0
                ;;
        esac
        rm -f "$dir/exit" "$dir/pgid" "$dir/output"
        cat > "$dir/script"
        echo "$run" > "$dir/run"
        echo "$run $(date -u +%Y-%m-%dT%H:%M:%SZ)" >> "$dir/starts"
        # The runner records its process group (setsid made it the leader); the launcher
        # returns once it sees that, still holding the launch lock until then.
        setsid bash -c '
            dir=$1
            shift
            echo $$ > "$dir/pgid"
            bash "$dir/script" "$@" > "$dir/output" 2>&1 < /dev/null
            echo $? > "$dir/exit.partial"
            command -p mv -f "$dir/exit.partial" "$dir/exit"  # the system mv: not one the job put on PATH
        ' job "$dir" "$@" < /dev/null > /dev/null 2>&1 8>&- &
        for _ in $(seq 100); do
            [ -s "$dir/pgid" ] && break
            sleep 0.05
        done
        state
        ;;
    *)
        echo "job.sh: unknown action $action" >&2
        exit 2
        ;;
esac
