"""Step nodes.sharenfs and the preflight's part of it, on fake nodes (no SSH, no database): a
real run without sharenfs_subnets stops in preflight, plan mode lists the refusal, hypervisor
pools are left alone unless asked, other pools get exactly the subnets."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airlift.errors import StepError
from airlift.remote import Result
from operators.vpsadmin_upgrade.nodes import SharenfsOperator
from operators.vpsadmin_upgrade.preflight import PreflightOperator

SERVERS = [{"server_name": "node1", "server_type": "node"}, {"server_name": "storage1", "server_type": "storage"},
           {"server_name": "vpsadmin", "server_type": "mailer"}]
NAS_POOL = {"server_name": "storage1", "address": "10.0.0.21", "filesystem": "storage/nas", "role": 1, "pool_id": 2}
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
    def __init__(self, sharenfs: dict[str, str]):
        self.sharenfs, self.commands = sharenfs, []

    def run(self, host, command, check=True, timeout=None):
        self.commands.append((host, command))
        if command[:2] == ["zfs", "get"]:
            return Result(host, " ".join(command), 0, self.sharenfs[command[-1]] + "\n", "")
        if command[:2] == ["zfs", "set"]:
            self.sharenfs[command[-1]] = command[2].removeprefix("sharenfs=")
            return Result(host, " ".join(command), 0, "", "")
        raise AssertionError(command)

    def close(self):
        pass


def sharenfs_step(pool, nodes, subnets, hypervisor_pools=False):
    op = SharenfsOperator(task_id="sharenfs", step="nodes.sharenfs", node=pool,
                          settings={"subnets": subnets, "sharenfs_hypervisor_pools": hypervisor_pools})
    op.__dict__["nodes"] = nodes  # the cached NodeHook
    return op


def test_a_pool_gets_exactly_the_subnets_and_keeps_its_other_options():
    nodes = FakeNodes({"storage/nas": "rw=@0.0.0.0/0,no_root_squash,no_subtree_check"})
    record = sharenfs_step(NAS_POOL, nodes, ["10.0.0.0/24"]).execute({"params": {"dry_run": False}})
    assert record["applied"] is True
    assert nodes.sharenfs["storage/nas"] == "rw=@10.0.0.0/24,no_root_squash,no_subtree_check"
    again = sharenfs_step(NAS_POOL, nodes, ["10.0.0.0/24"]).execute({"params": {"dry_run": False}})
    assert again["changes"] == [] and again["applied"] is False


def test_hypervisor_pools_are_left_alone_unless_asked():
    nodes = FakeNodes({"vz/private": "off"})
    record = sharenfs_step(HYPERVISOR_POOL, nodes, ["10.0.0.0/24"]).execute({"params": {"dry_run": False}})
    assert record["changes"] == [] and record["left_alone"] == "hypervisor pool"
    assert nodes.commands == []
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
