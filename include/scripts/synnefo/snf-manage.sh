#!/bin/bash
# One `snf-manage` command run as a remote job (long ones: user migrations, quota imports,
# syncs and usage resets): a retry attaches to a copy still running and never starts a second.
#   snf-manage.sh ARGS...
# Nothing is read from stdin (a prompt fails instead of hanging). snf-manage reports some
# failures with exit 0 (shared research synnefo.md §5, §8): a line starting with ERROR or
# Error: fails the job whatever the exit code.
set -uo pipefail
out=$(mktemp)
trap 'rm -f "$out"' EXIT
snf-manage "$@" < /dev/null > "$out" 2>&1
status=$?
cat "$out"
if [ "$status" -ne 0 ]; then
    exit "$status"
fi
if grep -qE '^(ERROR|Error:)' "$out"; then
    echo "airlift: snf-manage $1 printed an error" >&2
    exit 1
fi
