"""The fleet's trigger form and report (openvz_fleet_migration): the OpenVZ nodes in the order
given, each with its vpsAdminOS node, become one `openvz_to_vpsadminos` conf each, checked by
that DAG's own validation before anything runs."""

from __future__ import annotations

import re
from dataclasses import dataclass

from airlift.params import ParamError, check_hostname, raise_if
from openvz.params import validate

CHILD_DAG = "openvz_to_vpsadminos"
# What the fleet passes to every node's run unchanged (the child's params of the same name).
SHARED = ("dry_run", "path", "destination_pool", "veth_type", "bridge_link", "interconnect_pool_v4",
          "interconnect_pool_v6", "owners", "delete_source", "window_start", "window_end", "window_timezone",
          "transfer_rate_mib", "transfers_at_once", "stop_on_first_error", "sync_delta_mib", "sync_passes")


@dataclass(frozen=True)
class Fleet:
    nodes: tuple[dict, ...]  # one openvz_to_vpsadminos conf per OpenVZ node, in order
    stop_on_failed_node: bool


def plan(params: dict) -> Fleet:
    """The per-node confs; every problem of every node at once (ParamError). Every vpsAdminOS
    node of the fleet counts for the interconnect networks of each run, so two nodes' runs
    never hand out the same /30."""
    nodes, errors = params.get("nodes"), []
    if not isinstance(nodes, list) or not nodes:
        raise_if(["nodes: a list of {source, destination[, containers]}, at least one"])
    shared = {k: params[k] for k in SHARED if k in params}
    # a bad destination is refused once, by its own node
    destinations = [n.get("destination") for n in nodes
                    if isinstance(n, dict) and not check_hostname("destination", n.get("destination"))]
    confs, sources = [], set()
    for i, node in enumerate(nodes, 1):
        if not isinstance(node, dict) or set(node) - {"source", "destination", "containers"}:
            errors.append(f"nodes[{i}]: {node!r} is not {{source, destination[, containers]}}")
            continue
        conf = {**shared, "source_node": node.get("source"), "destination_node": node.get("destination"),
                "containers": node.get("containers", "all"),
                "interconnect_nodes": [d for d in dict.fromkeys(destinations) if d != node.get("destination")]}
        try:
            validate(conf)
        except ParamError as e:
            errors += [f"nodes[{i}] ({node.get('source')}): {problem}" for problem in e.problems]
            continue
        if node["source"] in sources:
            errors.append(f"nodes[{i}]: {node['source']} is given twice")
        sources.add(node["source"])
        confs.append(conf)
    raise_if(errors)
    return Fleet(nodes=tuple(confs), stop_on_failed_node=bool(params.get("stop_on_failed_node", True)))


def child_run_id(fleet_run_id: str, source: str) -> str:
    """The node's run of openvz_to_vpsadminos: named by the fleet run and the node, so a retry
    finds it instead of starting a second one."""
    return re.sub(r"[^A-Za-z0-9_.~:+-]", "_", f"fleet__{fleet_run_id}__{source}")


def plan_table(fleet: Fleet) -> str:
    lines = ["| # | OpenVZ node | vpsAdminOS node | containers |", "|---|---|---|---|"]
    for i, conf in enumerate(fleet.nodes, 1):
        containers = conf["containers"]
        shown = "all" if containers in ("all", None) else ", ".join(map(str, containers))
        lines.append(f"| {i} | {conf['source_node']} | {conf['destination_node']} | {shown} |")
    return "\n".join(lines)


def report_table(nodes: list[dict]) -> str:
    """The run's note: per node its run's state and its containers moved (with downtime),
    refused and failed; nodes not started say so."""
    lines = ["| OpenVZ node | run | moved (downtime) | refused | failed |", "|---|---|---|---|---|"]
    for node in nodes:
        moved = ", ".join(f"{m['ctid']} ({m['downtime_seconds']:.1f} s)" if m["downtime_seconds"] is not None
                          else str(m["ctid"]) for m in node.get("moved", [])) or "-"
        lines.append(f"| {node['source']} | {node['state']} | {moved} | "
                     f"{', '.join(map(str, node.get('refused', []))) or '-'} | "
                     f"{', '.join(map(str, node.get('failed', []))) or '-'} |")
    return "\n".join(lines)
