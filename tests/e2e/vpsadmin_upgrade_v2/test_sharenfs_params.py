"""sharenfs_subnets on a fresh lab world: a real run without them, or with a network as broad
as the whole internet, fails in preflight.check_params before anything changes; plan mode goes
on and says what a real run would refuse. (test_whole_upgrade.py checks what the pools get.)"""

from __future__ import annotations

import pytest

from tests.e2e.vpsadmin_upgrade_v2 import DAG_ID, real_run_conf
from tests.helpers import diff_states, run_dag, world_state

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("airflow_db")]


@pytest.mark.parametrize("subnets, message", [
    ([], "sharenfs_subnets is empty: name the IPv4 networks (a.b.c.d/n) of the nodes that mount the pools of "
         "backup1.brq.vpsfree.cz, storage1.prg.vpsfree.cz over NFS"),
    (["127.0.1.0/28", "0.0.0.0/0"], "sharenfs_subnets: 0.0.0.0/0 is broader than /16"),
])
def test_missing_or_broad_subnets_fail_first_and_change_nothing(lab_world, capfd, subnets, message):
    lab = lab_world()
    before = world_state(lab)
    state, tis, _ = run_dag(DAG_ID, real_run_conf(sharenfs_subnets=subnets))
    assert state == "failed"
    assert tis["preflight.check_params"] == "failed"
    # nothing else ran (the restore gates, which run after anything, skip themselves; the run
    # report, after everything, says what failed and fails too)
    assert {t: s for t, s in tis.items() if t not in ("preflight.check_params", "run_report")
            and s not in ("upstream_failed", "skipped", None)} == {}
    assert message in capfd.readouterr().out
    assert diff_states(before, world_state(lab)) == []


def test_plan_mode_without_subnets_says_a_real_run_refuses(lab_world, capfd):
    lab = lab_world()
    before = world_state(lab)
    state, tis, _ = run_dag(DAG_ID, {"dry_run": True})
    assert state == "success", tis
    out = capfd.readouterr().out
    assert "sharenfs_subnets is empty" in out and "(a real run stops here)" in out
    assert "'subnets': []" in out, "no network invented"
    assert diff_states(before, world_state(lab)) == []
