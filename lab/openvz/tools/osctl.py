#!/usr/bin/python3
"""`osctl` of a lab vpsAdminOS node, and `osctl-ct-receive`, the forced command sshd runs for
the SSH user osctl-ct-receive (research/vpsadminos.md §1.6, §3, §4).

There is no osctld: each call reads and writes the pool's state on the node's disk, so it
survives a lab restart.

    /etc/lab/osctl-profile                  the era the node speaks (PROFILES; default 2019)
    zfs: <pool>  org.vpsadminos.osctl:active=yes   the pool is installed (osctld's marker)
         <pool>/conf, <pool>/ct, <pool>/ct/<id>[/<subdataset>]
    /<pool>/conf/ct/<id>.yml               a container's config (JSON, which is YAML too),
                                            with the lab's `state` and the send log
    /<pool>/conf/user/<name>.yml           users (ugid, uid_map, gid_map, standalone)
    /<pool>/conf/group/<path>/config.yml   groups ("/" is conf/group/config.yml)
    /<pool>/conf/id-range/<name>.yml       id ranges and their allocations
    /<pool>/conf/send-receive/authorized_keys   the receive keychain (one key a line)
    /run/osctl/send-receive/authorized_keys     what sshd reads: the keychains of every pool,
                                            `command="<HOOK>",restrict <key>` lines

A container's rootfs is /<pool>/ct/<id>/private (the dataset's mountpoint + private/).
Containers are never run: `ct start` sets the state (vpsAdminOS containers write nothing).

The profile is the one place the eras differ. "2019" (the default): osctl 19.03.0 as it
was from 2019-06-25 (SSH user osctl-ct-receive, commands taking [pool:]<ctid>, `skel`
printing nothing, keys without names listed as INDEX KEY), with group names as paths
(since 2018-03: an archive's group `default` is refused with `group name has to start
with /`, as osctld did; `--as-group /default` is the way round on import) and routed veth
with interconnecting `via` networks (osctld before 2018-09-25: /30 for IPv4, /126 for
IPv6, the host the first address, the container the second). "2024": today's osctld
(24.05.0): `receive skel [pool|- [passphrase]]` prints a 40-hex token, kept in the
container's send log (`send_log.token` of /<pool>/conf/ct/<id>.yml, as osctld keeps it) and
taken by base|incremental|transfer|cancel instead of the id; named keys (`authorized-keys add
<name>`, ls NAME PUBKEY ..., del <name>; stored one `name key` a line); routed veth via the
host's osrtr0 (255.255.255.254), no interconnecting networks; an archive's group `default`
refused (`group name has to start with /`), on import and on `receive skel`.
"""

from __future__ import annotations

import contextlib
import fcntl
import getopt
import gzip
import hashlib
import ipaddress
import json
import os
import re
import secrets
import shutil
import sys
import tarfile
import tempfile

if __package__:  # imported on the host (lab.openvz.tools.osctl)
    from lab.core.tools import toolbox
    from lab.core.tools.zfs import Zfs, ZfsError
else:  # run as a program: toolbox.py and zfs.py are next to it
    import toolbox
    from zfs import Zfs, ZfsError

PROFILE_FILE = "/etc/lab/osctl-profile"
DEFAULT_PROFILE = "2019"
PROFILES = {
    "2019": {
        "version": "19.03.0",
        "path_groups": True,        # group names are paths: /default
        # A lab choice: the converter writes the archive's group as `default`; research §3
        # infers osctld refused that since 8e04a727 (`group name has to start with /`), which
        # would make the runbook's migration impossible, yet the runbook shows it working. This
        # profile takes a relative group of an archive as one under the root group.
        "relative_archive_groups": True,
        "receive": "ctid",          # receive commands take [pool:]<id>; skel prints nothing
        "keys": "index",            # authorized-keys add (no name), ls INDEX KEY, del <index>
        "routed": "via",            # routed veth with an interconnecting network per family
        "staged_mounted": True,     # receive skel leaves the datasets mounted (before 780399f3)
    },
    # Today's osctld (vpsadminos HEAD 2024-10, research/vpsadminos.md): `receive skel` prints a
    # token (osctld keeps it in the container's send log) and the other receive commands take
    # it; keys have names; routed veth goes via the host's osrtr0 (no interconnecting
    # networks); an archive's group must be a path (the converter's `default` is refused).
    "2024": {
        "version": "24.05.0",
        "path_groups": True,
        "relative_archive_groups": False,
        "receive": "token",
        "keys": "named",
        "routed": "osrtr0",
        "staged_mounted": False,    # receive skel unmounts the datasets it made (780399f3, 2019-07)
    },
}

RECEIVE_USER = "osctl-ct-receive"
HOOK = "/usr/local/sbin/osctl-ct-receive"
AUTHORIZED_KEYS = "/run/osctl/send-receive/authorized_keys"
ACTIVE_PROP = "org.vpsadminos.osctl:active"
LOG_STATES = ("stage", "base", "incremental", "transfer", "cleanup")
ID_RX = re.compile(r"^[a-zA-Z0-9_.-]{1,100}$")
NAME_RX = re.compile(r"^[a-z0-9_-]{1,100}$", re.I)
CPU_PERIOD = 100000

RECEIVE_USAGE = {
    "token": """Usage:
  receive skel [pool|- [passphrase]]
  receive base <token> <dataset> [snapshot]
  receive incremental <token> <dataset> [snapshot]
  receive transfer <token> [start]
  receive cancel <token>
""",
    "ctid": """Usage:
  receive skel [pool]
  receive base [pool:]<id> <dataset> [snapshot]
  receive incremental [pool:]<id> <dataset> [snapshot]
  receive transfer [pool:]<id> [start]
  receive cancel [pool:]<id>
""",
}

USAGE = """NAME
    osctl - Management utility for vpsAdminOS

SYNOPSIS
    osctl [global options] command [command options] [arguments...]

GLOBAL OPTIONS
    -j, --json      - Print output in JSON
    -p, --parsable  - Show precise values
    --pool=pool     - Pool name
    --version       - Display the program version

COMMANDS
    ct        - Manage containers
    id-range  - Manage ID ranges
    receive   - Receive containers from other nodes
    user      - Manage user namespaces
"""


class OsctlError(Exception):
    """An osctld error: `error: <message>` on stderr, exit 1."""


class UsageError(Exception):
    """A command line GLI would refuse: `error: <message>` on stderr, exit 64."""


def load_yaml(text: str):
    """Archives are Ruby YAML; the host's python3 has PyYAML (JSON is read without it).
    Imported here, not at the top: only archives need it, and every osctl call (three of them
    in a container's downtime) would pay for the import."""
    try:
        import yaml
    except ImportError:  # pragma: no cover
        return json.loads(text)
    return yaml.safe_load(text)


