"""Validation of the upgrade DAGs' trigger parameters (pure; no Airflow, no I/O); the checks
every product shares are in airlift/params.py.

Everything here can reach a shell or an SQL identifier later, so it is checked against a
strict pattern before anything changes; quoting still happens where the value is used.
"""

from __future__ import annotations

import ipaddress
import re

from airlift.params import check_timezone

NODE_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,62}[A-Za-z0-9])?$")
ABS_PATH = re.compile(r"^/(?:[A-Za-z0-9._+-]+/?)*$")
DB_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")


def check_node_names(label: str, names) -> list[str]:
    if not isinstance(names, list):
        return [f"{label} must be a list of node names, got {names!r}"]
    return [f"{label}: {n!r} is not a valid node name (letters, digits, '.', '-')"
            for n in names if not isinstance(n, str) or not NODE_NAME.fullmatch(n)]


def check_abs_path(label: str, value: str) -> list[str]:
    if not isinstance(value, str) or not ABS_PATH.fullmatch(value) or "/../" in f"{value}/":
        return [f"{label} {value!r} must be an absolute path of letters, digits and ._+-"]
    return []


def check_db_name(label: str, value: str) -> list[str]:
    if not isinstance(value, str) or not DB_NAME.fullmatch(value):
        return [f"{label} {value!r} is not a plain database name"]
    return []


URL = re.compile(r"^https?://[A-Za-z0-9.-]+(?::\d{1,5})?(?:/[A-Za-z0-9._~%/+-]*)?$")
DATASET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,254}$")
RESERVED_DATASET_NAMES = ("private", "vpsadmin")  # 2.0 models/dataset.rb
CIDR = re.compile(r"^(?:\d{1,3}\.){3}\d{1,3}/\d{1,2}$")  # a.b.c.d/n only: it goes into `zfs set sharenfs=`
# sharenfs gives these networks read-write access with no_root_squash: root on any host in them
# owns every VPS's data on the pool. A /16 (65,536 addresses) is already more than any site's
# node network; a broader one surely takes in hosts that are not vpsAdmin nodes (customers'
# VPSes among them). IPv6 is refused outright: ZFS on Linux splits sharenfs host lists at ':',
# so an IPv6 network is misread without an error (openzfs/zfs#1894, #11171, CVE-2013-20001);
# only OpenZFS releases from 2023 on (openzfs/zfs#15697) read the bracketed form, far newer
# than a vpsAdmin 2.0 node's ZFS.
MIN_SUBNET_PREFIX = 16


def check_url(label: str, value) -> list[str]:
    if not isinstance(value, str) or not URL.fullmatch(value):
        return [f"{label} {value!r} is not an http(s) URL"]
    return []


def check_dataset_name(label: str, value) -> list[str]:
    if not isinstance(value, str) or not DATASET_NAME.fullmatch(value):
        return [f"{label} {value!r} is not a dataset name (letters, digits, _.:-)"]
    if value in RESERVED_DATASET_NAMES:
        return [f"{label} {value!r} is a name reserved in vpsAdmin 2.0"]
    return []


def check_subnets(label: str, values) -> list[str]:
    """Each value an IPv4 network in a.b.c.d/n form without host bits, no broader than
    /MIN_SUBNET_PREFIX (an empty list passes: whether one is needed is the caller's call)."""
    if not isinstance(values, list):
        return [f"{label} must be a list of IPv4 networks (a.b.c.d/n)"]
    errors = []
    for value in values:
        if isinstance(value, str) and ":" in value:
            errors.append(f"{label}: {value!r} is an IPv6 network; ZFS on Linux misreads those in sharenfs "
                          "(the ':' separates hosts), so only IPv4 networks (a.b.c.d/n) can be shared")
            continue
        if not isinstance(value, str) or not CIDR.fullmatch(value):
            errors.append(f"{label}: {value!r} is not an IPv4 network (a.b.c.d/n)")
            continue
        try:
            network = ipaddress.IPv4Network(value)  # strict: 10.0.0.1/24 (host bits set) is an error
        except ValueError as exc:
            errors.append(f"{label}: {value!r} is not an IPv4 network: {exc}")
            continue
        if network.prefixlen < MIN_SUBNET_PREFIX:
            errors.append(f"{label}: {value} is broader than /{MIN_SUBNET_PREFIX}; sharenfs would give root on "
                          f"{network.num_addresses:,} addresses read-write access to every pool: name the nodes' "
                          "own networks")
    return errors


def check_labels(label: str, values, known: set[str]) -> list[str]:
    if not isinstance(values, list):
        return [f"{label} must be a list of environment labels"]
    return [f"{label}: {v!r} is not an environment in `environments`" for v in values if v not in known]


def check_upgrade(values: dict, servers: list[dict]) -> list[str]:
    """Every problem with the params of the v2.0 sections (keys that are absent are not
    checked, so a caller can check some of them)."""
    from vpsadmin import environments

    errors = []
    if "environments" in values:
        errors += environments.check(values["environments"], values.get("default_resources"), servers)
        labels = {e.get("label") for e in values["environments"] if isinstance(e, dict)}
        if "production_environment" in values and values["production_environment"] not in labels:
            errors.append(f"production_environment {values['production_environment']!r} is not in environments")
        if "playground_environments" in values:
            errors += check_labels("playground_environments", values["playground_environments"], labels)
    for key in ("snapshot_download_base_url", "api_url"):
        if values.get(key) or (key in values and key != "api_url"):  # an empty api_url: the connection's
            errors += check_url(key, values[key])
    if "private_dataset_name" in values:
        errors += check_dataset_name("private_dataset_name", values["private_dataset_name"])
    if "backup_timezone" in values:
        errors += check_timezone("backup_timezone", values["backup_timezone"])
    if "sharenfs_subnets" in values:
        errors += check_subnets("sharenfs_subnets", values["sharenfs_subnets"])
    for key in ("web_root", "download_mountpoint", "mount_proxy_dir"):
        if key in values:
            errors += check_abs_path(key, values[key])
    return errors
