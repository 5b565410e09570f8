"""Pools named after a node the run's form names: a task declares `pool=per_node(...)` and
the cluster policy (plugins/airflow_local_settings.py) puts each of its task instances in the
pool of the run's node, sized by the run's form, creating the pool the first time.

Why a policy: an operator's `pool` is fixed when the DAG is parsed, but the node (and so the
pool) is known only when a run is triggered; Airflow's documented place to route a task
instance on `dag_run.conf` is `task_instance_mutation_hook`. The pool counts deferred tasks
(a transfer waits for its remote job deferred, and must hold its slot while it does).

Without the policy (a deployment that dropped the plugins folder) the declared name is not a
pool and the tasks would never be scheduled, so tests/dags checks the policy is installed.
"""

from __future__ import annotations

from dataclasses import dataclass

MARK = "per-node"
DEFAULT_POOL = "default_pool"


def per_node(kind: str, node_param: str, slots_param: str) -> str:
    """The `pool=` of a task whose instances share the pool `<kind>:<node>`, where <node> is
    the run's `node_param` and the pool's size its `slots_param`."""
    for part in (kind, node_param, slots_param):
        if not part or ":" in part:
            raise ValueError(f"per_node({kind!r}, {node_param!r}, {slots_param!r}): parts without ':'")
    return f"{MARK}:{kind}:{node_param}:{slots_param}"


@dataclass(frozen=True)
class NodePool:
    name: str
    slots: int
    description: str


def resolve(declared: str, params: dict) -> NodePool | None:
    """The pool a task instance goes to, or None when `declared` is not a per-node pool.
    `params` are the run's (its conf over the DAG's defaults). A run without the node (a bad
    form, refused by the DAG's first task) goes to the default pool, never to a pool that
    does not exist, so the refusal is not stuck waiting."""
    mark, _, rest = declared.partition(":")
    if mark != MARK:
        return None
    kind, node_param, slots_param = rest.split(":")
    node = str(params.get(node_param) or "").strip()
    if not node:
        return NodePool(DEFAULT_POOL, 0, "")
    try:
        slots = int(params.get(slots_param) or 1)
    except (TypeError, ValueError):
        slots = 1
    slots = max(slots, 1)
    return NodePool(f"{kind}:{node}", slots,
                    f"{kind} into {node}, at most {slots} at once (the last run's {slots_param}; "
                    "edit here to change it for the running one)")
