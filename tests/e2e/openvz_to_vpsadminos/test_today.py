"""openvz_to_vpsadminos against today's converter and osctld (the lab's "2024" profile: the
receive protocol with tokens, named receive keys, routed veth via osrtr0, the converter's
group `default` refused, no --route-via), on one lab (tests in order on it): plan mode changes
nothing; a refused handover is undone; the live path, with its rsync cut once, which the DAG stages itself there (no converter can), moves a running
simfs, ploop and ZFS container, every file equal; the offline path moves a stopped ploop and
ZFS container with today's tools; a second run of each changes nothing."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import pytest

from tests.e2e.openvz_to_vpsadminos import (
    DAG_ID,
    assert_moved_offline,
    assert_second_run_changes_nothing,
    changed,
    conf,
    fingerprint,
    openvz_world,
    os_state,
    sh,
    vz_status,
)
from tests.helpers import node_shim, run_dag, task_result

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("airflow_db")]

LIVE = (101, 102, 104)  # simfs, ploop, ZFS with a subdataset: all running
OFFLINE = (103, 105)  # ploop and ZFS, stopped


def quick_retries(dag) -> None:
    for task in dag.tasks:
        task.retry_delay, task.retry_exponential_backoff = timedelta(seconds=1), False


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with openvz_world(tmp_path_factory, containers=[*LIVE, *OFFLINE], profile="2024") as lab:
        yield lab


def test_plan_mode_changes_nothing(world):
    before = fingerprint(world)
    state, tasks, answered = run_dag(DAG_ID, conf(dry_run=True, containers=list(LIVE)))
    assert state == "success", {t: s for t, s in tasks.items() if s != "success"}
    assert answered == []
    assert changed(before, fingerprint(world)) == []
    plan = "\n".join(task_result(DAG_ID, "prepare.stage", map_index=0)["changes"])
    assert "receive skel tank < the skel of container 101" in plan and "group /default" in plan, plan


def test_a_refused_handover_is_undone(world):
    """The destination refuses `receive transfer`: the undo deletes the staged container there
    (no converter state to cancel with), removes the DAG's records, and the container runs on
    OpenVZ again."""
    refuse = 'case "$SSH_ORIGINAL_COMMAND" in *transfer*) echo "Error: refused by the test" >&2; exit 1;; esac'
    node_shim(world, "os1", "osctl-ct-receive", refuse)

    try:
        state, tasks, _ = run_dag(DAG_ID, conf(containers=[101]), answers={"review": "Approve"}, adjust=quick_retries)
    finally:
        sbin = world.node_root("os1") / "usr/local/sbin"
        (sbin / "osctl-ct-receive").unlink()
        (sbin / ".shimmed/osctl-ct-receive").rename(sbin / "osctl-ct-receive")
    assert state == "failed" and tasks["move.transfer[CT 101]"] == "failed"
    assert tasks["move.undo[CT 101]"] == "success"
    assert vz_status(world, 101).endswith("exist mounted running") and os_state(world, 101) is None
    assert sh(world, "vz1", "ls -A /var/lib/airlift/openvz/staged").split() == []


def test_the_live_path_moves_them_staged_by_the_dag(world):
    """With the SSH connections to os1 cut once while the first rsync into it runs (its
    receiving side, shimmed, waits a moment first): the cut rsync is retried and the run ends
    with every file equal."""
    calls = node_shim(world, "os1", "rsync", "sleep 3")
    cuts = []

    def cut_at_the_first_rsync():
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and not cuts:
            if calls.exists() and calls.read_text().strip():
                time.sleep(1)
                cuts.append(world.cut_ssh("os1"))
            time.sleep(0.2)

    cutter = threading.Thread(target=cut_at_the_first_rsync, daemon=True)
    cutter.start()
    try:
        state, tasks, answered = run_dag(DAG_ID, conf(containers=list(LIVE)), answers={"review": "Approve"},
                                         adjust=quick_retries)
    finally:
        cuts.append(0)  # stops the cutter if no rsync ran
        cutter.join()
        (world.node_root("os1") / "usr/local/bin/rsync").unlink()
    assert cuts[0] >= 1, "the connections were cut while an rsync ran"
    assert len(calls.read_text().split()) > 4, "a cut rsync ran again (two syncs and two transfers otherwise)"
    assert state == "success", {t: s for t, s in tasks.items() if s not in ("success", "skipped")}
    assert answered == [("review", "Approve")]
    for i, ctid in enumerate(LIVE):
        assert tasks[f"move.verify[CT {ctid}]"] == "success", ctid
        there = os_state(world, ctid)
        assert (there["state"], there["user"], there["group"]) == ("running", f"ct{ctid}", "/default"), ctid
        assert "send_log" not in json.loads(sh(world, "os1", f"cat /tank/conf/ct/{ctid}.yml")), "handed over"
        assert vz_status(world, ctid).endswith("exist unmounted down"), "the source is kept, stopped"
        netif = json.loads(sh(world, "os1", f"osctl -j ct netif ls {ctid}"))[0]
        assert (netif["type"], netif["via"]) == ("routed", {}), "routed via osrtr0, no interconnect network"
        assert task_result(DAG_ID, "move.verify", map_index=i)["verified"] is True
    for i in (0, 1):  # simfs and ploop: the rsync transfer, into the root it mounted first
        assert task_result(DAG_ID, "move.transfer", map_index=i)["downtime_seconds"] > 0
        assert sh(world, "os1", f"zfs get -H -o value mounted tank/ct/{LIVE[i]}").strip() == "yes"
    assert task_result(DAG_ID, "move.transfer_zfs", map_index=2)["downtime_seconds"] > 0
    assert sh(world, "os1", "zfs list -H -o name -r tank/ct/104").split() == ["tank/ct/104", "tank/ct/104/data"]
    keys = json.loads(sh(world, "os1", "osctl -j receive authorized-keys ls"))
    assert [k["name"] for k in keys] == ["airlift-127.0.1.31"], "today's keys have names"
    assert sh(world, "vz1", "ls -A /var/lib/airlift/openvz/staged").split() == [], "the stage records are gone"


def test_a_second_live_run_changes_nothing(world):
    assert_second_run_changes_nothing(world, conf(containers=list(LIVE)), LIVE)


def test_the_offline_run_moves_them_with_todays_tools(world):
    offline = conf(path="offline", containers=list(OFFLINE))
    assert_moved_offline(world, offline, dict.fromkeys(OFFLINE, False))
    assert_second_run_changes_nothing(world, offline, OFFLINE)