def profile(node: Node | None = None) -> dict:
    root = node.root if node else "/"
    name = (toolbox.read(os.path.join(root, PROFILE_FILE.lstrip("/"))) or "").strip()
    name = name or DEFAULT_PROFILE
    if name not in PROFILES:
        raise OsctlError(f"lab: unknown osctl profile {name!r} in {PROFILE_FILE}")
    return PROFILES[name]


def parse_data(text: str) -> int:
    """osctl's sizes: a number of bytes or with a K/M/G/T suffix (binary)."""
    m = re.fullmatch(r"(\d+)([kmgtKMGT]?)", str(text))
    if not m:
        raise UsageError(f"invalid size '{text}'")
    return int(m.group(1)) * 1024 ** " KMGT".index(m.group(2).upper() or " ")


# -- the node's state -------------------------------------------------------------------------
class Node:
    """osctl's state on one node: `root` is "/" inside the node, its directory on the host."""

    def __init__(self, root: str = "/"):
        self.root = str(root)
        self.zfs = Zfs(root)

    def path(self, node_path: str) -> str:
        return os.path.join(self.root, node_path.lstrip("/"))

    def read_json(self, node_path: str, default=None):
        return toolbox.read_json(self.path(node_path), default)

    def write_json(self, node_path: str, value) -> None:
        toolbox.write(self.path(node_path), json.dumps(value, indent=2, sort_keys=True) + "\n")

    def names(self, directory: str) -> list[str]:
        """The names of the <name>.yml files in a config directory, sorted."""
        path = self.path(directory)
        files = sorted(os.listdir(path)) if os.path.isdir(path) else []
        return [n[:-4] for n in files if n.endswith(".yml")]

    @contextlib.contextmanager
    def lock(self):
        """osctld serialises its commands; here one lock file per node."""
        path = self.path("/run/osctl/lock")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            yield

    # -- pools
    def pools(self) -> list[str]:
        found = []
        for name in self.zfs.datasets():
            if "/" not in name and self.zfs.get(name, ACTIVE_PROP) == "yes":
                found.append(name)
        return found

    def pool(self, name: str | None) -> str:
        pools = self.pools()
        if name is None:
            if not pools:
                raise OsctlError("no pool is available")
            return pools[0]
        if name not in pools:
            raise OsctlError("pool not found")
        return name

    def install_pool(self, pool: str) -> None:
        """`osctl pool install`: the pool's datasets, root and default groups, the default id
        range; what a node has before any container."""
        z = self.zfs
        if pool not in z.datasets():
            z.create_pool(pool)
        for ds in (f"{pool}/conf", f"{pool}/ct"):
            if ds not in z.datasets():
                z.create(ds)
        z.set(pool, ACTIVE_PROP, "yes")
        for path in ("/", default_group(self)):
            if self.group(pool, path) is None:
                self.save_group(pool, {"path": path, "cgparams": []})
        if self.id_range(pool, "default") is None:
            self.save_id_range(pool, {"name": "default", "start_id": 1000000, "block_size": 65536,
                                      "block_count": 65520, "allocations": []})
        self.deploy_keys()

    # -- containers
    def ct_file(self, pool: str, ctid: str) -> str:
        return f"/{pool}/conf/ct/{ctid}.yml"

    def ct(self, pool: str, ctid: str) -> dict | None:
        cfg = self.read_json(self.ct_file(pool, ctid))
        if cfg is not None:
            cfg["pool"], cfg["id"] = pool, ctid
        return cfg

    def cts(self, pools: list[str]) -> list[dict]:
        found = []
        for pool in pools:
            found += [self.ct(pool, n) for n in self.names(f"/{pool}/conf/ct")]
        return found

    def find_ct(self, pool_opt: str | None, ctid: str) -> dict:
        if ":" in ctid:
            pool_opt, ctid = ctid.split(":", 1)
        pools = self.pools() if pool_opt is None else [pool_opt]
        for pool in pools:
            cfg = self.ct(pool, ctid)
            if cfg is not None:
                return cfg
        raise OsctlError("container not found")

    def save_ct(self, cfg: dict) -> None:
        data = {k: v for k, v in cfg.items() if k not in ("pool", "id")}
        self.write_json(self.ct_file(cfg["pool"], cfg["id"]), data)

    def delete_ct(self, cfg: dict) -> None:
        if cfg["dataset"] in self.zfs.datasets():
            self.zfs.destroy(cfg["dataset"], recursive=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(self.ct_file(cfg["pool"], cfg["id"])))

    # -- users, groups, id ranges
    def user(self, pool: str, name: str) -> dict | None:
        return self.read_json(f"/{pool}/conf/user/{name}.yml")

    def users(self, pool: str) -> list[dict]:
        return [self.user(pool, n) for n in self.names(f"/{pool}/conf/user")]

    def save_user(self, pool: str, user: dict) -> None:
        self.write_json(f"/{pool}/conf/user/{user['name']}.yml", user)

    def group_file(self, pool: str, path: str) -> str:
        return f"/{pool}/conf/group/{path.strip('/')}/config.yml".replace("//", "/")

    def group(self, pool: str, path: str) -> dict | None:
        return self.read_json(self.group_file(pool, path))

    def save_group(self, pool: str, group: dict) -> None:
        self.write_json(self.group_file(pool, group["path"]), group)

    def id_range(self, pool: str, name: str) -> dict | None:
        return self.read_json(f"/{pool}/conf/id-range/{name}.yml")

    def id_ranges(self, pool: str) -> list[dict]:
        return [self.id_range(pool, n) for n in self.names(f"/{pool}/conf/id-range")]

    def save_id_range(self, pool: str, rng: dict) -> None:
        self.write_json(f"/{pool}/conf/id-range/{rng['name']}.yml", rng)

    # -- the receive keychain
    def keys(self, pool: str) -> list[str]:
        text = toolbox.read(self.path(f"/{pool}/conf/send-receive/authorized_keys"), "")
        return [line.strip() for line in text.splitlines() if line.strip()]

    def save_keys(self, pool: str, keys: list[str]) -> None:
        toolbox.write(self.path(f"/{pool}/conf/send-receive/authorized_keys"),
                      "".join(k + "\n" for k in keys), 0o400)
        self.deploy_keys()

    def deploy_keys(self) -> None:
        """osctld's KeyChain#deploy: every pool's keys, each with the forced command."""
        named = profile(self)["keys"] == "named"
        lines = [f'command="{HOOK}",restrict {key.split(" ", 1)[1] if named else key}'
                 for pool in self.pools() for key in self.keys(pool)]
        toolbox.write(self.path(AUTHORIZED_KEYS), "".join(line + "\n" for line in lines), 0o400)


def default_group(node: Node | None = None) -> str:
    return "/default" if profile(node)["path_groups"] else "default"


# -- output (libosctl's OutputFormatter) --------------------------------------------------------
def _cell(value) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_cell(v) for v in value)
    if isinstance(value, dict):
        return ",".join(f"{k}={_cell(v)}" for k, v in value.items())
    return str(value)


