"""openvz_to_vpsadminos under the real scheduler (`airflow standalone`, LocalExecutor): the
worker running a container's transfer is SIGKILLed (its executor process and the task
process) while the transfer job runs on the OpenVZ node. The scheduler fails the silent task
after the heartbeat timeout and retries it; the retry finds the job still running and waits
for it: the transfer runs once, never two at a time, and the run ends green."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from lab.core.config import free_port
from lab.core.nodes import bwrap_argv
from lab.core.topology import host
from lab.demo import Standalone, open_api, wait_for
from tests.e2e.openvz_fleet_migration.test_fleet import os_state, q
from tests.e2e.openvz_to_vpsadminos import openvz_world
from tests.helpers import standalone_home

pytestmark = [pytest.mark.lab]

DAG_ID, CTID = "openvz_to_vpsadminos", 104
TASK = "move.transfer_zfs"
JOB = f"var/lib/airlift/jobs/{DAG_ID}.move_transfer_zfs.{CTID}"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with openvz_world(tmp_path_factory, containers=[CTID]) as lab:
        yield lab


def processes_with(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def test_a_killed_worker_leaves_one_transfer_and_the_run_ends_green(world, airflow_db, tmp_path):
    home = standalone_home(airflow_db, tmp_path)
    standalone, port = Standalone(home), free_port()
    proc = standalone.start(port, world, {"AIRFLOW__CORE__PARALLELISM": "4", "AIRFLOW__AIRLIFT__APPROVERS": "admin",
                                          "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
                                          "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5"})
    # The container's vzctl lock is held, so the transfer job waits on the node in `vzctl stop`
    # (not in the worker) until the test lets it go: the worker is killed while the job is
    # under way.
    vz1 = world.node_root("vz1")
    hold = subprocess.Popen(bwrap_argv(vz1, ["flock", f"/var/lib/lab/vz/{CTID}.lock", "sleep", "900"]),
                            start_new_session=True)

    def wait(what, probe, timeout, interval=2):
        return wait_for(what, probe, proc, timeout, interval=interval, standalone=standalone)

    try:
        api = open_api(standalone, proc, port, [DAG_ID])
        run_id = api.ok("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"logical_date": None, "conf": {
            "dry_run": False, "source_node": host("vz1").address, "destination_node": host("os1").address,
            "containers": [CTID]}})["dag_run_id"]
        base = f"/api/v2/dags/{DAG_ID}/dagRuns/{q(run_id)}"

        def task(task_id: str, map_index: int = -1) -> dict:
            return api.ok("GET", f"{base}/taskInstances/{task_id}" + (f"/{map_index}" if map_index >= 0 else ""))

        wait("the review", lambda: task("review")["state"] == "awaiting_input", 600)
        api.ok("PATCH", f"{base}/taskInstances/review/-1/hitlDetails", {"chosen_options": ["Approve"], "params_input": {}})
        wait("the transfer job on vz1", lambda: (vz1 / JOB / "pgid").exists() and task(TASK, 0)["state"] == "running",
             600, interval=0.5)
        ti_id = task(TASK, 0)["id"]
        workers = processes_with(f"airflow worker -- {ti_id}")
        assert workers, "the task's process"
        for pid in workers:
            parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            for victim in (pid, parent):  # the task process and the executor's worker process running it
                os.kill(victim, signal.SIGKILL)
        time.sleep(2)
        os.killpg(hold.pid, signal.SIGKILL)  # the lock is free: the job goes on

        state = wait("the run to end", lambda: api.ok("GET", base)["state"] in ("success", "failed")
                     and api.ok("GET", base)["state"], 900, interval=5)
        transfer = task(TASK, 0)
        assert state == "success", {t["task_id"]: t["state"] for t in api.ok("GET", f"{base}/taskInstances")[
            "task_instances"] if t["state"] != "success"}
        assert transfer["try_number"] >= 2, "the killed try was retried"
        assert len((vz1 / JOB / "starts").read_text().splitlines()) == 1, "the transfer ran once"
        there = os_state(world, "os1", CTID)
        assert there["state"] == "running" and there["user"] == f"ct{CTID}"
    finally:
        if hold.poll() is None:
            os.killpg(hold.pid, signal.SIGKILL)
        standalone.stop()
    assert not standalone.pid(), "nothing of the standalone session is left"
