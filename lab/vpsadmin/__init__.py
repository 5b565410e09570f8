"""vpsAdmin in the lab: a v1.22 cluster and what the upgrade to 2.0 brings on it.

- v1_22/: the v1.22 world's schema and seed; world.py, pools.py and checkouts.py lay out its
  node files, ZFS pools and git checkouts from the seeded database;
- v2_0/: what `git pull` brings: the 2.0 trees and the API's migrations;
- vpsadmind_v1_22.py, vpsadmind_v2_0.py (sharing daemon.py): the node daemons; api.py and
  integrity.py: the 2.0 API and its integrity check;
- tools/: its node-tool simulators (rake, vpsadmindctl, thin).

What the core asks of a product (lab/core/products.py) is here; this module imports the rest
only when called, so the core can import it.
"""

from __future__ import annotations

import threading

from lab.core.config import LabConfig
from lab.core.topology import HOSTS, host_with_role
from lab.vpsadmin.tools import TOOLS, TOOLS_DIR

__all__ = ["TOOLS", "TOOLS_DIR", "connections", "seed_world", "start_daemons"]


def start_daemons(cfg: LabConfig, stopping: threading.Event) -> None:
    """A vpsAdmind per vpsAdmin server (1.22, or 2.0 once the node's checkout is), and the
    2.0 API on the API host (serving while `thin` says it runs)."""
    from lab.vpsadmin.api import ApiServer
    from lab.vpsadmin.vpsadmind_v1_22 import VpsadmindV1_22

    for host in HOSTS:
        if host.server:
            VpsadmindV1_22(cfg.node_root(host.name), host.server["server_id"], cfg.mysql_kwargs(),
                           cfg.vpsadmin_db, stopping).start()
    ApiServer(cfg.node_root(host_with_role("api").name), cfg.mysql_kwargs(), cfg.vpsadmin_db,
              stopping, cfg.tls_cert, cfg.tls_key).start()


def seed_world(cfg: LabConfig, reset_timezones: bool = False, pools: bool = True) -> dict:
    """A fresh v1.22 world on the lab's (already built) nodes: the vpsAdmin database, then
    every node's files. `reset_timezones` empties the time zone tables, as on a server that
    never loaded them. Returns what the seed made (counts, ids)."""
    import MySQLdb

    from lab.core import mysql
    from lab.vpsadmin import world
    from lab.vpsadmin.v1_22 import seed as v1_22

    info = v1_22.seed_database(cfg.mysql_kwargs(), cfg.vpsadmin_db,
                               [h.server for h in HOSTS if h.server], scale=cfg.scale)
    if reset_timezones:
        mysql.clear_timezones(cfg.mysql_kwargs())
    conn = MySQLdb.connect(db=cfg.vpsadmin_db, charset="utf8mb4", **cfg.mysql_kwargs())
    try:
        world.lay_out(cfg, conn, pools=pools)
    finally:
        conn.close()
    return info


def connections(cfg: LabConfig) -> dict[str, dict]:
    """The upgrade DAGs' connections on this lab."""
    ssh_extra = {
        "key_file": str(cfg.client_key),
        "known_hosts": str(cfg.known_hosts),
        "conn_timeout": 10,
    }
    return {
        "vpsadmin_db": {
            "conn_type": "mysql", "host": cfg.mysql_host, "port": cfg.mysql_port,
            "login": cfg.app_user, "password": cfg.app_password,
            "schema": cfg.vpsadmin_db, "extra": {"charset": "utf8mb4"},
        },
        # The 2.0 API (lab/vpsadmin/api.py) once `thin` runs it, over https with a certificate
        # of the lab's own CA; the seed's admin password is ":heslo1" (m_pass = md5(login +
        # password), the API's md5 provider).
        "vpsadmin_api": {
            "conn_type": "http", "host": host_with_role("api").address, "port": cfg.api_port,
            "schema": "https", "login": "admin", "password": ":heslo1",
            "extra": {"verify": str(cfg.tls_ca)},
        },
        "vpsadmin_ssh": {
            "conn_type": "ssh", "host": host_with_role("api").address, "port": cfg.ssh_port,
            "login": "root", "extra": ssh_extra,
        },
    }
