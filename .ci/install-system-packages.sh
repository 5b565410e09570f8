#!/usr/bin/env bash
# Install the Debian/Ubuntu packages Airlift needs that are missing; called by `make install`.
#   PYTHON=python3.11 VENV=.venv .ci/install-system-packages.sh
# Checks by command or file (dpkg -s where a package has neither), runs `apt-get update` once
# and only when something is missing. Without apt-get, or when not root, it stops with one
# line naming what to install.
#
# What needs what:
#   bubblewrap                 the lab runs every node command under bwrap
#   openssh-client, rsync,     real tools inside the lab's nodes (the nodes use the host's /usr),
#   gzip, tzdata, python3      /usr/bin/python3 runs the node tool simulators
#   mariadb-client             mysql, mysqldump on the DB node
#   mariadb-server             mysql_tzinfo_to_sql (Debian ships it there, not in the client),
#                              the lab's database when no MariaDB answers on 127.0.0.1:3306
#                              with passwordless root and LAB_MYSQL_URL is unset, and the
#                              second test worker's own server (tests/conftest.py)
#   libmariadb-dev, gcc,       building mysqlclient (MySQLdb) in the virtualenv
#   pkg-config, pythonX.Y-dev
#   pythonX.Y-venv             `python -m venv` on a Debian/Ubuntu Python
#   chromium, chromium-driver  the browser journey through the Airflow UI (tests/e2e/deployment)
#   redis-server, postgresql   `make deploy`'s private broker and metadata database where none
#                              answers on 127.0.0.1:6379 / :5432 (lab/deploy.py)
#   zfs-fuse                   a real ZFS for tests/test_zfs_contract.py (skipped without it);
#                              LAB_ZFS_FUSE=0 leaves it out (on systemd hosts the package
#                              enables zfs-fuse.service)
set -euo pipefail

PYTHON=${PYTHON:-python3.11}
VENV=${VENV:-.venv}
missing=()

add() { # add PACKAGE... unless already listed
    local p
    for p in "$@"; do
        [[ " ${missing[*]} " == *" $p "* ]] || missing+=("$p")
    done
}
has_cmd() { command -v "$1" >/dev/null 2>&1; }
has_pkg() { dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed'; }

server_binaries() {
    { has_cmd mariadbd || has_cmd mysqld || [[ -x /usr/sbin/mariadbd || -x /usr/sbin/mysqld ]]; } &&
        { has_cmd mariadb-install-db || has_cmd mysql_install_db; }
}

check() {
    has_cmd bwrap || add bubblewrap
    has_cmd ssh || add openssh-client
    has_cmd rsync || add rsync
    has_cmd gzip || add gzip
    [[ -e /usr/share/zoneinfo/Europe/Prague ]] || add tzdata
    [[ -x /usr/bin/python3 ]] || add python3
    { has_cmd mysql || has_cmd mariadb; } && has_cmd mysqldump || add mariadb-client
    has_cmd gcc || add gcc
    has_cmd pkg-config || add pkg-config
    has_pkg libmariadb-dev || has_cmd mariadb_config || add libmariadb-dev
    [[ ${LAB_ZFS_FUSE:-1} == 0 ]] || has_cmd zfs-fuse || [[ -x /usr/sbin/zfs-fuse ]] || add zfs-fuse
    # the second test worker starts a MariaDB of its own (tests/conftest.py), whatever serves the first
    server_binaries || add mariadb-server
    [[ -x /usr/bin/chromium ]] || add chromium
    [[ -x /usr/bin/chromedriver ]] || add chromium-driver
    has_cmd redis-server || add redis-server
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || add postgresql
}

check_python() {
    local py version
    if ! py=$(command -v "$PYTHON"); then
        # The default name of a distribution Python (python3.11 on Debian 12) can be installed.
        if [[ $PYTHON =~ ^python3\.[0-9]+$ ]] && has_cmd apt-cache &&
            apt-cache show "$PYTHON" >/dev/null 2>&1; then
            add "$PYTHON" "$PYTHON-venv" "$PYTHON-dev"
            return
        fi
        echo "error: $PYTHON not found: install Python 3.11 or run make PYTHON=/path/to/python3.11" >&2
        exit 1
    fi
    version=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    local distro=false
    [[ $(readlink -f "$py") == /usr/bin/* ]] && distro=true
    if ! "$py" -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; then
        if $distro; then
            add "python$version-dev"
        else
            echo "error: $py has no C headers (Python.h), needed to build mysqlclient: use a Python with headers (make PYTHON=...)" >&2
            exit 1
        fi
    fi
    if [[ ! -x $VENV/bin/python ]] && ! "$py" -c 'import ensurepip, venv' >/dev/null 2>&1; then
        if $distro; then
            add "python$version-venv"
        else
            echo "error: $py cannot create a virtualenv (no ensurepip): use another Python (make PYTHON=...)" >&2
            exit 1
        fi
    fi
}

updated=false
install() {
    ((${#missing[@]})) || return 0
    if ! has_cmd apt-get; then
        echo "error: missing system packages (no apt-get here, install them yourself): ${missing[*]}" >&2
        exit 1
    fi
    if [[ $(id -u) != 0 ]]; then
        echo "error: missing system packages, install them as root: sudo apt-get install ${missing[*]}" >&2
        exit 1
    fi
    echo "installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! $updated; then
        apt-get update -qq
        updated=true
    fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    missing=()
}

check
check_python
install
# Where the client package does not carry mysql_tzinfo_to_sql (Debian, Ubuntu), the server does.
has_cmd mysql_tzinfo_to_sql || add mariadb-server
install
echo "system packages: ok"
