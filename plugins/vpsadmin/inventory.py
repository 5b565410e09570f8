"""Checks of what the vpsAdmin database says about the cluster: a node's address and a pool's
filesystem (pure; no Airflow, no I/O).

These values reach argv lists (`zfs ... <filesystem>`: a leading `-` becomes an option), shell
lines and /etc/fstab (a newline or a space makes another entry or field), so they are checked
where they are read from the database (VpsAdminDbHook.pools) and again where a step reads them
from XCom, against strict patterns, before anything changes. Quoting still happens where they
are used.
"""

from __future__ import annotations

import re

from airlift.params import HOSTNAME

# ZFS: a pool name starts with a letter; a dataset name component is letters, digits and _.:-
# (ZFS also allows spaces, which no fstab field can hold). No empty, `.` or `..` components.
FILESYSTEM = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]*(?:/[A-Za-z0-9_.:-]+)*")
FILESYSTEM_MAX = 255  # ZFS_MAX_DATASET_NAME_LEN - 1


def check_address(label: str, value) -> list[str]:
    # fullmatch: HOSTNAME ends in `$`, which .match() also accepts before a trailing newline
    if not isinstance(value, str) or not HOSTNAME.fullmatch(value):
        return [f"{label} {value!r} is not a host name or IPv4 address"]
    return []


def check_filesystem(label: str, value) -> list[str]:
    if (not isinstance(value, str) or len(value) > FILESYSTEM_MAX or not FILESYSTEM.fullmatch(value)
            or any(part in (".", "..") for part in value.split("/"))):
        return [f"{label} {value!r} is not a ZFS dataset name (a pool name starting with a letter, then "
                "/-separated letters, digits and _.:-)"]
    return []


def check_pool(pool: dict) -> list[str]:
    """Every problem with one pool as VpsAdminDbHook.pools or PoolInventoryOperator give it:
    its id, its filesystem and the address of the node holding it."""
    pool_id = pool.get("pool_id")
    if isinstance(pool_id, bool) or not isinstance(pool_id, int):
        return [f"pools.id {pool_id!r} is not a number"]
    where = f"of pool {pool_id} (node {pool.get('server_name')!r})"
    return (check_filesystem(f"pools.filesystem {where}", pool.get("filesystem"))
            + check_address(f"servers.server_ip4 {where}", pool.get("address")))


def unsafe_pools(pools) -> list[str]:
    """Every problem with a list of pools (an XCom may hold anything: the list itself too)."""
    if not isinstance(pools, list) or not all(isinstance(p, dict) for p in pools):
        return [f"the pools must be a list of pools, got {pools!r}"]
    return [error for pool in pools for error in check_pool(pool)]
