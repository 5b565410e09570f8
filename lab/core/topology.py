"""The lab cluster: which hosts exist, their loopback addresses and what they are.

The vpsAdmin servers (rows of the `servers` table) carry the server dict the world seed
writes; the API/web host is also the cluster's mailer, as on vpsFree.cz. The DB host is not
a vpsAdmin server: it only holds the MariaDB client tools and the backups.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class LabHost:
    name: str
    address: str
    roles: frozenset[str]
    server: dict | None = field(default=None, compare=False)


def _server(server_id, server_name, server_type, location_id, address, role):
    return {
        "server_id": server_id,
        "server_name": server_name,
        "server_type": server_type,
        "location_id": location_id,
        "ip": address,
        "role": role,
    }


HOSTS: tuple[LabHost, ...] = (
    LabHost(
        "vpsadmin",
        "127.0.1.2",
        frozenset({"api", "web", "mailer"}),
        _server(5, "vpsadmin.prg.vpsfree.cz", "mailer", 1, "127.0.1.2", "mailer"),
    ),
    LabHost("db", "127.0.1.3", frozenset({"db"})),
    LabHost(
        "node1",
        "127.0.1.11",
        frozenset({"hypervisor"}),
        _server(1, "node1.prg.vpsfree.cz", "node", 1, "127.0.1.11", "hypervisor"),
    ),
    LabHost(
        "node2",
        "127.0.1.12",
        frozenset({"hypervisor"}),
        _server(2, "node2.brq.vpsfree.cz", "node", 2, "127.0.1.12", "hypervisor"),
    ),
    LabHost(
        "storage1",
        "127.0.1.21",
        frozenset({"storage", "nas"}),
        _server(3, "storage1.prg.vpsfree.cz", "storage", 1, "127.0.1.21", "nas"),
    ),
    LabHost(
        "backup1",
        "127.0.1.22",
        frozenset({"storage", "backup"}),
        _server(4, "backup1.brq.vpsfree.cz", "storage", 2, "127.0.1.22", "backup"),
    ),
    # OpenVZ Legacy -> vpsAdminOS (lab/openvz/): two OpenVZ Legacy nodes (Scientific Linux 6 with
    # the OpenVZ kernel; vz2 is the fleet's second) and two vpsAdminOS nodes; no vpsAdmin servers.
    LabHost("vz1", "127.0.1.31", frozenset({"openvz"})),
    LabHost("vz2", "127.0.1.32", frozenset({"openvz"})),
    LabHost("os1", "127.0.1.41", frozenset({"vpsadminos"})),
    LabHost("os2", "127.0.1.42", frozenset({"vpsadminos"})),
    # Synnefo 0.12 -> 0.13 (lab/synnefo/): its three service hosts and two Ganeti nodes; the
    # databases are on the lab's PostgreSQL.
    LabHost("astakos", "127.0.1.51", frozenset({"astakos"})),
    LabHost("cyclades", "127.0.1.52", frozenset({"cyclades"})),
    LabHost("pithos", "127.0.1.53", frozenset({"pithos"})),
    LabHost("ganeti1", "127.0.1.61", frozenset({"ganeti"})),
    LabHost("ganeti2", "127.0.1.62", frozenset({"ganeti"})),
)


def host(name: str) -> LabHost:
    for h in HOSTS:
        if h.name == name:
            return h
    raise KeyError(f"no lab host named {name!r}; known: {', '.join(h.name for h in HOSTS)}")


def host_with_role(role: str) -> LabHost:
    return next(h for h in HOSTS if role in h.roles)


def vpsadmin_servers() -> list[dict]:
    return [h.server for h in HOSTS if h.server]
