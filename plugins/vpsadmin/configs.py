"""Configuration files the upgrade edits on the nodes (pure text transformations, each a
no-op on its own output, so a second run finds nothing to change).

- /etc/vpsadmin/vpsadmind.yml: 1.22 -> 2.0 (research/vpsadmin.md §7: 2.0 drops :threads,
  :handlers and :backuper, and adds :queues and :mounts_dir; the runbook only says "FIXME:
  revise").
- config.php of the web interface: `define()`s for API_URL and ENV_VPS_PRODUCTION_ID.
"""

from __future__ import annotations

import re

import yaml

MOUNTS_DIR = "/var/vpsadmin/mounts"
# vpsAdmind 2.0's IMPLICIT_CONFIG queues (lib/vpsadmind/config.rb at 650b4908).
QUEUES = {
    "general": {":threads": 6, ":urgent": 6, ":start_delay": 0},
    "storage": {":threads": 2, ":urgent": 2, ":start_delay": 0},
    "network": {":threads": 1, ":urgent": 0, ":start_delay": 0},
    "vps": {":threads": 4, ":urgent": 4, ":start_delay": 0},
    "zfs_send": {":threads": 1, ":urgent": 0, ":start_delay": 4 * 3600},
    "mail": {":threads": 2, ":urgent": 2, ":start_delay": 0},
}
V122_ONLY = (":threads", ":handlers", ":backuper")


def vpsadmind_v2(text: str) -> str:
    """The 2.0 form of a vpsadmind.yml (returns `text` itself when it already is)."""
    config = yaml.safe_load(text) or {}
    if not isinstance(config, dict):
        raise ValueError("vpsadmind.yml is not a YAML mapping")
    vpsadmin = dict(config.get(":vpsadmin") or {})
    stale = [k for k in V122_ONLY if k in config or k in vpsadmin]
    if not stale and ":queues" in vpsadmin and vpsadmin.get(":mounts_dir"):
        return text
    queues = {f":{name}": dict(q) for name, q in QUEUES.items()}
    if isinstance(vpsadmin.get(":threads"), int):  # 1.22's worker count sizes the general queue
        queues[":general"][":threads"] = vpsadmin[":threads"]
    for key in V122_ONLY:
        vpsadmin.pop(key, None)
        config.pop(key, None)
    vpsadmin.setdefault(":queues", queues)
    vpsadmin.setdefault(":mounts_dir", MOUNTS_DIR)
    config[":vpsadmin"] = vpsadmin
    return yaml.safe_dump(config, default_flow_style=False, sort_keys=False)


def _php_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def php_defines(text: str, values: dict) -> str:
    """`text` with `define('NAME', value);` for each item: an existing define of NAME is
    replaced in place, a missing one is added before the closing `?>` (or at the end)."""
    for name, value in values.items():
        line = f"define('{name}', {_php_value(value)});"
        pattern = re.compile(r"^[ \t]*define\(\s*['\"]" + re.escape(name) + r"['\"].*$", re.MULTILINE)
        if pattern.search(text):
            text = pattern.sub(lambda _m, line=line: line, text, count=1)
            continue
        close = text.rfind("?>")
        if close >= 0:
            text = text[:close] + line + "\n" + text[close:]
        else:
            text = text + ("" if text.endswith("\n") or not text else "\n") + line + "\n"
    return text


def sharenfs(current: str, subnets: list[str]) -> str:
    """A pool's sharenfs value whose read-write clients are exactly `subnets` (Linux ZFS syntax:
    `rw=@net1:@net2,no_root_squash`), its other options kept. Read-write grants not in
    `subnets` go, a bare `rw` (every host) too: the pool may have been opened wider before, and
    the param names every network. The ones already there keep their order (a reordered param
    changes nothing). `off`, `on` or empty starts from `no_root_squash,no_subtree_check`
    (vpsAdmind mounts VPS data over NFS as root)."""
    if not subnets:
        raise ValueError("sharenfs needs at least one subnet")
    options = [] if current in ("", "off", "-", "on") else [o for o in current.split(",") if o]
    wanted = [f"@{net}" for net in subnets]
    granted = [a for o in options if o.startswith("rw=") for a in o[3:].split(":")]
    allowed = list(dict.fromkeys([a for a in granted if a in wanted] + wanted))
    rest = [o for o in options if o != "rw" and not o.startswith("rw=")] or ["no_root_squash", "no_subtree_check"]
    return ",".join([f"rw={':'.join(allowed)}", *rest])


# -- sharenfs in the database ---------------------------------------------------------------
# 2.0's migration records sharenfs '' (no value ZFS takes) for every pool and every dataset in
# it; vpsAdmind 2.0's integrity check compares each row with `zfs get` (value as it reads it:
# on/off are booleans; inherited = not set on the dataset itself, a default counting as
# inherited). After nodes.sharenfs each row holds what its dataset has.

def sharenfs_after_set(datasets: dict[str, tuple[str, str]], pool_fs: str, wanted: str) -> dict[str, tuple[str, str]]:
    """{name: (value, source)} of `zfs get -r sharenfs <pool_fs>` as it will read once the pool's
    file system has sharenfs=`wanted`: the pool local, every dataset that inherits from the
    pool (or had only the default) inherits the new value; values set lower down stay."""
    after = {}
    for name, (value, source) in datasets.items():
        if name == pool_fs:
            after[name] = (wanted, "local")
        elif source == "default" or source == f"inherited from {pool_fs}":
            after[name] = (wanted, f"inherited from {pool_fs}")
        else:
            after[name] = (value, source)
    return after


def sharenfs_property(value: str) -> str:
    """The dataset_properties.value (Ruby YAML) that vpsAdmind's check reads as `value`."""
    if value in ("on", "off"):
        return f"--- {'true' if value == 'on' else 'false'}\n...\n"
    return "--- '" + value.replace("'", "''") + "'\n"


def sharenfs_records(rows: list[dict], datasets: dict[str, tuple[str, str]], pool_fs: str) -> list[dict]:
    """The dataset_properties rows (id, value, inherited, full_name: None for the pool's own
    row) whose sharenfs differs from `datasets` ({name: (value, source)} of `zfs get -r`), as
    updates {id, value, inherited, name}. Rows of datasets ZFS does not have are left alone
    (the integrity check reports those datasets as missing)."""
    updates = []
    for row in rows:
        name = pool_fs if row["full_name"] is None else f"{pool_fs}/{row['full_name']}"
        if name not in datasets:
            continue
        value, source = datasets[name]
        wanted = {"value": sharenfs_property(value), "inherited": int(source != "local")}
        if (row["value"], int(row["inherited"])) != (wanted["value"], wanted["inherited"]):
            updates.append({"id": row["id"], **wanted, "name": name})
    return updates