def print_list(opts: dict, rows: list[dict], default_cols: list[str]) -> None:
    if opts["json"]:
        toolbox.out(json.dumps(rows))
        return
    cols = opts["output"] or default_cols
    table = [[_cell(row.get(c)) for c in cols] for row in rows]
    if not opts["hide_header"]:
        table.insert(0, [c.upper() for c in cols])
    widths = [max((len(line[i]) for line in table), default=0) for i in range(len(cols))]
    for line in table:
        cells = [v.ljust(widths[i]) if i < len(cols) - 1 else v for i, v in enumerate(line)]
        toolbox.out("  ".join(cells))


def print_object(opts: dict, obj: dict, cols: list[str] | None = None) -> None:
    if opts["json"]:
        toolbox.out(json.dumps(obj))
        return
    cols = opts["output"] or cols or list(obj)
    width = max(len(c) for c in cols)
    for c in cols:
        if opts["hide_header"]:
            toolbox.out(_cell(obj.get(c)))
        else:
            toolbox.out(f"{c.upper():>{width}}:  {_cell(obj.get(c))}")


# -- containers --------------------------------------------------------------------------------
def ct_export(cfg: dict) -> dict:
    pool, ctid = cfg["pool"], cfg["id"]
    mountpoint = f"/{cfg['dataset']}"
    running = cfg.get("state") == "running"
    autostart = cfg.get("autostart")
    return {
        "pool": pool, "id": ctid, "user": cfg["user"], "group": cfg["group"],
        "dataset": cfg["dataset"], "rootfs": f"{mountpoint}/private",
        "lxc_path": f"/{pool}/user/{cfg['user']}{cfg['group'].rstrip('/') if cfg['group'].startswith('/') else '/' + cfg['group']}",
        "lxc_dir": f"/{pool}/user/{cfg['user']}/{ctid}",
        "group_path": f"osctl/pool.{pool}/group.{cfg['group'].strip('/')}/user.{cfg['user']}/ct.{ctid}",
        "distribution": cfg.get("distribution"), "version": cfg.get("version"),
        "arch": cfg.get("arch"), "state": cfg.get("state", "stopped"),
        "init_pid": init_pid(cfg) if running else None,
        "autostart": bool(autostart),
        "autostart_priority": autostart.get("priority") if isinstance(autostart, dict) else None,
        "autostart_delay": autostart.get("delay") if isinstance(autostart, dict) else None,
        "ephemeral": False, "hostname": cfg.get("hostname"),
        "dns_resolvers": cfg.get("dns_resolvers"), "nesting": bool(cfg.get("nesting")),
        "seccomp_profile": "/run/osctl/configs/lxc/common.seccomp", "init_cmd": "/sbin/init",
        "raw_lxc": None, "log_file": f"/{pool}/log/ct/{ctid}.log",
        "memory": None, "cpu_time": None,
    }


def init_pid(cfg: dict) -> int:
    return 1000 + int(hashlib.sha256(f"{cfg['pool']}:{cfg['id']}".encode()).hexdigest(), 16) % 30000


def new_send_log() -> dict:
    return {"role": "destination", "state": "stage", "snapshots": [],
            "opts": {"ctid": None, "port": None, "dst": None, "cloned": False}}


def _via(spec, version: int) -> dict:
    """A routed netif's interconnecting network (osctld Routing::Via before 2018-09-25)."""
    if isinstance(spec, str):
        spec = {"network": spec}
    net = ipaddress.ip_network(spec["network"], strict=False)
    minimum = 30 if version == 4 else 126
    if net.version != version:
        raise OsctlError(f"via network {spec['network']} is not IPv{version}")
    if net.prefixlen > minimum:
        raise OsctlError(f"cannot route via IPv{version} network smaller than /{minimum}")
    host = spec.get("host") or f"{net.network_address + 1}/{net.prefixlen}"
    ct = spec.get("ct") or f"{net.network_address + 2}/{net.prefixlen}"
    if host == ct:
        raise OsctlError(f"host_addr cannot equal ct_addr: {host}")
    return {"network": str(net), "host": host, "ct": ct}


def _by_version(value) -> dict:
    """The converter's {v4: [...], v6: [...]} (or osctld's {4: ...}) as {"4": ..., "6": ...}."""
    return {str(k).lstrip("v"): v for k, v in (value or {}).items()}


def load_netifs(items: list | None, node: Node | None = None) -> list[dict]:
    """container.yml's net_interfaces, normalised (via networks get their addresses)."""
    netifs = []
    for index, item in enumerate(items or []):
        netif = {"name": item["name"], "type": item.get("type", "bridge"), "index": index,
                 "hwaddr": item.get("hwaddr"),
                 "ip_addresses": {v: list(a or []) for v, a in _by_version(item.get("ip_addresses")).items()}}
        if netif["type"] == "bridge":
            netif["link"] = item.get("link")
            netif["dhcp"] = item.get("dhcp", True)
        elif netif["type"] == "routed":
            if profile(node)["routed"] == "via":
                netif["via"] = {v: _via(spec, int(v)) for v, spec in _by_version(item.get("via")).items() if spec}
            netif["routes"] = {v: list(a or []) for v, a in _by_version(item.get("routes")).items()}
        netifs.append(netif)
    return netifs


def netif_export(cfg: dict, netif: dict) -> dict:
    via = netif.get("via") or {}
    running = cfg.get("state") == "running"
    return {
        "pool": cfg["pool"], "ctid": cfg["id"], "name": netif["name"], "index": netif["index"],
        "type": netif["type"], "link": netif.get("link"),
        "veth": f"vz{cfg['id']}i{netif['index']}" if running else None,
        "via": {v: n["network"] for v, n in via.items()} if netif["type"] == "routed" else None,
        "host_addr": {v: n["host"] for v, n in via.items()} if netif["type"] == "routed" else None,
        "ct_addr": {v: n["ct"] for v, n in via.items()} if netif["type"] == "routed" else None,
        "hwaddr": netif.get("hwaddr"),
        "ip_addresses": netif.get("ip_addresses", {}),
    }


def load_cgparams(items: list | None) -> list[dict]:
    params = []
    for item in items or []:
        name = item.get("parameter") or item.get("name")
        value = item.get("value")
        params.append({"subsystem": item.get("subsystem") or name.split(".", 1)[0],
                       "parameter": name, "value": value if isinstance(value, list) else [value]})
    return params


def set_cgparams(cfg: dict, params: list[dict], unset: list[str]) -> None:
    current = [p for p in cfg.get("cgparams", []) if p["parameter"] not in unset]
    for p in params:
        current = [c for c in current if c["parameter"] != p["parameter"]] + [p]
    cfg["cgparams"] = current


