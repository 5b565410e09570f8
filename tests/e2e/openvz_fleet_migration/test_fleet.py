"""openvz_fleet_migration under the real scheduler (`airflow standalone`: the node runs are
real DAG runs of openvz_to_vpsadminos, waited for deferred), on one lab with two OpenVZ nodes,
in each era of the converter and osctld (the lab's profiles "2019", the runbook's, and "2024",
today's): a node whose run fails stops the fleet and the node after it is not touched; then
both nodes move, one after the other, each container verified where it went, and the report
names them."""

from __future__ import annotations

import json
import time
import urllib.parse

import pytest

from lab.core.config import free_port
from lab.core.nodes import run_in_node
from lab.core.topology import host
from lab.demo import Api, Standalone, open_api, wait_for
from tests.e2e.openvz_to_vpsadminos import openvz_world, sh, vz_status
from tests.helpers import standalone_home

pytestmark = [pytest.mark.lab]

FLEET, NODE_DAG = "openvz_fleet_migration", "openvz_to_vpsadminos"
VZ1, VZ2, OS1, OS2 = (host(n).address for n in ("vz1", "vz2", "os1", "os2"))
ON_VZ1, ON_VZ2 = 101, 202  # a running simfs container, a running ZFS container


@pytest.fixture(scope="module", params=["2019", "2024"])
def world(request, tmp_path_factory):
    with openvz_world(tmp_path_factory, containers=[ON_VZ1, ON_VZ2], profile=request.param) as lab:
        lab.profile = request.param
        yield lab


def os_state(lab, node: str, ctid: int) -> dict | None:
    result = run_in_node(lab.node_root(node), f"osctl -j ct show {ctid}")
    return json.loads(result.stdout) if result.returncode == 0 else None


def q(run_id: str) -> str:
    return urllib.parse.quote(run_id, safe="")


def run_fleet(api: Api, wait, nodes: list[dict]) -> tuple[str, str]:
    """Trigger the fleet, approve each node run's review as it asks, wait for the end."""
    run_id = api.ok("POST", f"/api/v2/dags/{FLEET}/dagRuns",
                    {"logical_date": None, "conf": {"dry_run": False, "nodes": nodes}})["dag_run_id"]

    def ended():
        for run in api.ok("GET", f"/api/v2/dags/{NODE_DAG}/dagRuns?state=running&limit=100")["dag_runs"]:
            review = f"/api/v2/dags/{NODE_DAG}/dagRuns/{q(run['dag_run_id'])}/taskInstances/review"
            # answered once it waits: an answer before the task pauses is lost (Airflow 3.3)
            task = api.call("GET", review)[1]
            if isinstance(task, dict) and task.get("state") == "awaiting_input":
                api.ok("PATCH", f"{review}/-1/hitlDetails", {"chosen_options": ["Approve"], "params_input": {}})
        state = api.ok("GET", f"/api/v2/dags/{FLEET}/dagRuns/{q(run_id)}")["state"]
        return state if state in ("success", "failed") else None

    return run_id, wait(f"fleet run {run_id}", ended, 1500, interval=5)


def node_runs(api: Api, fleet_run: str) -> list[dict]:
    runs = api.ok("GET", f"/api/v2/dags/{NODE_DAG}/dagRuns?limit=100")["dag_runs"]
    return sorted((r for r in runs if r["dag_run_id"].startswith(f"fleet__{fleet_run}__")),
                  key=lambda r: r["start_date"] or "")


def test_the_fleet_stops_at_a_failed_node_then_moves_both_nodes_in_turn(world, airflow_db, tmp_path):
    home = standalone_home(airflow_db, tmp_path)
    standalone, port = Standalone(home), free_port()
    proc = standalone.start(port, world, {"AIRFLOW__CORE__PARALLELISM": "4", "AIRFLOW__AIRLIFT__APPROVERS": "admin"})

    def wait(what, probe, timeout, interval=2):
        return wait_for(what, probe, proc, timeout, interval=interval, standalone=standalone)

    try:
        api = open_api(standalone, proc, port, [FLEET, NODE_DAG])

        # vz2 first, onto a vpsAdminOS node without room: its run fails; vz1 is not started
        sh(world, "os2", "zfs set quota=1M tank")
        failed_run, state = run_fleet(api, wait, [{"source": VZ2, "destination": OS2},
                                                  {"source": VZ1, "destination": OS1, "containers": [ON_VZ1]}])
        sh(world, "os2", "zfs set quota=none tank")
        assert state == "failed"
        runs = node_runs(api, failed_run)
        assert [(r["dag_run_id"].rsplit("__", 1)[1], r["state"]) for r in runs] == [(VZ2, "failed")]
        assert vz_status(world, ON_VZ1).endswith("exist mounted running") and os_state(world, "os1", ON_VZ1) is None
        assert os_state(world, "os2", ON_VZ2) is None

        moved_run, state = run_fleet(api, wait, [{"source": VZ1, "destination": OS1, "containers": [ON_VZ1]},
                                                 {"source": VZ2, "destination": OS2}])
        assert state == "success"
        first, second = node_runs(api, moved_run)
        assert first["dag_run_id"].endswith(VZ1) and second["dag_run_id"].endswith(VZ2)
        assert first["end_date"] <= second["start_date"], "one node after the other"
        for source, node, ctid, run in (("vz1", "os1", ON_VZ1, first), ("vz2", "os2", ON_VZ2, second)):
            there = os_state(world, node, ctid)
            assert (there["state"], there["user"], there["group"]) == ("running", f"ct{ctid}", "/default"), (node, ctid)
            assert sh(world, source, f"vzctl status {ctid}").strip().endswith("exist unmounted down"), \
                "the source is kept, stopped"
            verify = api.ok("GET", f"/api/v2/dags/{NODE_DAG}/dagRuns/{q(run['dag_run_id'])}/taskInstances/move.verify/0")
            assert verify["state"] == "success", (node, ctid)
            netif = json.loads(sh(world, node, f"osctl -j ct netif ls {ctid}"))[0]
            assert bool(netif["via"]) == (world.profile == "2019"), "an interconnect network only in the runbook's era"
        report = api.ok("GET", f"/api/v2/dags/{FLEET}/dagRuns/{q(moved_run)}/taskInstances/migrate_nodes/"
                               "xcomEntries/return_value")["value"]
        report = json.loads(report) if isinstance(report, str) else report
        assert [(n["source"], n["state"], [m["ctid"] for m in n["moved"]]) for n in report] == [
            (VZ1, "success", [ON_VZ1]), (VZ2, "success", [ON_VZ2])]
        assert all(m["downtime_seconds"] > 0 for n in report for m in n["moved"])
        # each destination's transfers went through its own pool, made by the cluster policy
        for node in (OS1, OS2):
            pool = api.ok("GET", f"/api/v2/pools/{q('openvz-transfers:' + node)}")
            assert (pool["slots"], pool["include_deferred"]) == (1, True), pool
        transfer = api.ok("GET", f"/api/v2/dags/{NODE_DAG}/dagRuns/{q(second['dag_run_id'])}/taskInstances/"
                                 "move.transfer_zfs/0")
        assert (transfer["state"], transfer["pool"]) == ("success", f"openvz-transfers:{OS2}")
    finally:
        standalone.stop()
        time.sleep(1)
    assert not standalone.pid(), "nothing of the standalone session is left"
