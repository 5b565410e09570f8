"""DAG openvz_to_vpsadminos on one lab (tests in order on it): plan mode changes nothing; the
run moves every supported container onto os1 (running if it ran, its writes during the sync
included, every file equal) and leaves the refused ones running untouched and the sources
stopped and kept; a second run changes nothing."""

from __future__ import annotations

import ipaddress
import json
import re

import pytest

from tests.e2e.openvz_to_vpsadminos import (
    DAG_ID,
    MOVABLE,
    REFUSED,
    RUNNING,
    changed,
    conf,
    fingerprint,
    openvz_world,
    os_state,
    sh,
    vz_status,
)
from tests.helpers import run_dag

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("airflow_db")]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with openvz_world(tmp_path_factory) as lab:
        yield lab


def counter(lab, node: str, root: str) -> int:
    text = sh(lab, node, f"cat {root}/var/lib/lab-ct/counter 2>/dev/null || echo 0").strip()
    return int(text.split()[0]) if text else 0


ROOTS = {101: "/vz/private/101", 102: "/vz/private/102/root.hdd/fs", 104: "/vz/private/104/private"}


@pytest.mark.parametrize("change, message", [
    ({"source_node": "127.0.1.31; rm -rf /"}, "source_node '127.0.1.31; rm -rf /' is not a host name"),
    ({"containers": ["101; reboot"]}, "'101; reboot' is not a container id"),
    ({"containers": [999]}, "container 999 is not on 127.0.1.31"),
    ({"destination_node": "nosuch.invalid"}, "destination_node nosuch.invalid: no such host"),
    ({"window_start": "25:61", "window_end": "05:00"}, "'25:61' is not a time of day"),
    ({"destination_node": "127.0.1.42"}, "pool tank on 127.0.1.42 has"),
])
def test_bad_input_fails_in_the_first_task(world, change, message):
    from airflow.sdk.exceptions import AirflowFailException

    from operators.openvz.nodes import DiscoverOperator
    from tests.helpers import detached_step, step_context

    sh(world, "os2", "zfs set quota=1M tank")  # too small for any container
    try:
        discover = detached_step(DiscoverOperator, product="openvz", task_id="discover", step="ct.discover")
        with pytest.raises(AirflowFailException, match=re.escape(message)):
            discover.execute(step_context(**{**conf(), **change}))
    finally:
        sh(world, "os2", "zfs set quota=none tank")


def test_a_run_with_bad_input_changes_nothing(world):
    before = fingerprint(world)
    state, tasks, _ = run_dag(DAG_ID, conf(containers=["101 && reboot"]))
    assert state == "failed" and tasks["discover"] == "failed"
    assert {s for t, s in tasks.items() if t not in ("discover", "run_report")} <= {"upstream_failed", "skipped", None}
    assert changed(before, fingerprint(world)) == []


def test_plan_mode_changes_nothing(world):
    before = fingerprint(world)
    state, tasks, answered = run_dag(DAG_ID, conf(dry_run=True))
    assert state == "success", {t: s for t, s in tasks.items() if s != "success"}
    assert answered == [], "plan mode asks nobody"
    assert changed(before, fingerprint(world)) == []
    assert {tasks[f"prepare.preflight[CT {c}]"] for c in REFUSED} == {"skipped"}


def test_the_run_moves_every_supported_container(world):
    refused_confs = {c: sh(world, "vz1", f"sha256sum /etc/vz/conf/{c}.conf") for c in REFUSED}
    written_before = {c: counter(world, "vz1", ROOTS[c]) for c in ROOTS}
    state, tasks, answered = run_dag(DAG_ID, conf(), answers={"review": "Approve"})
    assert state == "success", {t: s for t, s in tasks.items() if s not in ("success", "skipped")}
    assert answered == [("review", "Approve")]
    for ctid in MOVABLE:
        assert tasks[f"move.verify[CT {ctid}]"] == "success"
        there = os_state(world, ctid)
        assert there["state"] == ("running" if ctid in RUNNING else "stopped"), ctid
        assert there["user"] == f"ct{ctid}"
        assert vz_status(world, ctid).endswith("exist unmounted down"), "the source is kept, stopped"
        assert sh(world, "vz1", f"cat /var/lib/airlift/openvz/migrated/{ctid}").startswith("127.0.1.41 ")
    for ctid, root in ROOTS.items():  # it kept writing while the first sync ran: those writes moved too
        moved = counter(world, "os1", f"/tank/ct/{ctid}/private" if ctid != 104 else "/tank/ct/104/private")
        assert moved == counter(world, "vz1", root) > written_before[ctid], ctid
    for ctid in REFUSED:
        assert vz_status(world, ctid).endswith("exist mounted running")
        assert sh(world, "vz1", f"sha256sum /etc/vz/conf/{ctid}.conf") == refused_confs[ctid]
        assert os_state(world, ctid) is None
    vias = [netif["via"]["4"] for netif in json.loads(sh(world, "os1", "osctl -j ct netif ls"))]
    assert len(set(vias)) == len(vias) == len(MOVABLE), "a /30 of its own per container"
    assert all(ipaddress.ip_network(v).subnet_of(ipaddress.ip_network("10.100.0.0/16")) for v in vias)
    snapshots = sh(world, "os1", "zfs list -H -t snapshot -o name").split()
    assert snapshots and all("@backup-" in s for s in snapshots), "older snapshots came along, none of the move's"
    assert [s for s in sh(world, "vz1", "zfs list -H -t snapshot -o name").split() if "@backup-" not in s] == []
    assert sh(world, "vz1", "ls /root/.vpsadminos-converter").split() == []
    assert sh(world, "os1", "zfs get -Hp -o value refquota tank/ct/101").strip() != "0", "DISKSPACE became a refquota"


def test_a_second_run_changes_nothing(world):
    before = fingerprint(world)
    state, tasks, answered = run_dag(DAG_ID, conf(), answers={"review": "Approve"})
    assert state == "success", {t: s for t, s in tasks.items() if s not in ("success", "skipped")}
    assert {tasks[f"prepare.preflight[CT {c}]"] for c in MOVABLE} == {"skipped"}
    assert changed(before, fingerprint(world)) == []
