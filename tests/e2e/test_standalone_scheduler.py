"""A long wait and an approval gate under the real scheduler (`airflow standalone`: scheduler,
dag-processor, triggerer, api-server, LocalExecutor), not dag.test(). Airflow 3.3's scheduler
can fail a reschedule-mode sensor on a stale executor event (apache/airflow#71172): in the demo,
queue waits failed after a few minutes, and a retried approval gate asked a second time.

vpsAdmind is stopped on node1 with a transaction queued for it, and started again WAIT_SECONDS
later: the queue wait defers for those minutes (never fails, never retried), then the gate asks
once and is answered at once through the REST API, and the run succeeds with that one question
(a try the scheduler fails on the answer's heels is retried and takes the answer). The gate is
then cleared (as the scheduler retries a task it failed): it takes the kept answer and asks
nobody."""

from __future__ import annotations

import time
import urllib.parse
from pathlib import Path

import pytest

from lab.core.config import free_port
from lab.demo import DAG_TIMEOUT, START_TIMEOUT, Api, Standalone, dag_visible, wait_for
from tests.helpers import query, scalar, server_id, standalone_home, vpsadmind

pytestmark = [pytest.mark.lab]

DAG_ID = "airlift_scheduler_waits"
DAGS = Path(__file__).resolve().parent / "standalone_dags"
WAIT_SECONDS = 180


def test_a_wait_of_minutes_and_a_gate_under_the_real_scheduler(lab_world, airflow_db, tmp_path):
    lab = lab_world()
    vpsadmind(lab, "node1", "stop")
    query(lab, "INSERT INTO transactions (t_time, t_m_id, t_server, t_vps, t_type, t_success, t_done, t_param) "
               "VALUES (UNIX_TIMESTAMP(), 1, %s, 0, 2008, 0, 0, '{}')", (server_id(lab, "node1"),))
    t_id = scalar(lab, "SELECT MAX(t_id) FROM transactions")

    home = standalone_home(airflow_db, tmp_path)
    standalone, port = Standalone(home), free_port()
    proc = standalone.start(port, lab, {"AIRFLOW__CORE__DAGS_FOLDER": str(DAGS), "AIRFLOW__CORE__PARALLELISM": "4",
                                        "AIRFLOW__AIRLIFT__APPROVERS": "admin"})
    api = Api(port)

    def wait(what, probe, timeout, interval=2):
        return wait_for(what, probe, proc, timeout, interval=interval, standalone=standalone)

    def task(task_id: str) -> dict:
        return api.ok("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{quoted}/taskInstances/{task_id}")

    def run_state() -> str:
        return api.ok("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{quoted}")["state"]

    try:
        wait(f"the API on port {port}", lambda: api.call("GET", "/api/v2/version", timeout=5)[0] == 200,
             START_TIMEOUT)
        wait("the generated admin password", standalone.passwords.exists, 60, interval=1)
        api.login("admin", standalone.admin_password())
        wait(f"DAG {DAG_ID} to be parsed", lambda: dag_visible(api, DAG_ID), DAG_TIMEOUT)
        api.ok("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
        run_id = api.ok("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"logical_date": None, "conf": {}})["dag_run_id"]
        quoted = urllib.parse.quote(run_id, safe="")

        wait("the queue wait to defer", lambda: task("wait_transactions")["state"] == "deferred", 240)
        deferred_at = time.monotonic()
        while time.monotonic() - deferred_at < WAIT_SECONDS:  # minutes of waiting: nothing fails
            sensor = task("wait_transactions")
            assert (sensor["state"], sensor["try_number"], run_state()) == ("deferred", 1, "running"), sensor
            time.sleep(10)
        assert scalar(lab, "SELECT t_done FROM transactions WHERE t_id = %s", (t_id,)) == 0, "still queued"
        vpsadmind(lab, "node1", "start")

        wait("the gate to ask", lambda: task("approve")["state"] == "awaiting_input", 240)
        sensor = task("wait_transactions")
        assert (sensor["state"], sensor["try_number"]) == ("success", 1), sensor
        questions = api.ok("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{quoted}/hitlDetails")["hitl_details"]
        assert len(questions) == 1 and questions[0]["assigned_users"] == [{"id": "admin", "name": "admin"}]
        assert "The queue wait's record:\n\n- nothing to change" in questions[0]["body"]  # the plan, readable
        # Answered at once, as a script would. Airflow 3.3's scheduler may then fail the gate's
        # try: the worker's exit event for the pause arrives after the answer re-queued the task
        # under the same key, and is taken for a task killed externally ("finished with state
        # success, but the task instance's state attribute is queued"; seen here). The retry
        # takes the answer from the earlier try's question (triggers/approval.py).
        api.ok("PATCH", f"/api/v2/dags/{DAG_ID}/dagRuns/{quoted}/taskInstances/approve/-1/hitlDetails",
               {"chosen_options": ["Approve"], "params_input": {}})
        assert wait("the run to end", lambda: run_state() in ("success", "failed") and run_state(), 300) == "success"
        tries = task("approve")["try_number"]
        print(f"\nstandalone: the gate took {tries} tr{'y' if tries == 1 else 'ies'} for one answer")
        questions = api.ok("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{quoted}/hitlDetails")["hitl_details"]
        assert len(questions) == 1 and questions[0]["chosen_options"] == ["Approve"], "asked once"

        # the scheduler retries a gate it failed on a stale event: the retry asks nobody
        api.ok("POST", f"/api/v2/dags/{DAG_ID}/clearTaskInstances",
               {"dag_run_id": run_id, "task_ids": ["approve"], "only_failed": False, "reset_dag_runs": True,
                "dry_run": False})
        wait("the cleared gate to run again", lambda: task("approve")["try_number"] == tries + 1, 120)
        assert wait("the gate's retry to end", lambda: task("approve")["state"] in ("success", "failed",
                                                                                 "awaiting_input")
                    and task("approve")["state"], 240) == "success", "the retry asked again"
        assert wait("the run to end again", lambda: run_state() in ("success", "failed") and run_state(), 120) == \
            "success"
    finally:
        standalone.stop()
    assert not standalone.pid(), "nothing of the standalone session is left"
