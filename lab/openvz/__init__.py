"""OpenVZ Legacy -> vpsAdminOS in the lab: an OpenVZ node (vz1) with containers in every
layout, two vpsAdminOS nodes (os1, os2), the converter and osctl.

- world.py: seeds the OpenVZ node's containers (simfs, ploop, ZFS) and the vpsAdminOS nodes'
  pools, users and id ranges;
- runtime.py: the running containers' own writes (a daemon thread in the lab process);
- tools/: its node-tool simulators (vpsadminos-convert, osctl and its receive side, gem, ruby).

What the core asks of a product (lab/core/products.py) is here; this module imports the rest
only when called, so the core can import it.
"""

from __future__ import annotations

import threading

from lab.core.config import LabConfig
from lab.openvz.tools import LIBRARIES, TOOLS, TOOLS_DIR

__all__ = ["LIBRARIES", "TOOLS", "TOOLS_DIR", "connections", "seed_world", "start_daemons"]


def start_daemons(cfg: LabConfig, stopping: threading.Event) -> None:
    """The OpenVZ node's running containers keep writing into their root filesystems."""
    try:
        from lab.openvz import runtime
    except ImportError:  # not built yet
        return
    runtime.start(cfg, stopping)


def seed_world(cfg: LabConfig, **options) -> dict:
    """A fresh OpenVZ world on the lab's (already built) vz1, os1 and os2."""
    from lab.openvz import world

    return world.seed(cfg, **options)


def connections(cfg: LabConfig) -> dict[str, dict]:
    """The migration DAGs' connection: root over SSH to the OpenVZ and vpsAdminOS nodes (the
    DAG names the node of each call; the connection carries the key and the port)."""
    return {
        "openvz_ssh": {
            "conn_type": "ssh", "host": "127.0.1.31", "port": cfg.ssh_port, "login": "root",
            "extra": {"key_file": str(cfg.client_key), "known_hosts": str(cfg.known_hosts),
                      "conn_timeout": 10},
        },
    }
