"""Step nodes.sharenfs and the preflight's part of it, on fake nodes (no SSH, no database): a
real run without sharenfs_subnets stops in preflight, plan mode lists the refusal, hypervisor
pools are left alone unless asked, other pools get exactly the subnets, and the database
records what every dataset of the pool has."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airlift.errors import StepError
from airlift.remote import Result
from airlift.sql import INCLUDE_DIR
from operators.vpsadmin_upgrade.nodes import SharenfsOperator
from operators.vpsadmin_upgrade.preflight import PreflightOperator

SERVERS = [{"server_name": "node1", "server_type": "node"}, {"server_name": "storage1", "server_type": "storage"},
           {"server_name": "vpsadmin", "server_type": "mailer"}]
NAS_POOL = {"server_name": "storage1", "address": "10.0.0.21", "filesystem": "storage/nas", "role": 1, "pool_id": 2}
SQL = (INCLUDE_DIR / "sql/vpsadmin/nodes/sharenfs.sql").read_text()  # the rendered template field
HYPERVISOR_POOL = {"server_name": "node1", "address": "10.0.0.11", "filesystem": "vz/private", "role": 0,
                   "pool_id": 1}


class FakeDag:
    def __init__(self, *task_ids):
        self.task_ids = task_ids

    def has_task(self, task_id):
        return task_id in self.task_ids


WHOLE_DAG = FakeDag("preflight.check_params", "nodes.sharenfs")


def preflight_context(dag=WHOLE_DAG, **params):
    return {"params": params, "dag": dag}


def test_a_real_run_without_subnets_stops_in_preflight_naming_the_param():
    op = PreflightOperator(task_id="check_params")
    with pytest.raises(StepError, match="sharenfs_subnets is empty: .* pools of storage1 over NFS"):
        op._sharenfs(preflight_context(dry_run=False, sharenfs_subnets=[]), SERVERS)
    with pytest.raises(StepError, match="pools of node1, storage1 over NFS"):
        op._sharenfs(preflight_context(dry_run=False, sharenfs_hypervisor_pools=True), SERVERS)


def test_no_subnets_needed_when_nothing_is_shared():
    op = PreflightOperator(task_id="check_params")
    hypervisors_only = [SERVERS[0]]
    assert op._sharenfs(preflight_context(dry_run=False), hypervisors_only) == {
        "subnets": [], "sharenfs_hypervisor_pools": False}
    # a partial run (the v1.22 sections only) shares nothing either
    assert op._sharenfs(preflight_context(FakeDag("preflight.check_params"), dry_run=False), SERVERS)["subnets"] == []


def test_plan_mode_without_subnets_goes_on_and_invents_none(capsys):
    op = PreflightOperator(task_id="check_params")
    assert op._sharenfs(preflight_context(dry_run=True), SERVERS) == {"subnets": [],
                                                                      "sharenfs_hypervisor_pools": False}
    out = capsys.readouterr().out
    assert "sharenfs_subnets is empty" in out and "(a real run stops here)" in out
    assert op._sharenfs(preflight_context(dry_run=False, sharenfs_subnets=["10.0.0.0/24"],
                                          sharenfs_hypervisor_pools=True), SERVERS) == {
        "subnets": ["10.0.0.0/24"], "sharenfs_hypervisor_pools": True}


class FakeNodes:
    """Pools as `zfs get -r` lists them: {dataset: sharenfs set on it} (a child without its own
    value inherits its parent's; off by default)."""

    def __init__(self, sharenfs: dict[str, str], children: tuple[str, ...] = ()):
        self.sharenfs, self.children, self.commands = sharenfs, children, []

    def _get(self, fs: str) -> str:
        lines = [f"{fs}\t{self.sharenfs[fs]}\t{'local' if self.sharenfs[fs] != 'off' else 'default'}"]
        for child in self.children:
            if child.startswith(fs + "/"):
                own = self.sharenfs.get(child)
                lines.append(f"{child}\t{own}\tlocal" if own else
                             f"{child}\t{self.sharenfs[fs]}\t" + (f"inherited from {fs}" if self.sharenfs[fs] != "off"
                                                                   else "default"))
        return "\n".join(lines) + "\n"

    def run(self, host, command, check=True, timeout=None):
        self.commands.append((host, command))
        if command[:2] == ["zfs", "get"]:
            return Result(host, " ".join(command), 0, self._get(command[-1]), "")
        if command[:2] == ["zfs", "set"]:
            self.sharenfs[command[-1]] = command[2].removeprefix("sharenfs=")
            return Result(host, " ".join(command), 0, "", "")
        raise AssertionError(command)

    def close(self):
        pass


class FakeDb:
    """dataset_properties' sharenfs rows of one pool: {id: [full_name or None, value, inherited]}."""

    def __init__(self, rows: dict[int, list]):
        self.props = rows

    def rows(self, statement, parameters=None):
        return [{"id": i, "full_name": n, "value": v, "inherited": h} for i, (n, v, h) in sorted(self.props.items())]

    def execute_in_transaction(self, statements):
        for _statement, update in statements:
            self.props[update["id"]][1:] = [update["value"], update["inherited"]]
        return [1] * len(statements)


def fresh_rows(*full_names) -> FakeDb:
    """As 2.0's migration leaves them: '' everywhere, the pool's own row not inherited."""
    return FakeDb({i: [n, "--- ''\n", int(n is not None)] for i, n in enumerate((None, *full_names), start=1)})


def sharenfs_step(pool, nodes, subnets, hypervisor_pools=False, db=None):
    op = SharenfsOperator(task_id="sharenfs", step="nodes.sharenfs", node=pool, sql=SQL,
                          settings={"subnets": subnets, "sharenfs_hypervisor_pools": hypervisor_pools})
    op.__dict__["nodes"] = nodes  # the cached hooks
    op.__dict__["db"] = db or fresh_rows()
    return op


def test_a_pool_gets_exactly_the_subnets_and_keeps_its_other_options():
    nodes, db = FakeNodes({"storage/nas": "rw=@0.0.0.0/0,no_root_squash,no_subtree_check"}), fresh_rows()
    record = sharenfs_step(NAS_POOL, nodes, ["10.0.0.0/24"], db=db).execute({"params": {"dry_run": False}})
    assert record["applied"] is True
    assert nodes.sharenfs["storage/nas"] == "rw=@10.0.0.0/24,no_root_squash,no_subtree_check"
    again = sharenfs_step(NAS_POOL, nodes, ["10.0.0.0/24"], db=db).execute({"params": {"dry_run": False}})
    assert again["changes"] == [] and again["applied"] is False


def test_hypervisor_pools_are_left_alone_unless_asked():
    nodes = FakeNodes({"vz/private": "off"})
    record = sharenfs_step(HYPERVISOR_POOL, nodes, ["10.0.0.0/24"]).execute({"params": {"dry_run": False}})
    assert record["left_alone"] == "hypervisor pool"
    assert [c for _host, c in nodes.commands if c[:2] != ["zfs", "get"]] == []
    sharenfs_step(HYPERVISOR_POOL, nodes, ["10.0.0.0/24"], hypervisor_pools=True).execute(
        {"params": {"dry_run": False}})
    assert nodes.sharenfs["vz/private"] == "rw=@10.0.0.0/24,no_root_squash,no_subtree_check"


def test_without_subnets_plan_mode_lists_the_refusal_and_a_real_run_fails():
    nodes = FakeNodes({"storage/nas": "off"})
    record = sharenfs_step(NAS_POOL, nodes, []).execute({"params": {"dry_run": True}})
    assert record["changes"] == ["storage1:storage/nas: refused: sharenfs_subnets is empty, so there is no "
                                 "network to share with"]
    assert record["refused"] == "sharenfs_subnets is empty"
    with pytest.raises(AirflowFailException, match="refused: sharenfs_subnets is empty"):
        sharenfs_step(NAS_POOL, nodes, []).execute({"params": {"dry_run": False}})
    assert nodes.commands == [] and nodes.sharenfs["storage/nas"] == "off"


def test_the_database_records_what_each_dataset_of_the_pool_has():
    nodes = FakeNodes({"storage/nas": "off", "storage/nas/2/own": "ro=@10.9.0.0/24"},
                      children=("storage/nas/1", "storage/nas/2", "storage/nas/2/own"))
    db = fresh_rows("1", "2", "2/own")
    plan = sharenfs_step(NAS_POOL, nodes, ["10.0.0.0/24"], db=db).execute({"params": {"dry_run": True}})
    assert plan["changes"] == [
        "storage1: zfs set sharenfs=rw=@10.0.0.0/24,no_root_squash,no_subtree_check storage/nas  (was off)",
        "vpsAdmin database: sharenfs of 1 dataset(s) recorded as \"--- 'rw=@10.0.0.0/24,no_root_squash,"
        "no_subtree_check'\": storage/nas",
        "vpsAdmin database: sharenfs of 2 dataset(s) recorded as \"--- 'rw=@10.0.0.0/24,no_root_squash,"
        "no_subtree_check'\" (inherited): storage/nas/1, storage/nas/2",
        "vpsAdmin database: sharenfs of 1 dataset(s) recorded as \"--- 'ro=@10.9.0.0/24'\": storage/nas/2/own"]
    assert all(v == "--- ''\n" for _n, v, _h in db.props.values()), "plan mode changes nothing"

    sharenfs_step(NAS_POOL, nodes, ["10.0.0.0/24"], db=db).execute({"params": {"dry_run": False}})
    shared = "--- 'rw=@10.0.0.0/24,no_root_squash,no_subtree_check'\n"
    assert db.props == {1: [None, shared, 0], 2: ["1", shared, 1], 3: ["2", shared, 1],
                        4: ["2/own", "--- 'ro=@10.9.0.0/24'\n", 0]}
    again = sharenfs_step(NAS_POOL, nodes, ["10.0.0.0/24"], db=db).execute({"params": {"dry_run": False}})
    assert again["changes"] == []


def test_a_pool_left_alone_is_recorded_as_zfs_has_it():
    nodes = FakeNodes({"vz/private": "off"}, children=("vz/private/101",))
    db = fresh_rows("101")
    sharenfs_step(HYPERVISOR_POOL, nodes, ["10.0.0.0/24"], db=db).execute({"params": {"dry_run": False}})
    assert nodes.sharenfs["vz/private"] == "off"
    assert db.props == {1: [None, "--- false\n...\n", 1], 2: ["101", "--- false\n...\n", 1]}