# -- users and groups from archives (Container::Importer) --------------------------------------
def get_or_create_user(node: Node, pool: str, name: str, config: dict) -> dict:
    existing = node.user(pool, name)
    uid_map, gid_map = config.get("uid_map") or [], config.get("gid_map") or []
    if existing is None:
        user = {"name": name, "ugid": next_ugid(node, pool), "uid_map": uid_map,
                "gid_map": gid_map, "standalone": True}
        node.save_user(pool, user)
        return user
    for what, mine, theirs in (("uid_map", existing["uid_map"], uid_map),
                               ("gid_map", existing["gid_map"], gid_map)):
        if mine != theirs:
            raise OsctlError(f"user {pool}:{name} already exists: {what} mismatch: existing "
                             f"{','.join(mine)}, trying to import {','.join(theirs)}")
    return existing


def get_or_create_group(node: Node, pool: str, name: str) -> dict:
    if profile(node)["path_groups"] and profile(node).get("relative_archive_groups") and not name.startswith("/"):
        name = "/" + name
    existing = node.group(pool, name) if name.startswith("/") or not profile(node)["path_groups"] else None
    if existing is not None:
        return existing
    if profile(node)["path_groups"]:
        if not name.startswith("/"):
            raise OsctlError("group name has to start with /")
        for part in name.split("/")[1:]:
            if not NAME_RX.match(part):
                raise OsctlError(f"invalid name, allowed format: {NAME_RX.pattern}")
    group = {"path": name, "cgparams": []}
    node.save_group(pool, group)
    return group


def next_ugid(node: Node, pool: str) -> int:
    return max([u["ugid"] for u in node.users(pool)] + [999]) + 1


class Archive:
    """An exported container (research §3): an uncompressed tar read from a seekable file."""

    def __init__(self, fileobj):
        self.tar = tarfile.open(fileobj=fileobj, mode="r:")
        self.names = set(self.tar.getnames())

    def has(self, name: str) -> bool:
        return name in self.names

    def member(self, name: str) -> bytes | None:
        if name not in self.names:
            return None
        return self.tar.extractfile(name).read()

    def yaml(self, name: str):
        data = self.member(name)
        return None if data is None else load_yaml(data.decode())

    def stream(self, name: str):
        f = self.tar.extractfile(name)
        return gzip.GzipFile(fileobj=f) if name.endswith(".gz") else f


def stage_ct(node: Node, pool: str, archive: Archive, meta: dict, *, ctid: str | None = None,
             user: str | None = None, group: str | None = None, staged: bool) -> dict:
    """What `receive skel` and `ct import` share: the container's user, group, datasets and
    config from the archive, in osctld's order of checks."""
    ctid = ctid or meta.get("container")
    if not ctid:
        raise OsctlError("the image does not include container id, specify it")
    ctid = str(ctid)
    if not staged and node.ct(pool, ctid) is not None:
        raise OsctlError(f"container {pool}:{ctid} already exists")
    if user is not None:
        user_cfg = node.user(pool, user)
        if user_cfg is None:
            raise OsctlError("user not found")
    else:
        user_cfg = get_or_create_user(node, pool, meta["user"], archive.yaml("config/user.yml") or {})
    if group is not None:
        group_cfg = node.group(pool, group)
        if group_cfg is None:
            raise OsctlError("group not found")
    elif meta.get("group"):
        group_cfg = get_or_create_group(node, pool, meta["group"])
    else:
        group_cfg = node.group(pool, default_group(node))
    if not ID_RX.match(ctid):
        raise OsctlError("invalid id, allowed format: [a-zA-Z0-9_.-]{1,100}")
    if staged and node.ct(pool, ctid) is not None:
        raise OsctlError(f"container {pool}:{ctid} already exists")
    config = archive.yaml("config/container.yml") or {}
    dataset = f"{pool}/ct/{ctid}"
    cfg = {
        "pool": pool, "id": ctid, "user": user_cfg["name"], "group": group_cfg["path"],
        "dataset": dataset, "distribution": config.get("distribution"),
        "version": str(config["version"]) if config.get("version") is not None else None,
        "arch": config.get("arch"), "net_interfaces": load_netifs(config.get("net_interfaces"), node),
        "cgparams": load_cgparams(config.get("cgparams")), "devices": config.get("devices") or [],
        "prlimits": config.get("prlimits") or [], "mounts": config.get("mounts") or [],
        "autostart": config.get("autostart"), "hostname": config.get("hostname"),
        "dns_resolvers": config.get("dns_resolvers") or [], "nesting": bool(config.get("nesting")),
        "state": "staged",
    }
    node.zfs.create(dataset)
    for rel in meta.get("datasets") or []:
        node.zfs.create(f"{dataset}/{rel}", parents=True)
    node.save_ct(cfg)
    return cfg


def datasets_of(node: Node, cfg: dict) -> list[str]:
    return node.zfs.datasets(cfg["dataset"])


# -- commands ------------------------------------------------------------------------------------
def _opts(args: list[str], spec: str, long: list[str] = ()) -> tuple[dict, list[str]]:
    try:
        opts, rest = getopt.gnu_getopt(args, spec, list(long))
    except getopt.GetoptError as e:
        raise UsageError(str(e)) from None
    found: dict = {}
    for o, v in opts:
        found.setdefault(o.lstrip("-"), []).append(v)
    return found, rest


def _need(rest: list[str], *names: str) -> None:
    if len(rest) < len(names):
        raise UsageError(f"missing argument{'s' if len(names) > 1 else ''}: "
                         f"{', '.join(names[len(rest):])}")


def _list_opts(g: dict, o: dict) -> dict:
    return {"json": g["json"], "hide_header": "H" in o or "hide-header" in o,
            "output": o.get("o", o.get("output", [""]))[-1].split(",") if ("o" in o or "output" in o) else None}


LIST_SPEC, LIST_LONG = "Ho:s:", ["hide-header", "output=", "sort="]
CT_DEFAULT_FIELDS = ["pool", "id", "user", "group", "distribution", "version", "state", "init_pid",
                     "memory", "cpu_time"]


