"""Per-node pools: what a declared pool resolves to for a run, and the cluster policy that
routes task instances and creates the pool in the metadata database."""

from __future__ import annotations

import pytest

from airlift.pools import DEFAULT_POOL, NodePool, per_node, resolve

DECLARED = per_node("openvz-transfers", "destination_node", "transfers_at_once")


def test_a_run_goes_to_the_pool_of_its_node_sized_by_its_form():
    pool = resolve(DECLARED, {"destination_node": "os1.lab", "transfers_at_once": 10})
    assert (pool.name, pool.slots) == ("openvz-transfers:os1.lab", 10)
    assert "transfers_at_once" in pool.description


def test_other_pools_are_left_alone():
    assert resolve("default_pool", {"destination_node": "os1"}) is None
    assert resolve("mysql", {}) is None


@pytest.mark.parametrize("params", [{}, {"destination_node": ""}, {"destination_node": "  "}])
def test_a_run_without_its_node_waits_in_the_default_pool_not_in_a_missing_one(params):
    assert resolve(DECLARED, params) == NodePool(DEFAULT_POOL, 0, "")


@pytest.mark.parametrize("slots, expected", [(None, 1), ("x", 1), (0, 1), (-3, 1), ("4", 4)])
def test_the_size_is_at_least_one(slots, expected):
    assert resolve(DECLARED, {"destination_node": "os1", "transfers_at_once": slots}).slots == expected


@pytest.mark.parametrize("parts", [("a:b", "node", "slots"), ("kind", "", "slots"), ("kind", "node", "s:x")])
def test_declarations_are_checked(parts):
    with pytest.raises(ValueError):
        per_node(*parts)


def test_the_policy_routes_each_instance_and_creates_then_resizes_the_pool(airflow_db):
    """Against the migrated metadata database: the hook (as Airflow registered it from
    plugins/airflow_local_settings.py) puts the instance in its node's pool and upserts the
    pool in the caller's session, counting deferred tasks."""
    from types import SimpleNamespace

    import airflow_local_settings as policy
    from airflow import settings
    from airflow.models.pool import Pool
    from airflow.utils.session import create_session
    from sqlalchemy import select

    assert not getattr(settings.task_instance_mutation_hook, "is_noop", True), "the policy is installed"
    with create_session() as session:
        for slots in (3, 5):
            ti = SimpleNamespace(pool=DECLARED, task=None)
            policy.route(ti, {"destination_node": "os9.lab", "transfers_at_once": slots}, session)
            assert ti.pool == "openvz-transfers:os9.lab"
            row = session.execute(select(Pool.slots, Pool.include_deferred).where(Pool.pool == ti.pool)).one()
            assert tuple(row) == (slots, True)
        session.rollback()
    with create_session() as session:
        assert session.scalar(select(Pool).where(Pool.pool == "openvz-transfers:os9.lab")) is None
        ti = SimpleNamespace(pool="default_pool", task=None)
        policy.route(ti, {"destination_node": "os9.lab"}, session)
        assert ti.pool == "default_pool"
