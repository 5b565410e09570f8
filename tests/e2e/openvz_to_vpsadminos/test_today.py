"""openvz_to_vpsadminos against today's converter and osctld (the lab's "2024" profile: the
receive protocol with tokens, named receive keys, routed veth via osrtr0, the converter's
group `default` refused, no --route-via), on one lab: the live path, which no converter can
stage there, is refused before anything changes; the offline path moves a stopped simfs and a
running ZFS container with today's tools; a second run changes nothing."""

from __future__ import annotations

import json

import pytest

from tests.e2e.openvz_to_vpsadminos import (
    DAG_ID,
    assert_moved_offline,
    assert_second_run_changes_nothing,
    changed,
    conf,
    fingerprint,
    openvz_world,
    sh,
)
from tests.helpers import run_dag, task_result

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("airflow_db")]

SIMFS, ZFS = 101, 104  # simfs stopped by the test first; ZFS running, with a subdataset


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with openvz_world(tmp_path_factory, containers=[SIMFS, ZFS], profile="2024") as lab:
        sh(lab, "vz1", f"vzctl stop {SIMFS}")
        yield lab


def offline(**changes) -> dict:
    return conf(**{"path": "offline", "containers": [SIMFS, ZFS], **changes})


def test_the_live_path_is_refused_before_anything_changes(world):
    before = fingerprint(world)
    state, tasks, _ = run_dag(DAG_ID, conf(containers=[SIMFS, ZFS]), answers={"review": "Approve"})
    assert state == "failed" and tasks["discover"] == "failed"
    assert {t for t, s in tasks.items() if s == "success"} == set(), "nothing ran after discover"
    assert changed(before, fingerprint(world)) == []


def test_the_offline_run_moves_both_with_todays_tools(world):
    assert_moved_offline(world, offline(), {SIMFS: False, ZFS: True})
    for ctid in (SIMFS, ZFS):
        netif = json.loads(sh(world, "os1", f"osctl -j ct netif ls {ctid}"))[0]
        assert (netif["type"], netif["via"]) == ("routed", {}), "routed via osrtr0, no interconnect network"
    assert task_result(DAG_ID, "prepare.network", map_index=0)["via"] == {}
    assert sh(world, "os1", f"zfs list -H -o name -r tank/ct/{ZFS}").split() == [f"tank/ct/{ZFS}", f"tank/ct/{ZFS}/data"]
    keys = json.loads(sh(world, "os1", "osctl -j receive authorized-keys ls"))
    assert [k["name"] for k in keys] == ["airlift-127.0.1.31"], "today's keys have names"
    assert task_result(DAG_ID, "move.import", map_index=1)["downtime_seconds"] > 0


def test_a_second_run_changes_nothing(world):
    assert_second_run_changes_nothing(world, offline(), (SIMFS, ZFS))
