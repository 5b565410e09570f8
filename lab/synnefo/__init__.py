"""Synnefo 0.12 -> 0.13 in the lab (issue 11): a Synnefo 0.12 cluster about to be upgraded.

- world.py: its databases, `snf_apps` (Astakos and Cyclades, Django) and `snf_pithos` (the
  Pithos backend) on the lab's PostgreSQL (lab/core/postgres.py), seeded with the mess the
  upgrade has to clean up (`seed`, `copy`, `destroy`);
- nodes.py: its hosts (astakos, cyclades, pithos, ganeti1, ganeti2) as 0.12.5 left them:
  /etc/synnefo/*.conf, dpkg's status, the services;
- tools/: its node-tool simulators (snf-manage, pithos-migrate, apt-get and dpkg-query, the
  runbook's step-2 scripts, and snf-lab-astakos, Astakos's HTTP API over SSH).

What the core asks of a product (lab/core/products.py) is here; this module imports the rest
(and the database driver) only when called, so the core can import it.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

from lab.core.config import LabConfig
from lab.synnefo.tools import TOOLS, TOOLS_DIR

__all__ = ["TOOLS", "TOOLS_DIR", "connections", "databases_record", "destroy_world", "seed_world",
           "start_daemons"]


def databases_record(cfg: LabConfig) -> Path:
    """The file that says which Synnefo databases a lab has, and on which server: written
    before they are created, removed once they are dropped."""
    return cfg.root / "synnefo-databases.json"


def start_daemons(cfg: LabConfig, stopping: threading.Event) -> None:
    """Nothing runs in the lab process: the services are states `service` keeps, and Astakos's
    API answers over SSH (tools/snf_lab_astakos.py)."""


def seed_world(cfg: LabConfig, **options) -> dict:
    """A fresh 0.12 world: its databases (lab/synnefo/world.py, `options` go there), then its
    hosts' files on the lab's (already built) nodes."""
    from lab.synnefo import nodes, world

    info = world.seed(cfg, **options)
    nodes.install(cfg, info)
    return info


def destroy_world(cfg: LabConfig) -> None:
    """Drop the lab's Synnefo databases; nothing to do, and no server to reach, when the lab
    never had any."""
    if not databases_record(cfg).exists():
        return
    from lab.synnefo import world

    world.destroy(cfg)


def server_url() -> str:
    """The lab's PostgreSQL server (LAB_PG_URL, else the local one), without connecting."""
    if os.environ.get("LAB_PG_URL"):
        return os.environ["LAB_PG_URL"]
    from lab.core.postgres import DEFAULT_URL

    return DEFAULT_URL


def connections(cfg: LabConfig) -> dict[str, dict]:
    """The upgrade DAGs' connections: root over SSH to the Synnefo hosts (the DAG names the host
    of each call), and the two databases of this lab's world (named after its vpsAdmin
    database, see world.synnefo_dbs)."""
    server = urlsplit(server_url())
    database = {"conn_type": "postgres", "host": server.hostname or "127.0.0.1", "port": server.port or 5432,
                "login": unquote(server.username or "postgres"), "password": unquote(server.password or ""),
                "extra": {"connect_timeout": 5}}
    names = {"snf_apps": f"{cfg.vpsadmin_db}_snf_apps", "snf_pithos": f"{cfg.vpsadmin_db}_snf_pithos"}
    return {
        "synnefo_ssh": {
            "conn_type": "ssh", "host": "127.0.1.51", "port": cfg.ssh_port, "login": "root",
            "extra": {"key_file": str(cfg.client_key), "known_hosts": str(cfg.known_hosts), "conn_timeout": 10},
        },
        "synnefo_apps_db": {**database, "schema": names["snf_apps"]},
        "synnefo_pithos_db": {**database, "schema": names["snf_pithos"]},
    }
