#!/bin/bash
# Step s3.install-packages: the new Synnefo packages of this host's role, the runbook's lists
# (seed 004, 3.1; its apt-get lines lacked continuations, research synnefo.md §0).
#   install-packages.sh [--check] ROLE VERSION
# ROLE: astakos, cyclades, pithos or ganeti. VERSION: the release wanted (0.13): a package
# counts as done when dpkg has it installed ("ii") at that version or a point release of it.
# --check: change nothing; exit 0 when every package is done, else print the command and exit
# 10. Installing starts the packages' services: s3.stop-started-services stops them again.
set -euo pipefail
check=false
if [ "${1:-}" = --check ]; then
    check=true
    shift
fi
role=$1 version=$2
case "$role" in
    astakos) packages="snf-common snf-webproject snf-quotaholder-app snf-astakos-app" ;;
    cyclades) packages="snf-common snf-webproject snf-pithos-backend snf-cyclades-app" ;;
    pithos) packages="snf-common snf-webproject snf-pithos-backend snf-pithos-app snf-pithos-webclient" ;;
    ganeti) packages="snf-common snf-cyclades-gtools snf-pithos-backend" ;;
    *) echo "unknown role $role: astakos, cyclades, pithos or ganeti" >&2; exit 2 ;;
esac
if [[ ! $version =~ ^[0-9]+(\.[0-9]+)+$ ]]; then
    echo "$version is not a release number such as 0.13" >&2
    exit 2
fi
todo=() now=()
for package in $packages; do
    state=$(dpkg-query -W -f '${db:Status-Abbrev}|${Version}' "$package" 2>/dev/null || true)
    installed=${state#*|}
    case "$state" in
        "ii "*"|$version" | "ii "*"|$version".* | "ii "*"|$version"-*) continue ;;
    esac
    todo+=("$package")
    now+=("$package ${installed:-not installed}")
done
if [ -z "${todo[*]}" ]; then
    exit 0
fi
if $check; then
    echo "apt-get install ${todo[*]} (now: $(IFS=,; echo "${now[*]}" | sed 's/,/, /g'))"
    exit 10
fi
DEBIAN_FRONTEND=noninteractive apt-get install -y "${todo[@]}"
