"""OpenVZ containers: their configs as the converter reads them, their layout, and what the
converter (and vpsAdminOS) can take.

The config is read the way the converter reads /etc/vz/conf/<ctid>.conf (research
vpsadminos.md §2.1): `KEY="value"` or `KEY=value` per line, comments and blank lines skipped,
a repeated key keeps its first position and takes the last value.
"""

from __future__ import annotations

import posixpath
import re

_QUOTED = re.compile(r'^([A-Z_]+)="([^"]+)"')
_PLAIN = re.compile(r"^([A-Z_]+)=([^\s]+)")

# vpsAdminOS's supported distributions (seeds/002, "Supported distributions"): name -> the
# versions it supports (None: any; a version matches on as many dotted parts as given).
SUPPORTED = {
    "alpine": ("3.6", "3.7"),
    "arch": None,
    "centos": ("7",),
    "debian": ("8", "9"),
    "fedora": ("27", "28"),
    "gentoo": None,
    "nixos": None,
    "ubuntu": ("16.04", "18.04"),
}


def parse_conf(text: str, ctid: int) -> dict[str, str]:
    items: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _QUOTED.match(line) or _PLAIN.match(line)
        if m:
            items[m.group(1)] = m.group(2).replace("${VEID}", str(ctid)).replace("$VEID", str(ctid))
    return items


def distribution(conf: dict[str, str]) -> tuple[str, str]:
    """OSTEMPLATE's first two dash fields, as the converter takes them (`debian-9.0-x86_64`
    -> debian, 9.0)."""
    parts = conf.get("OSTEMPLATE", "").split("-")
    return parts[0].lower(), parts[1] if len(parts) > 1 else ""


def supported(name: str, version: str) -> bool:
    if name not in SUPPORTED:
        return False
    versions = SUPPORTED[name]
    if versions is None:
        return True
    return any(version.split(".")[: len(v.split("."))] == v.split(".") for v in versions)


def layout(conf: dict[str, str], mountpoints: dict[str, str]) -> dict:
    """How the container is stored: {"layout": simfs|ploop|zfs, "dataset"?} or {"refused": why}.
    `mountpoints` maps the OpenVZ node's mounted ZFS filesystems' mountpoints to their names."""
    private = posixpath.normpath(conf.get("VE_PRIVATE", ""))
    if conf.get("VE_LAYOUT", "").startswith("ploop"):
        return {"layout": "ploop"}
    if private in mountpoints:
        return {"refused": f"its private area {private} is the root of dataset {mountpoints[private]}: the converter "
                           "takes only a dataset of its own with the root filesystem in private/"}
    parent = posixpath.dirname(private)
    if posixpath.basename(private) == "private" and parent in mountpoints:
        return {"layout": "zfs", "dataset": mountpoints[parent]}
    return {"layout": "simfs"}


def refusals(conf: dict[str, str]) -> list[str]:
    """Why the converter or vpsAdminOS cannot take this container (empty: it can)."""
    why = []
    if "OSTEMPLATE" not in conf:
        why.append("its config has no OSTEMPLATE (the converter needs it)")
    else:
        name, version = distribution(conf)
        if not supported(name, version):
            why.append(f"distribution {name} {version} is not supported on vpsAdminOS "
                       f"(supported: {', '.join(sorted(SUPPORTED))}, see the runbook's list)")
    if conf.get("NETIF"):
        why.append("it uses veth networking (NETIF); the converter takes only venet")
    if "VE_LAYOUT" not in conf:
        why.append("its config has no VE_LAYOUT")
    return why


def addresses(conf: dict[str, str]) -> dict[str, list[str]]:
    """IP_ADDRESS split by version, bare addresses with /32 and /128 as the converter does."""
    found: dict[str, list[str]] = {"v4": [], "v6": []}
    for item in conf.get("IP_ADDRESS", "").split():
        address = item if "/" in item else f"{item}/{128 if ':' in item else 32}"
        found["v6" if ":" in item else "v4"].append(address)
    return found


def disk_quota_bytes(conf: dict[str, str]) -> int | None:
    """DISKSPACE's hard limit (1 KiB blocks, `soft:hard`) in bytes: the refquota the runbook
    leaves to be set by hand; None when unset or unlimited."""
    value = conf.get("DISKSPACE", "")
    limit = value.split(":")[-1] if value else ""
    if not limit.isdigit() or int(limit) in (0, 9223372036854775807):
        return None
    return int(limit) * 1024


def cpu_limit(conf: dict[str, str]) -> int | None:
    """CPULIMIT in percent of one CPU (800 = 8 CPUs), which the converter ignores."""
    value = conf.get("CPULIMIT", "")
    return int(value) if value.isdigit() and int(value) > 0 else None