def cmd_ct(node: Node, g: dict, args: list[str]) -> int:
    if not args:
        raise UsageError("missing command: ct ls|show|start|stop|del|chown|set|unset|cgparams|netif|import")
    sub, args = args[0], args[1:]
    if sub in ("ls", "list"):
        o, rest = _opts(args, LIST_SPEC + "u:g:S:", LIST_LONG + ["user=", "group=", "state="])
        pools = [g["pool"]] if g["pool"] else node.pools()
        rows = [ct_export(c) for c in node.cts(pools) if not rest or c["id"] in rest]
        for key, field in (("u", "user"), ("g", "group"), ("S", "state")):
            if key in o:
                rows = [r for r in rows if r[field] in o[key][-1].split(",")]
        print_list(_list_opts(g, o), rows, CT_DEFAULT_FIELDS)
        return 0
    if sub == "show":
        o, rest = _opts(args, "Ho:", ["hide-header", "output="])
        _need(rest, "id")
        print_object(_list_opts(g, o), ct_export(node.find_ct(g["pool"], rest[0])))
        return 0
    if sub == "import":
        return cmd_ct_import(node, g, args)
    if sub == "netif":
        return cmd_netif(node, g, args)
    if sub in ("cgparams", "cgparam"):
        if not args or args[0] not in ("ls", "list"):
            raise UsageError("missing command: ct cgparams ls")
        o, rest = _opts(args[1:], LIST_SPEC, LIST_LONG)
        _need(rest, "id")
        cfg = node.find_ct(g["pool"], rest[0])
        rows = [dict(p, group=cfg["group"], abs_path=f"/sys/fs/cgroup/{p['subsystem']}/{ct_export(cfg)['group_path']}/{p['parameter']}")
                for p in cfg.get("cgparams", []) if len(rest) < 2 or p["parameter"] in rest[1:]]
        print_list(_list_opts(g, o), rows, ["parameter", "value"])
        return 0
    if sub == "start":
        o, rest = _opts(args, "w:FqpDa", ["wait=", "foreground", "queue", "priority=", "debug", "attach"])
        _need(rest, "id")
        with node.lock():
            cfg = node.find_ct(g["pool"], rest[0])
            if cfg.get("state") == "staged":
                raise OsctlError("start not available")
            cfg["state"] = "running"
            node.save_ct(cfg)
        return 0
    if sub == "stop":
        o, rest = _opts(args, "Fm:kt:", ["foreground", "message=", "kill", "dont-kill", "timeout="])
        _need(rest, "id")
        with node.lock():
            cfg = node.find_ct(g["pool"], rest[0])
            if cfg.get("state") != "staged":
                cfg["state"] = "stopped"
                node.save_ct(cfg)
        return 0
    if sub in ("del", "delete"):
        o, rest = _opts(args, "f", ["force"])
        _need(rest, "id")
        with node.lock():
            cfg = node.find_ct(g["pool"], rest[0])
            if cfg.get("state") == "running" and not o:
                raise OsctlError("the container is running")
            node.delete_ct(cfg)
        return 0
    if sub == "chown":
        o, rest = _opts(args, "")
        _need(rest, "id", "user")
        with node.lock():
            cfg = node.find_ct(g["pool"], rest[0])
            user = node.user(cfg["pool"], rest[1])
            if user is None:
                raise OsctlError("user not found")
            if cfg["user"] == user["name"]:
                raise OsctlError(f"already owned by {user['name']}")
            if cfg.get("state") != "stopped":
                raise OsctlError("container has to be stopped first")
            cfg["user"] = user["name"]
            node.save_ct(cfg)
        return 0
    if sub in ("set", "unset"):
        return cmd_ct_set(node, g, sub, args)
    raise UsageError(f"Unknown command 'ct {sub}'")


