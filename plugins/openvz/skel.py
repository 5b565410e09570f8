"""The skel archive a container's staging sends to osctld's `receive skel` (research
vpsadminos.md §1.5, §2.3, §3), built by the DAG for today's osctld, where the converter's own
cannot be used: it carries the group `default` (refused since osctld's groups became paths)
and a routed netif's interconnect network (gone since 2018-09).

What the converter consumes of the OpenVZ config, converted as it converts it (§2.3):
OSTEMPLATE -> distribution and version; HOSTNAME (default `vps`); NAMESERVER -> resolvers;
ONBOOT -> autostart; PHYSPAGES/SWAPPAGES -> memory cgparams; IP_ADDRESS -> one veth (routed:
the addresses and their routes; bridged: the link); DEVICES -> devices. The rest is ignored,
as the converter ignores it (the DAG sets the CPU limit and the quota itself).
"""

from __future__ import annotations

import io
import tarfile
import time

import yaml

from openvz.containers import addresses, distribution

PAGE = 4096
USER_MAP = "0:666000:65536"  # the converter's user `default` (its user.rb)
GROUP = "/default"


def _pages(value: str) -> int | None:
    """The limit of a `barrier:limit` pages value in pages (converter parse_unit): plain
    numbers are pages, `unlimited` is 0, B/K/M/G/T suffixes are bytes."""
    limit = value.split(":")[-1].strip()
    if limit == "unlimited":
        return 0
    units = {"B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    if limit and limit[-1].upper() in units:
        return int(limit[:-1]) * units[limit[-1].upper()] // PAGE
    if limit.upper().endswith("P"):
        limit = limit[:-1]
    return int(limit) if limit.isdigit() else None


def container_config(conf: dict[str, str], *, arch: str, veth_type: str, bridge_link: str,
                     netif_name: str = "eth0") -> dict:
    """config/container.yml of the container, as the converter would write it for today's
    osctld (user `default`, group /default, routed veth without an interconnect)."""
    name, version = distribution(conf)
    cgparams = []
    physpages = _pages(conf["PHYSPAGES"]) if "PHYSPAGES" in conf else None
    if physpages is not None:
        memory = physpages * PAGE
        cgparams.append({"subsystem": "memory", "name": "memory.limit_in_bytes", "value": [memory]})
        swap = _pages(conf["SWAPPAGES"]) if "SWAPPAGES" in conf else None
        if swap is not None:
            cgparams.append({"subsystem": "memory", "name": "memory.memsw.limit_in_bytes",
                             "value": [memory + swap * PAGE]})
    netifs = []
    if conf.get("IP_ADDRESS", "").split():
        ips = addresses(conf)
        netif = {"type": veth_type, "name": netif_name, "hwaddr": None, "ip_addresses": ips}
        if veth_type == "bridge":
            netif["link"] = bridge_link
        else:
            netif["routes"] = {v: list(a) for v, a in ips.items()}
        netifs.append(netif)
    devices = []
    for item in conf.get("DEVICES", "").split():
        kind, major, minor, mode = (item.split(":") + ["", "", "", ""])[:4]
        devices.append({"type": "block" if kind == "b" else "char", "major": major, "minor": minor,
                        "mode": "" if mode == "none" else mode.replace("q", ""), "name": None, "inherit": True})
    return {
        "user": "default", "group": GROUP, "distribution": name, "version": version, "arch": arch,
        "net_interfaces": netifs, "cgparams": cgparams, "devices": devices, "prlimits": [], "mounts": [],
        "autostart": {"priority": 10, "delay": 5} if conf.get("ONBOOT") == "yes" else None,
        "hostname": conf.get("HOSTNAME", "vps"),
        "dns_resolvers": conf["NAMESERVER"].split() if conf.get("NAMESERVER") else None,
        "nesting": False,
    }


def skel_archive(ctid: int, config: dict, *, now: float | None = None) -> bytes:
    """The uncompressed tar `receive skel` reads: metadata.yml (type skel), config/user.yml,
    config/group.yml and config/container.yml."""
    files = {
        "metadata.yml": {"type": "skel", "format": "", "user": "default", "group": GROUP, "container": str(ctid),
                         "datasets": [], "exported_at": int(now if now is not None else time.time())},
        "config/user.yml": {"ugid": 1000, "uid_map": [USER_MAP], "gid_map": [USER_MAP]},
        "config/group.yml": {"path": GROUP, "cgparams": []},
        "config/container.yml": config,
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        directory = tarfile.TarInfo("config")
        directory.type, directory.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(directory)
        for name, value in files.items():
            data = ("---\n" + yaml.safe_dump(value, sort_keys=False)).encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()
