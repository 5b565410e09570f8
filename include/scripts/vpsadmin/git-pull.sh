#!/bin/bash
# `git pull` and the dependency install of one checkout, as the runbook updates HaveAPI, the
# API, vpsAdmind, vpsAdmindctl (bundler) and the web interface (composer):
#   git-pull.sh [--check] DIR bundler|composer
# Up to date means HEAD is the remote's HEAD (read with ls-remote, which moves no ref, so a
# plan-mode check changes nothing) and the dependencies are installed (`bundle check`, or
# composer's vendor/autoload.php).
# --check: change nothing; exit 0 when up to date, else print the commands and exit 10.
set -euo pipefail
check=0
if [ "${1:-}" = --check ]; then check=1; shift; fi
dir=$1 installer=$2
case "$installer" in
    bundler) install="bundler install"; installed() { bundle check >/dev/null; } ;;
    composer) install="php composer.phar install"; installed() { test -e vendor/autoload.php; } ;;
    *) echo "unknown installer $installer (bundler or composer)" >&2; exit 2 ;;
esac
cd "$dir"
if [ "$(git rev-parse HEAD)" = "$(git ls-remote origin HEAD | cut -f1)" ] && installed; then
    exit 0
fi
if [ "$check" = 1 ]; then
    echo "cd $dir && git pull && $install"
    exit 10
fi
git pull
$install
