"""Airflow's cluster policies for this deployment. Airflow imports `airflow_local_settings`
from its config folder or the plugins folder (both on sys.path before it looks), so every
component that reads this project's plugins folder (scheduler, dag-processor, workers,
`dag.test()`) runs them.

task_instance_mutation_hook: a task declaring `pool=per_node(...)` (plugins/airlift/pools.py)
has each instance put in the pool of the run's node, e.g. the transfers of
openvz_to_vpsadminos in `openvz-transfers:<destination node>`, created (or resized to the
run's form) in the scheduler's own transaction; the hook must not open a session or commit.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def task_instance_mutation_hook(task_instance, dag_run) -> None:
    from sqlalchemy.orm import object_session

    from airlift.pools import MARK

    if dag_run is None or not (task_instance.pool or "").startswith(f"{MARK}:"):
        return  # not ours, or before the instance belongs to a run (the hook runs again then)
    route(task_instance, _run_params(task_instance, dag_run), object_session(dag_run) or object_session(task_instance))


def route(task_instance, params: dict, session) -> None:
    """Put a task instance declaring a per-node pool in its node's pool, creating or resizing
    the pool in `session` (the scheduler's; committed with its transaction)."""
    from airlift.pools import DEFAULT_POOL, resolve

    pool = resolve(task_instance.pool, params)
    if pool is None:
        return
    task_instance.pool = pool.name
    if pool.name == DEFAULT_POOL:
        return
    if session is None:
        log.warning("pool %s: no session to create it in; `airflow pools set` it if it is missing", pool.name)
        return
    session.execute(_upsert(session.get_bind().dialect.name, pool))


def _run_params(task_instance, dag_run) -> dict:
    """The run's params: its conf over the DAG's defaults."""
    params: dict = {}
    try:
        params.update(task_instance.task.dag.params.dump())
    except Exception:  # noqa: BLE001 - a task without its DAG here: the conf alone decides
        pass
    params.update(dag_run.conf or {})
    return params


def _upsert(dialect: str, pool):
    """Insert the pool or set its size, in one statement (two schedulers creating it at once
    do not collide)."""
    from airflow.models.pool import Pool

    values = {"pool": pool.name, "slots": pool.slots, "description": pool.description, "include_deferred": True}
    update = {"slots": pool.slots, "description": pool.description, "include_deferred": True}
    if dialect == "mysql":
        from sqlalchemy.dialects.mysql import insert

        return insert(Pool).values(**values).on_duplicate_key_update(**update)
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(Pool).values(**values).on_conflict_do_update(index_elements=["pool"], set_=update)
