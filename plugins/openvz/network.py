"""Interconnect networks of routed veths (seed 002): each container gets a /30 (IPv4) and a
/126 (IPv6) cut from a pool; the host's veth takes the first address, the container's the
second. What is taken is read back from the vpsAdminOS nodes (their containers' routed
netifs), so a rerun finds the networks it gave and allocates the same."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

PREFIX = {4: 30, 6: 126}


def allocate(ctids: Iterable[int], existing: dict[int, dict[str, str]], taken: Iterable[str],
             pool4: ipaddress.IPv4Network, pool6: ipaddress.IPv6Network,
             versions: dict[int, set[str]]) -> dict[int, dict[str, str]]:
    """{ctid: {"v4": "a.b.c.d/30", "v6": "x::/126"}} for the batch `ctids`, in id order so that
    every task of the batch computes the same answer. A container keeps what it already has
    (`existing`, read back from the destination); `taken` are every other network in use;
    `versions[ctid]` says which IP versions the container has addresses of."""
    used = {ipaddress.ip_network(n, strict=False) for n in taken}
    for nets in existing.values():
        used |= {ipaddress.ip_network(n, strict=False) for n in nets.values()}
    free = {4: pool4.subnets(new_prefix=PREFIX[4]), 6: pool6.subnets(new_prefix=PREFIX[6])}
    result: dict[int, dict[str, str]] = {}
    for ctid in sorted(ctids):
        result[ctid] = dict(existing.get(ctid, {}))
        for version in (4, 6):
            key = f"v{version}"
            if key not in versions.get(ctid, set()) or key in result[ctid]:
                continue
            for net in free[version]:
                if not any(net.overlaps(u) for u in used):
                    used.add(net)
                    result[ctid][key] = str(net)
                    break
            else:
                pool = pool4 if version == 4 else pool6
                raise ValueError(f"the interconnect pool {pool} has no free /{PREFIX[version]} left for "
                                 f"container {ctid}")
    return result


def host_and_ct(network: str) -> tuple[str, str]:
    """The host's and the container's address on an interconnect network (first, second)."""
    net = ipaddress.ip_network(network)
    return f"{net.network_address + 1}/{net.prefixlen}", f"{net.network_address + 2}/{net.prefixlen}"
