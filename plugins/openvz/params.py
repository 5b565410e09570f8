"""The trigger parameters of `openvz_to_vpsadminos`, checked before anything changes.

Every problem is collected and raised at once (airlift.params.raise_if); what comes out is a
`Settings` whose values are safe to quote into a shell (ids are integers, names match strict
patterns, networks are parsed).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from datetime import time

from airlift.params import check_hostname, check_timezone, raise_if

CTID_MAX = 2**31 - 1
OWNER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")  # an osctl user name
POOL = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,62}$")
BRIDGE = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")  # IFNAMSIZ
VETH_TYPES = ("routed", "bridge")
PATHS = ("live", "offline")


@dataclass(frozen=True)
class Settings:
    source: str
    destination: str
    interconnect_nodes: tuple[str, ...]  # every vpsAdminOS node whose /30s count as taken
    pool: str
    containers: tuple[int, ...] | None  # None: all of the source's
    veth_type: str
    bridge_link: str
    network_v4: ipaddress.IPv4Network
    network_v6: ipaddress.IPv6Network
    owners: dict[int, str] = field(default_factory=dict)
    delete_source: bool = False
    window: tuple[time, time, str] | None = None  # start, end, time zone
    transfers_at_once: int = 1
    stop_on_first_error: bool = True
    sync_delta_bytes: int = 64 << 20
    sync_passes: int = 5
    path: str = "live"  # live: stage, sync while it runs, transfer; offline: export, copy, import
    transfer_rate_bytes: int = 100 << 20  # per second: what the window's estimate of a transfer assumes

    @property
    def offline(self) -> bool:
        return self.path == "offline"

    def owner(self, ctid: int) -> str:
        """The osctl user a container's user namespace belongs to: the given owner, else one
        user per container (no two members share a namespace by accident)."""
        return self.owners.get(ctid) or f"ct{ctid}"


def _ctid(value) -> int | None:
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or not 100 <= int(text) <= CTID_MAX:
        return None
    return int(text)


def _containers(value, errors: list[str]) -> tuple[int, ...] | None:
    if value in ("all", "", None):
        return None
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        errors.append(f"containers {value!r}: give 'all' or a list of container ids")
        return None
    ids = []
    for item in items:
        ctid = _ctid(item)
        if ctid is None:
            errors.append(f"containers: {item!r} is not a container id (an integer from 100 to {CTID_MAX})")
        else:
            ids.append(ctid)
    if not ids and not errors:
        errors.append("containers: the list is empty (give 'all' or container ids)")
    return tuple(sorted(set(ids)))


def _network(label: str, value, version: int, longest: int, errors: list[str]):
    try:
        net = ipaddress.ip_network(str(value), strict=True)
    except ValueError as exc:
        errors.append(f"{label} {value!r} is not a network ({exc})")
        return None
    if net.version != version:
        errors.append(f"{label} {value!r} is not an IPv{version} network")
        return None
    if net.prefixlen > longest:
        errors.append(f"{label} {value!r} is too small: the interconnect networks are /{longest}s cut from it")
        return None
    return net


def _clock(label: str, value, errors: list[str]) -> time | None:
    m = re.fullmatch(r"([01]\d|2[0-3]):([0-5]\d)", str(value).strip())
    if not m:
        errors.append(f"{label} {value!r} is not a time of day as HH:MM (00:00 to 23:59)")
        return None
    return time(int(m.group(1)), int(m.group(2)))


def validate(params: dict) -> Settings:
    errors: list[str] = []
    source, destination = params.get("source_node"), params.get("destination_node")
    errors += check_hostname("source_node", source) + check_hostname("destination_node", destination)
    if not errors and source == destination:
        errors.append("source_node and destination_node are the same node")
    others = params.get("interconnect_nodes") or []
    if not isinstance(others, list):
        errors.append(f"interconnect_nodes {others!r} must be a list of node addresses")
        others = []
    for node in others:
        errors += check_hostname("interconnect_nodes", node)
    pool = params.get("destination_pool", "tank")
    if not isinstance(pool, str) or not POOL.fullmatch(pool):
        errors.append(f"destination_pool {pool!r} is not a zpool name")
    containers = _containers(params.get("containers", "all"), errors)
    veth = params.get("veth_type", "routed")
    if veth not in VETH_TYPES:
        errors.append(f"veth_type {veth!r}: routed or bridge")
    bridge = params.get("bridge_link", "lxcbr0")
    if not isinstance(bridge, str) or not BRIDGE.fullmatch(bridge):
        errors.append(f"bridge_link {bridge!r} is not an interface name")
    net4 = _network("interconnect_pool_v4", params.get("interconnect_pool_v4", "10.100.0.0/16"), 4, 30, errors)
    net6 = _network("interconnect_pool_v6", params.get("interconnect_pool_v6", "fd00:100::/112"), 6, 126, errors)
    owners: dict[int, str] = {}
    raw_owners = params.get("owners") or {}
    if not isinstance(raw_owners, dict):
        errors.append(f"owners {raw_owners!r} must map container ids to owner names")
        raw_owners = {}
    for key, name in raw_owners.items():
        ctid = _ctid(key)
        if ctid is None:
            errors.append(f"owners: {key!r} is not a container id")
        elif not isinstance(name, str) or not OWNER.fullmatch(name):
            errors.append(f"owners: {name!r} (container {key}) is not a user name (a-z 0-9 _ -, at most 32)")
        else:
            owners[ctid] = name
    window = None
    start, end, zone = (params.get(k) or "" for k in ("window_start", "window_end", "window_timezone"))
    if start or end:
        first, last = _clock("window_start", start, errors), _clock("window_end", end, errors)
        errors += check_timezone("window_timezone", zone or "UTC")
        if first is not None and last is not None:
            if first == last:
                errors.append(f"the maintenance window {start}-{end} is empty")
            window = (first, last, zone or "UTC")
    at_once = params.get("transfers_at_once", 1)
    if isinstance(at_once, bool) or not isinstance(at_once, int) or not 1 <= at_once <= 32:
        errors.append(f"transfers_at_once {at_once!r}: an integer from 1 to 32")
    rate = params.get("transfer_rate_mib", 100)
    if isinstance(rate, bool) or not isinstance(rate, int) or not 1 <= rate <= 100_000:
        errors.append(f"transfer_rate_mib {rate!r}: an integer from 1 to 100000 (MiB/s)")
        rate = 100
    path = params.get("path", "live")
    if path not in PATHS:
        errors.append(f"path {path!r}: live or offline")
    raise_if(errors)
    return Settings(path=path, transfer_rate_bytes=rate << 20, source=source, destination=destination,
                    interconnect_nodes=tuple(dict.fromkeys([destination, *others])), pool=pool,
                    containers=containers, veth_type=veth, bridge_link=bridge, network_v4=net4, network_v6=net6,
                    owners=owners, delete_source=bool(params.get("delete_source", False)), window=window,
                    transfers_at_once=at_once, stop_on_first_error=bool(params.get("stop_on_first_error", True)),
                    sync_delta_bytes=int(params.get("sync_delta_mib", 64)) << 20,
                    sync_passes=int(params.get("sync_passes", 5)))
