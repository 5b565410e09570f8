"""The products the lab simulates: one package each beside lab/core/ (lab/vpsadmin/, lab/openvz/,
lab/synnefo/).

What the core asks of a product package (its __init__ stays light: the core imports it):
- `TOOLS_DIR`, `TOOLS`: its node-tool simulators, {tool name on the node's PATH: file in
  TOOLS_DIR} (lab/core/nodes.py installs them next to the core's);
- `start_daemons(cfg, stopping)`: start its daemon threads in the lab process (they end once
  the threading.Event `stopping` is set);
- `connections(cfg)`: {conn_id: Airflow connection} of its DAGs, on this lab.
"""

from __future__ import annotations

import importlib
from types import ModuleType

PRODUCTS = ("lab.vpsadmin", "lab.openvz", "lab.synnefo")


def products() -> list[ModuleType]:
    return [importlib.import_module(name) for name in PRODUCTS]
