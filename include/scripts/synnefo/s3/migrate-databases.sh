#!/bin/bash
# Step s3.migrate-databases on one host (Astakos, then Cyclades): `snf-manage syncdb`, then
# `snf-manage migrate` (seed 004, 3.2). Run as a remote job: a retry attaches to a run still
# going and never starts a second one.
# The prompts are answered deliberately, none is left to hang:
# - syncdb's stale content types question: "no" (the runbook's answer; they stay);
# - migrate reads nothing: im 0016 asks which user to keep only if case duplicates remain,
#   which part 2 removed; if some remain its prompt reads end-of-file and the migration fails
#   (rolled back) instead of deleting users nobody chose.
# A line starting with ERROR or Error: fails the step whatever snf-manage's exit code.
set -uo pipefail
out=$(mktemp)
trap 'rm -f "$out"' EXIT
step() {
    echo "+ $*"
    "$@" > "$out" 2>&1
    status=$?
    cat "$out"
    if [ "$status" -ne 0 ]; then
        echo "airlift: \`$*\` exited $status" >&2
        exit "$status"
    fi
    if grep -qE '^(ERROR|Error:)' "$out"; then
        echo "airlift: \`$*\` printed an error" >&2
        exit 1
    fi
}
step snf-manage syncdb < <(echo no)
step snf-manage migrate < /dev/null