def cmd_ct_set(node: Node, g: dict, sub: str, args: list[str]) -> int:
    if not args:
        raise UsageError(f"missing command: ct {sub} memory-limit|cpu-limit")
    what, args = args[0], args[1:]
    o, rest = _opts(args, "", ["period="])
    _need(rest, "id")
    with node.lock():
        cfg = node.find_ct(g["pool"], rest[0])
        if (sub, what) == ("set", "memory-limit"):
            _need(rest, "id", "memory")
            mem = parse_data(rest[1])
            params = [{"subsystem": "memory", "parameter": "memory.limit_in_bytes", "value": [mem]}]
            if len(rest) > 2:
                params.append({"subsystem": "memory", "parameter": "memory.memsw.limit_in_bytes",
                               "value": [mem + parse_data(rest[2])]})
                set_cgparams(cfg, params, [])
            else:
                set_cgparams(cfg, params, ["memory.memsw.limit_in_bytes"])
        elif (sub, what) == ("unset", "memory-limit"):
            set_cgparams(cfg, [], ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"])
        elif (sub, what) == ("set", "cpu-limit"):
            _need(rest, "id", "limit")
            try:
                percent = float(rest[1])
            except ValueError:
                raise UsageError(f"invalid cpu limit '{rest[1]}'") from None
            period = int(o.get("period", [CPU_PERIOD])[-1])
            set_cgparams(cfg, [
                {"subsystem": "cpu", "parameter": "cpu.cfs_period_us", "value": [period]},
                {"subsystem": "cpu", "parameter": "cpu.cfs_quota_us", "value": [round(percent / 100 * period)]},
            ], [])
        elif (sub, what) == ("unset", "cpu-limit"):
            set_cgparams(cfg, [], ["cpu.cfs_period_us", "cpu.cfs_quota_us"])
        else:
            raise UsageError(f"Unknown command 'ct {sub} {what}'")
        node.save_ct(cfg)
    return 0


def cmd_netif(node: Node, g: dict, args: list[str]) -> int:
    if not args:
        raise UsageError("missing command: ct netif ls|ip")
    pools = [g["pool"]] if g["pool"] else node.pools()
    if args[0] in ("ls", "list"):
        o, rest = _opts(args[1:], LIST_SPEC + "t:l:", LIST_LONG + ["type=", "link="])
        cts = [node.find_ct(g["pool"], rest[0])] if rest else node.cts(pools)
        rows = [netif_export(c, n) for c in cts for n in c.get("net_interfaces", [])]
        if "t" in o:
            rows = [r for r in rows if r["type"] in o["t"][-1].split(",")]
        print_list(_list_opts(g, o), rows, (["name", "type", "link", "veth", "via"] if rest
                                            else ["pool", "ctid", "name", "type", "link", "veth", "via"]))
        return 0
    if args[0] == "ip" and args[1:2] and args[1] in ("ls", "list"):
        o, rest = _opts(args[2:], LIST_SPEC + "v:", LIST_LONG + ["version="])
        cts = [node.find_ct(g["pool"], rest[0])] if rest else node.cts(pools)
        rows = []
        for c in cts:
            for n in c.get("net_interfaces", []):
                if len(rest) > 1 and n["name"] != rest[1]:
                    continue
                for v, addrs in sorted(n.get("ip_addresses", {}).items()):
                    rows += [{"pool": c["pool"], "ctid": c["id"], "netif": n["name"],
                              "version": int(v), "addr": a} for a in addrs]
        if "v" in o:
            rows = [r for r in rows if str(r["version"]) == o["v"][-1]]
        print_list(_list_opts(g, o), rows, ["netif", "version", "addr"] if rest
                   else ["pool", "ctid", "netif", "version", "addr"])
        return 0
    raise UsageError(f"Unknown command 'ct netif {' '.join(args[:2])}'")


def cmd_ct_import(node: Node, g: dict, args: list[str]) -> int:
    o, rest = _opts(args, "", ["as-id=", "as-user=", "as-group=", "dataset=", "missing-devices="])
    _need(rest, "file")
    pool = node.pool(g["pool"])
    if not os.path.isfile(rest[0]):
        raise OsctlError(f"file '{rest[0]}' does not exist")
    with node.lock(), open(rest[0], "rb") as f:
        archive = Archive(f)
        meta = archive.yaml("metadata.yml")
        if meta is None:
            raise OsctlError("metadata.yml not found")
        one = {k: v[-1] for k, v in o.items()}
        cfg = stage_ct(node, pool, archive, meta, ctid=one.get("as-id"), user=one.get("as-user"),
                       group=one.get("as-group"), staged=False)
        try:
            import_rootfs(node, archive, meta, cfg)
        except BaseException:
            node.delete_ct(cfg)
            raise
        cfg["state"] = "stopped"
        node.save_ct(cfg)
    return 0


def import_rootfs(node: Node, archive: Archive, meta: dict, cfg: dict) -> None:
    fmt = meta.get("format")
    if fmt == "zfs":
        for rel in ["/"] + list(meta.get("datasets") or []):
            ds = cfg["dataset"] if rel == "/" else f"{cfg['dataset']}/{rel}"
            prefix = "rootfs/" if rel == "/" else f"rootfs/{rel}/"
            for kind, required in (("base", True), ("incremental", False)):
                name = next((n for n in (f"{prefix}{kind}.dat", f"{prefix}{kind}.dat.gz")
                             if archive.has(n)), None)
                if name is None:
                    if required:
                        raise OsctlError(f"unable to import: {rel}/base not found".replace("//", "/"))
                    continue
                try:
                    node.zfs.receive(archive.stream(name), ds, force=True)
                except ZfsError as e:
                    raise OsctlError(f"unable to import stream {name}: {e.message}") from None
        snapshots = archive.yaml("snapshots.yml") or []
        for ds in datasets_of(node, cfg):
            for snap in snapshots:
                if f"{ds}@{snap}" in node.zfs.snapshots(ds):
                    node.zfs.destroy(f"{ds}@{snap}")
    elif fmt == "tar":
        if not archive.has("rootfs/base.tar.gz"):
            raise OsctlError("rootfs archive not found")
        rootfs = node.path(ct_export(cfg)["rootfs"])
        os.makedirs(rootfs, exist_ok=True)
        try:
            with tarfile.open(fileobj=archive.tar.extractfile("rootfs/base.tar.gz"), mode="r:gz") as tar:
                extra = {"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}
                tar.extractall(rootfs, **extra)
        except (tarfile.TarError, OSError, EOFError) as e:
            raise OsctlError("failed to unpack rootfs: command 'tar --xattrs-include=security.capability "
                             f"--xattrs -xz -C {ct_export(cfg)['rootfs']}' exited with 2 ({e})") from None
    else:
        raise OsctlError(f"unsupported archive format '{fmt}'")


# -- users and id ranges ------------------------------------------------------------------------
def user_export(pool: str, user: dict) -> dict:
    return {"pool": pool, "name": user["name"], "username": f"{pool}-{user['name']}",
            "groupname": f"{pool}-{user['name']}", "ugid": user["ugid"],
            "uid_map": user["uid_map"], "gid_map": user["gid_map"],
            "dataset": f"{pool}/user/{user['name']}", "homedir": f"/{pool}/user/{user['name']}",
            "registered": True, "standalone": user.get("standalone", True)}


def _map_entry(text: str) -> str:
    parts = text.split(":")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise UsageError(f"invalid map '{text}', expected id:lowerid:count")
    return text


def allocate(rng: dict, count: int, owner: str | None, index: int | None = None) -> dict:
    taken = set()
    for a in rng["allocations"]:
        taken.update(range(a["block_index"], a["block_index"] + a["block_count"]))
    if index is None:
        index = next((i for i in range(rng["block_count"] - count + 1)
                      if not taken & set(range(i, i + count))), None)
        if index is None:
            raise OsctlError("no free space found")
    elif index + count > rng["block_count"] or taken & set(range(index, index + count)):
        raise OsctlError(f"unable to allocate {count} blocks at index {index}")
    alloc = {"block_index": index, "block_count": count, "owner": owner}
    rng["allocations"] = sorted(rng["allocations"] + [alloc], key=lambda a: a["block_index"])
    return with_ids(rng, alloc)


def with_ids(rng: dict, alloc: dict) -> dict:
    first = rng["start_id"] + alloc["block_index"] * rng["block_size"]
    count = rng["block_size"] * alloc["block_count"]
    return dict(alloc, first_id=first, last_id=first + count - 1, id_count=count)


def range_export(pool: str, rng: dict) -> dict:
    allocated = sum(a["block_count"] for a in rng["allocations"])
    return {"pool": pool, "name": rng["name"], "start_id": rng["start_id"],
            "last_id": rng["start_id"] + rng["block_size"] * rng["block_count"] - 1,
            "block_size": rng["block_size"], "block_count": rng["block_count"],
            "allocated": allocated, "free": rng["block_count"] - allocated}


def cmd_user(node: Node, g: dict, args: list[str]) -> int:
    if not args:
        raise UsageError("missing command: user new|ls|show|map|del")
    sub, args = args[0], args[1:]
    pool = node.pool(g["pool"])
    if sub in ("ls", "list"):
        o, rest = _opts(args, LIST_SPEC, LIST_LONG)
        rows = [user_export(pool, u) for u in node.users(pool) if not rest or u["name"] in rest]
        print_list(_list_opts(g, o), rows, ["pool", "name", "ugid", "uid_map", "gid_map"])
        return 0
    if sub in ("show", "map"):
        o, rest = _opts(args, "Ho:", ["hide-header", "output="])
        _need(rest, "user")
        user = node.user(pool, rest[0])
        if user is None:
            raise OsctlError("user not found")
        if sub == "show":
            print_object(_list_opts(g, o), user_export(pool, user))
            return 0
        rows = []
        for kind, entries in (("uid", user["uid_map"]), ("gid", user["gid_map"])):
            for entry in entries:
                ns, host, count = (int(x) for x in entry.split(":"))
                rows.append({"type": kind, "ns_id": ns, "host_id": host, "count": count})
        print_list(_list_opts(g, o), rows, ["type", "ns_id", "host_id", "count"])
        return 0
    if sub in ("new", "create"):
        o, rest = _opts(args, "", ["map=", "map-uid=", "map-gid=", "id-range=",
                                   "id-range-block-index=", "standalone", "no-standalone", "ugid="])
        _need(rest, "name")
        name = rest[0]
        if not NAME_RX.match(name):
            raise OsctlError(f"invalid name, allowed format: {NAME_RX.pattern}")
        with node.lock():
            if node.user(pool, name) is not None:
                raise OsctlError("user already exists")
            uid_map = [_map_entry(m) for m in o.get("map", []) + o.get("map-uid", [])]
            gid_map = [_map_entry(m) for m in o.get("map", []) + o.get("map-gid", [])]
            if not uid_map and not gid_map:
                rng_name = o.get("id-range", ["default"])[-1]
                rng = node.id_range(pool, rng_name)
                if rng is None:
                    raise OsctlError("id range not found")
                index = o.get("id-range-block-index")
                alloc = allocate(rng, 1, f"user:{name}", int(index[-1]) if index else None)
                node.save_id_range(pool, rng)
                uid_map = gid_map = [f"0:{alloc['first_id']}:{alloc['id_count']}"]
            elif not uid_map or not gid_map:
                raise OsctlError("provide both UID and GID map")
            node.save_user(pool, {"name": name, "ugid": next_ugid(node, pool), "uid_map": uid_map,
                                  "gid_map": gid_map, "standalone": "no-standalone" not in o})
        return 0
    if sub in ("del", "delete"):
        o, rest = _opts(args, "")
        _need(rest, "user")
        with node.lock():
            if node.user(pool, rest[0]) is None:
                raise OsctlError("user not found")
            if any(c["user"] == rest[0] for c in node.cts([pool])):
                raise OsctlError("user has container(s)")
            for rng in node.id_ranges(pool):
                kept = [a for a in rng["allocations"] if a["owner"] != f"user:{rest[0]}"]
                if kept != rng["allocations"]:
                    rng["allocations"] = kept
                    node.save_id_range(pool, rng)
            os.unlink(node.path(f"/{pool}/conf/user/{rest[0]}.yml"))
        return 0
    raise UsageError(f"Unknown command 'user {sub}'")


def cmd_id_range(node: Node, g: dict, args: list[str]) -> int:
    if not args:
        raise UsageError("missing command: id-range ls|show|allocate|free")
    sub, args = args[0], args[1:]
    pool = node.pool(g["pool"])
    fields = ["pool", "name", "start_id", "last_id", "block_size", "block_count", "allocated", "free"]
    if sub in ("ls", "list"):
        o, rest = _opts(args, LIST_SPEC, LIST_LONG)
        rows = [range_export(pool, r) for r in node.id_ranges(pool) if not rest or r["name"] in rest]
        print_list(_list_opts(g, o), rows, fields)
        return 0
    o, rest = _opts(args, "Ho:", ["hide-header", "output=", "block-count=", "block-index=", "owner="])
    _need(rest, "id-range")
    with node.lock():
        rng = node.id_range(pool, rest[0])
        if rng is None:
            raise OsctlError("id range not found")
        if sub == "show":
            print_object(_list_opts(g, o), range_export(pool, rng), fields)
            return 0
        index = int(o["block-index"][-1]) if "block-index" in o else None
        if sub == "allocate":
            count = int(o.get("block-count", ["1"])[-1])
            if count < 1:
                raise OsctlError("block_count has to be greater than 1")
            alloc = allocate(rng, count, o.get("owner", [None])[-1], index)
            node.save_id_range(pool, rng)
            print_object(_list_opts(g, o), alloc)
            return 0
        if sub == "free":
            owner = o.get("owner", [None])[-1]
            if (index is None) == (owner is None):
                raise UsageError("use --block-index or --owner")
            if index is not None:
                kept = [a for a in rng["allocations"] if a["block_index"] != index]
                if len(kept) == len(rng["allocations"]):
                    raise OsctlError(f"block at index {index} not found")
            else:
                kept = [a for a in rng["allocations"] if a["owner"] != owner]
            rng["allocations"] = kept
            node.save_id_range(pool, rng)
            return 0
    raise UsageError(f"Unknown command 'id-range {sub}'")


def cmd_receive(node: Node, g: dict, args: list[str]) -> int:
    """`osctl receive authorized-keys add|ls|del|set`, in the profile's form."""
    if not args or args[0] not in ("authorized-keys", "authorized_keys"):
        raise UsageError("missing command: receive authorized-keys")
    args = args[1:]
    if not args:
        raise UsageError("missing command: receive authorized-keys add|ls|del|set")
    sub, args = args[0], args[1:]
    pool = node.pool(g["pool"])
    if profile(node)["keys"] == "named":
        return _named_keys(node, g, pool, sub, args)
    with node.lock():
        keys = node.keys(pool)
        if sub in ("ls", "list"):
            o, rest = _opts(args, LIST_SPEC, LIST_LONG)
            print_list(_list_opts(g, o), [{"index": i, "key": k} for i, k in enumerate(keys)],
                       ["index", "key"])
            return 0
        if sub in ("add", "new"):
            line = sys.stdin.readline().strip()
            if not line:
                raise OsctlError("no public key given on stdin")
            node.save_keys(pool, keys + [line])
            return 0
        if sub == "set":
            node.save_keys(pool, [k.strip() for k in sys.stdin if k.strip()])
            return 0
        if sub in ("del", "delete"):
            _need(args, "index")
            try:
                index = int(args[0])
            except ValueError:
                index = 0  # Ruby's to_i
            node.save_keys(pool, [k for i, k in enumerate(keys) if i != index])
            return 0
    raise UsageError(f"Unknown command 'receive authorized-keys {sub}'")


KEY_NAME_RX = re.compile(r"^[a-zA-Z0-9_\-:.]{1,}$")


def _named_keys(node: Node, g: dict, pool: str, sub: str, args: list[str]) -> int:
    """`osctl receive authorized-keys` since 2020-09: add [options] <name> (the key on stdin),
    ls, del <name>; stored as `name key` lines."""
    with node.lock():
        keys = dict(line.split(" ", 1) for line in node.keys(pool))
        if sub in ("ls", "list"):
            o, rest = _opts(args, LIST_SPEC, LIST_LONG)
            rows = [{"name": n, "pubkey": k, "from": None, "ctid": None, "passphrase": None, "single_use": False,
                     "in_use": False} for n, k in keys.items()]
            print_list(_list_opts(g, o), rows, ["name", "pubkey", "from", "ctid", "passphrase", "single_use",
                                                "in_use"])
            return 0
        if sub in ("add", "new"):
            o, rest = _opts(args, "", ["ctid=", "from=", "single-use", "passphrase="])
            _need(rest, "name")
            name = rest[0]
            if not KEY_NAME_RX.match(name):
                raise OsctlError("key name must consist only of a-z A-Z 0-9, _-:.")
            if name in keys:
                raise OsctlError(f"key '{name}' already exists")
            line = sys.stdin.readline().strip()
            if not line:
                raise OsctlError("no public key given on stdin")
            node.save_keys(pool, [f"{n} {k}" for n, k in keys.items()] + [f"{name} {line}"])
            return 0
        if sub in ("del", "delete"):
            _need(args, "name")
            if args[0] not in keys:
                raise OsctlError(f"key '{args[0]}' not found")
            node.save_keys(pool, [f"{n} {k}" for n, k in keys.items() if n != args[0]])
            return 0
    raise UsageError(f"Unknown command 'receive authorized-keys {sub}'")


def osctl_main(argv: list[str]) -> int:
    node = Node("/")
    g = {"json": False, "parsable": False, "pool": None}
    args = list(argv)
    try:
        while args and args[0].startswith("-"):
            arg = args.pop(0)
            if arg in ("-j", "--json"):
                g["json"] = True
            elif arg in ("-p", "--parsable"):
                g["parsable"] = True
            elif arg in ("-q", "--quiet"):
                pass
            elif arg == "--pool" and args:
                g["pool"] = args.pop(0)
            elif arg.startswith("--pool="):
                g["pool"] = arg.split("=", 1)[1]
            elif arg == "--version":
                toolbox.out(f"osctl version {profile(node)['version']}")
                return 0
            elif arg in ("-h", "--help"):
                sys.stdout.write(USAGE)
                return 0
            else:
                raise UsageError(f"Unknown option {arg}")
        if not args:
            sys.stdout.write(USAGE)
            return 0
        commands = {"ct": cmd_ct, "user": cmd_user, "id-range": cmd_id_range, "receive": cmd_receive}
        if args[0] not in commands:
            raise UsageError(f"Unknown command '{args[0]}'")
        return commands[args[0]](node, g, args[1:])
    except OsctlError as e:
        toolbox.err(f"error: {e}")
        return 1
    except UsageError as e:
        toolbox.err(f"error: {e}")
        return 64
    except ZfsError as e:
        toolbox.err(f"error: {e.message}")
        return 1


# -- the receive side (osctld/hooks/send-receive and send_receive/commands) -------------------
class ReceiveUsage(Exception):
    pass


def _parse_pool_id(args: list[str]) -> tuple[str | None, str]:
    if not args:
        raise ReceiveUsage
    if ":" in args[0]:
        pool, ctid = args[0].split(":", 1)
        return pool, ctid
    return None, args[0]


def _by_token(node: Node, args: list[str]) -> tuple[str | None, str]:
    """(pool, id) of the container whose send log holds the token (osctld's Tokens registry)."""
    if not args:
        raise ReceiveUsage
    for cfg in node.cts(node.pools()):
        if (cfg.get("send_log") or {}).get("token") == args[0]:
            return cfg["pool"], cfg["id"]
    raise OsctlError("container not found")


def _staged(node: Node, pool: str | None, ctid: str, step: str) -> dict:
    try:
        cfg = node.find_ct(pool, ctid)
    except OsctlError:
        raise OsctlError("container not found") from None
    if cfg.get("state") != "staged":
        raise OsctlError("this container is not staged")
    log = cfg.get("send_log")
    if log is None or not _can_continue(log["state"], step):
        raise OsctlError("invalid send sequence")
    return cfg


def _can_continue(state: str, step: str) -> bool:
    if step == "cancel":
        return state in ("stage", "base", "incremental")
    syncs = ("base", "incremental")
    if state in syncs and step in syncs:
        return True
    return LOG_STATES.index(step) > LOG_STATES.index(state)


def _destroy_recorded(node: Node, cfg: dict) -> None:
    for ds, snap in cfg["send_log"]["snapshots"]:
        with contextlib.suppress(ZfsError):
            node.zfs.destroy(f"{ds}@{snap}")


def receive(node: Node, cmdline: str | None, stdin) -> int:
    """One receive command (SSH_ORIGINAL_COMMAND), with `stdin` the binary input."""
    prof = profile(node)
    args = (cmdline or "").split(" ")
    if not cmdline or len(args) < 2 or args[0] != "receive" or args[1] not in (
            "skel", "base", "incremental", "transfer", "cancel"):
        raise ReceiveUsage
    step, args = args[1], args[2:]
    tokens = prof["receive"] == "token"
    if step == "skel":
        pool = node.pool(args[0] if args and args[0] and args[0] != "-" else None)
        with tempfile.TemporaryFile() as f:
            shutil.copyfileobj(stdin, f)
            f.seek(0)
            try:
                archive = Archive(f)
            except tarfile.TarError:
                raise OsctlError("metadata.yml not found") from None
            meta = archive.yaml("metadata.yml")
            if meta is None:
                raise OsctlError("metadata.yml not found")
            if meta.get("type") != "skel":
                raise OsctlError(f"expected archive type to be 'skel', got '{meta.get('type')}'")
            with node.lock():
                cfg = stage_ct(node, pool, archive, meta, staged=True)
                if not prof["staged_mounted"]:
                    for ds in datasets_of(node, cfg):
                        node.zfs.mount(ds, mounted=False)
                cfg["send_log"] = new_send_log()
                if tokens:
                    cfg["send_log"]["token"] = secrets.token_hex(20)
                node.save_ct(cfg)
        if tokens:
            toolbox.out(cfg["send_log"]["token"])
        return 0
    if step in ("base", "incremental"):
        if len(args) < 2:
            raise ReceiveUsage
        pool, ctid = _by_token(node, args) if tokens else _parse_pool_id(args)
        with node.lock():
            cfg = _staged(node, pool, ctid, step)
            ds = cfg["dataset"] if args[1] == "/" else f"{cfg['dataset']}/{args[1]}"
            if step == "base" and ds not in node.zfs.datasets():
                raise OsctlError("dataset does not exist")
            try:
                node.zfs.receive(stdin, ds, force=True, no_mount=True)
            except ZfsError as e:
                toolbox.write(node.path("/var/log/osctld.recv.log"), e.message + "\n")
                raise OsctlError("unable to receive stream, zfs recv exited with 1") from None
            cfg["send_log"]["state"] = step
            if len(args) > 2 and args[2]:
                cfg["send_log"]["snapshots"].append([ds, args[2]])
            node.save_ct(cfg)
        return 0
    pool, ctid = _by_token(node, args) if tokens else _parse_pool_id(args)
    with node.lock():
        cfg = _staged(node, pool, ctid, "transfer" if step == "transfer" else "cancel")
        _destroy_recorded(node, cfg)
        if step == "transfer":
            cfg["state"] = "running" if args[1:2] == ["start"] else "stopped"
            del cfg["send_log"]
            node.save_ct(cfg)
        else:
            node.delete_ct(cfg)
    return 0


def receive_main(argv: list[str]) -> int:
    node = Node("/")
    try:
        return receive(node, os.environ.get("SSH_ORIGINAL_COMMAND"), sys.stdin.buffer)
    except ReceiveUsage:
        sys.stderr.write(RECEIVE_USAGE[profile(node)["receive"]])
        return 1
    except OsctlError as e:
        toolbox.err(f"Error: {e}")
        return 1
    except ZfsError as e:
        toolbox.err(f"Error: {e.message}")
        return 1


if __name__ == "__main__":
    toolbox.main({"osctl": osctl_main, RECEIVE_USER: receive_main})
