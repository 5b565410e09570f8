"""vpsadmin_upgrade_v2 through the production shape, driven only through the REST API, then the
operator's journey in a real browser. One deployment for the module: it is started, stopped
(nothing left) and started again first.

During the real run the Celery worker running the full backup is SIGKILLed while the dump runs
on the DB node, and the scheduler is restarted once. The scheduler fails the silent task after
the heartbeat timeout, the other worker retries it, and the retry waits for the same dump: it
ran once, one dump file. The gates are answered by the approver they are assigned to (the admin
may not), and the world is the v2.0 world of the dag.test() e2e. No password of the lab or of
the deployment is in any log the deployment wrote."""

from __future__ import annotations

import os
import signal
import time
import urllib.parse
from pathlib import Path

import pytest

from lab.core.config import PROJECT_ROOT, free_port
from lab.core.processes import session_members
from lab.core.topology import host
from lab.demo import Api, dag_visible
from lab.deploy import Deployment
from tests.e2e.deployment.browser import Browser
from tests.e2e.vpsadmin_upgrade_v2 import DAG_ID, GATE, MOVE_GATE, real_run_conf
from tests.e2e.vpsadmin_upgrade_v2.v2_world import assert_v2_world, live_changes_left_out, world_before
from tests.helpers import diff_states, lab_secrets, node_shim, started_lab, wait_for_empty_queue, world_state

pytestmark = [pytest.mark.lab]

BACKUP_TASK = "preflight.db_backup"
SCHEDULED = ("vpsadmin_lifetimes", "vpsadmin_daily_report")
# Written by the browser journey, one per step; the README shows two of them (docs/).
SCREENSHOTS = PROJECT_ROOT / ".airflow" / "screenshots" / "browser_journey"
HEARTBEAT_TIMEOUT = 30  # seconds of a task's silence before the scheduler fails it (default 300)
RUN_TIMEOUT = 1200


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with started_lab(tmp_path_factory.mktemp("lab"), reset_timezones=True) as lab:
        yield lab


@pytest.fixture(scope="module")
def deployment(lab, tmp_path_factory):
    # The scheduler starts no scheduled runs here: the upgrade unpauses vpsadmin_lifetimes and
    # vpsadmin_daily_report, and their first runs (at once, catchup off) would change the world
    # while it is checked. The DAG files do not change during the test: the dag-processor parses
    # them once rather than every 30 s (CPU the other xdist worker's tests need).
    deployment = Deployment(tmp_path_factory.mktemp("production"), port=free_port(), redis_db=13,
                            settings={"AIRLIFT_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT)},
                            extra_env={"AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
                                       "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "3600"})
    try:
        deployment.up(lab)
        assert set(deployment.processes()) == set(deployment.service_names())
        assert oct(deployment.secrets_file.stat().st_mode & 0o777) == "0o600"
        deployment.down()
        assert deployment.processes() == {} and deployment.leftovers() == [], "stopped clean"
        deployment.up(lab)  # again, on the state the first start left
        yield deployment
    finally:
        deployment.destroy()
    assert deployment.leftovers() == [], "nothing of the deployment is left running"


def quoted(run_id: str) -> str:
    return urllib.parse.quote(run_id, safe="")


def stop_run(admin: Api, run_id: str) -> None:
    """Mark a run failed. The scheduler may be scheduling its tasks at that moment: PostgreSQL
    then ends one of the two transactions as a deadlock (its log: "deadlock detected" between
    the API's UPDATE dag_run and the scheduler's UPDATE task_instance; 1 stop in 12 right after
    a trigger), which the API answers with a 500 "Database error"; the change is made again."""
    for _ in range(5):
        status, reply = admin.call("PATCH", f"/api/v2/dags/{DAG_ID}/dagRuns/{quoted(run_id)}", {"state": "failed"})
        if status != 500:
            break
        time.sleep(2)
    assert status < 300, (status, reply)
    wait("the stopped run to fail", lambda: run_state(admin, run_id) == "failed", 60)


def wait(what: str, probe, timeout: float, interval: float = 3):
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f}s waiting for {what}"
        time.sleep(interval)


def trigger(api: Api, conf: dict) -> str:
    return api.ok("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"logical_date": None, "conf": conf})["dag_run_id"]


def run_state(api: Api, run_id: str) -> str:
    return api.ok("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{quoted(run_id)}")["state"]


def task(api: Api, run_id: str, task_id: str) -> dict:
    return api.ok("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{quoted(run_id)}/taskInstances/{task_id}")


def worker_running(deployment: Deployment, pid: int) -> str:
    """The Celery worker whose process tree holds `pid`."""
    for name, leader in deployment.processes().items():
        if name.startswith("airflow-worker") and pid in session_members(leader):
            return name
    raise AssertionError(f"no worker runs pid {pid}")


def answer_gates(approver: Api, admin: Api, run_id: str, answered: list[str]) -> None:
    """Answer every open question of the run as the approver; the admin, not assigned, may not."""
    details = approver.ok("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{quoted(run_id)}/hitlDetails")["hitl_details"]
    for detail in details:
        ti = detail["task_instance"]
        if detail["response_received"] or ti["state"] != "awaiting_input":
            continue
        path = (f"/api/v2/dags/{DAG_ID}/dagRuns/{quoted(run_id)}/taskInstances/{ti['task_id']}/"
                f"{ti['map_index']}/hitlDetails")
        assert [u["name"] for u in detail["assigned_users"]] == ["approver"]
        assert admin.call("PATCH", path, {"chosen_options": ["Approve"], "params_input": {}})[0] == 403
        approver.ok("PATCH", path, {"chosen_options": ["Approve"], "params_input": {}})
        answered.append(ti["task_id"])


def test_the_upgrade_through_the_rest_api(lab, deployment):
    from airlift.remote import job_key

    admin, approver = deployment.api("admin"), deployment.api("approver")
    wait(f"{DAG_ID} to be parsed", lambda: dag_visible(admin, DAG_ID), 300)
    admin.ok("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})

    # plan mode: nothing changes
    before = world_state(lab)
    run_id = trigger(approver, {"dry_run": True})
    assert wait("the plan run", lambda: run_state(admin, run_id) in ("success", "failed") and
                run_state(admin, run_id), RUN_TIMEOUT) == "success"
    assert live_changes_left_out(diff_states(before, world_state(lab))) == []

    # the real run: the full backup's dump lasts, its worker is killed under it
    v122 = world_before(lab)
    node_shim(lab, "db", "mysqldump", 'case " $* " in *" --lock-all-tables "*) '
              '[ -e /root/slow-dump ] && rm -f /root/slow-dump && sleep 40;; esac')
    (lab.node_root("db") / "root/slow-dump").touch()
    job = lab.node_root("db") / "var/lib/airlift/jobs" / job_key(DAG_ID, BACKUP_TASK, -1)
    run_id = trigger(approver, real_run_conf(members_expiration=True))
    wait("the dump job to start on the DB node", lambda: (job / "pgid").exists() and (job / "pgid").read_text(),
         300, interval=0.5)
    backup = task(admin, run_id, BACKUP_TASK)
    assert backup["state"] == "running" and backup["pid"], backup
    victim = worker_running(deployment, backup["pid"])
    for pid in session_members(deployment.processes()[victim]):
        os.kill(pid, signal.SIGKILL)
    deployment.restart("airflow-scheduler", lab)

    answered: list[str] = []

    def ended():
        answer_gates(approver, admin, run_id, answered)
        state = run_state(admin, run_id)
        return state in ("success", "failed") and state

    assert wait("the real run", ended, RUN_TIMEOUT, interval=5) == "success"
    assert answered == [GATE, MOVE_GATE]
    backup = task(admin, run_id, BACKUP_TASK)
    assert backup["try_number"] >= 2, "the killed try was retried"
    assert len((job / "starts").read_text().splitlines()) == 1, "the dump ran once"
    record = admin.ok("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{quoted(run_id)}/taskInstances/{BACKUP_TASK}/"
                             "xcomEntries/return_value")["value"]
    dumps = [p.name for p in (lab.node_root("db") / "var/backups/vpsadmin").iterdir()
             if "before-v2-upgrade" in p.name]
    assert dumps == [Path(record["path"]).name], "one dump file, the one the record names"

    check = admin.ok("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{quoted(run_id)}/taskInstances/"
                            "finalize.integrity_check/xcomEntries/return_value")["value"]
    # the run unpaused the scheduled DAGs through the API, as the airlift-tasks user
    assert [admin.ok("GET", f"/api/v2/dags/{d}")["is_paused"] for d in SCHEDULED] == [False, False]
    assert_v2_world(lab, v122, check)

    # no password of the lab or of the deployment in any log it wrote
    secrets = {**lab_secrets(lab), **{f"deployment {k}": v for k, v in deployment.secrets().items()}}
    logs = [p for p in (deployment.home / "logs").rglob("*") if p.is_file()]
    assert any("dag_id=vpsadmin_upgrade_v2" in str(p) for p in logs), "the task logs were read"
    leaks = {name: [str(p) for p in logs if value.encode() in p.read_bytes()] for name, value in secrets.items()}
    assert {name: files for name, files in leaks.items() if files} == {}
    # a JWT secret long enough for HS512 (PyJWT warns in every log otherwise)
    assert [str(p) for p in logs if b"InsecureKeyLengthWarning" in p.read_bytes()] == []


def test_the_operators_journey_in_a_browser(lab, deployment):
    """Log in; the DAG list; the Graph view; the trigger form refusing a host with shell
    characters and taking a good one; a failed task cleared and succeeding; the approval page
    showing the plan, and Approve moving the run on. A screenshot of each step."""
    lab.stop()  # the v1.22 world again: the REST test upgraded it
    lab.info = lab.seed(reset_timezones=True)
    lab.start()
    wait_for_empty_queue(lab)
    admin = deployment.api("admin")
    dags = admin.ok("GET", "/api/v2/dags?limit=100")["dags"]
    sections = sorted({t["task_id"].split(".")[0] for t in admin.ok("GET", f"/api/v2/dags/{DAG_ID}/tasks")["tasks"]
                       if "." in t["task_id"]})
    ui = Browser(f"http://localhost:{deployment.port}", SCREENSHOTS)
    try:
        ui.login("approver", deployment.secrets()["approver_password"])

        # every DAG, with its tags and schedule
        ui.open("/dags")
        ui.wait_text(f"{len(dags)} Dags")
        for dag in dags:
            card = ui.wait(f"the card of {dag['dag_id']}", lambda dag=dag: next(
                (c for c in ui.css("div") if c.get_attribute("innerText").startswith(dag["dag_id"] + "\n")
                 and "Schedule" in c.get_attribute("innerText")), None))
            text = card.get_attribute("innerText")
            assert all(tag["name"] in text for tag in dag["tags"]), (dag["dag_id"], text)
            if dag["timetable_summary"]:
                assert dag["timetable_summary"] in text, (dag["dag_id"], text)
        ui.shot("02-dag-list")

        # the Graph view: the runbook's sections
        ui.open(f"/dags/{DAG_ID}")
        ui.click(ui.button("Show Graph (Press g)"))
        shown = ui.wait("the graph's sections", lambda: set(sections) <= {
            n.get_attribute("innerText").split("\n")[0] for n in ui.css(".react-flow__node")} and sections)
        assert len(shown) >= 8, shown
        ui.driver.set_window_size(2600, 1000)  # eleven sections side by side: a wide screen
        ui.click(ui.css(".react-flow__controls-fitview")[0])
        time.sleep(1)  # the fit is animated
        ui.shot("03-graph")
        ui.driver.set_window_size(1400, 1000)
        ui.click(ui.button("Show Grid (Press g)"))  # the UI keeps the view for the next pages

        # the trigger form: a host with shell characters is refused before a run exists
        def runs() -> list[dict]:
            return admin.ok("GET", f"/api/v2/dags/{DAG_ID}/dagRuns?order_by=-run_after&limit=100")["dag_runs"]

        before = len(runs())
        ui.click(ui.button("Trigger Dag"))
        form = ui.dialog("Trigger Dag - ")
        field = ui.css("#element_api_host", form)[0]
        field.send_keys("vpsadmin; rm -rf /")
        ui.click(ui.button("Trigger", form))
        ui.show("Invalid input for param api_host")
        ui.shot("04-trigger-refused")
        assert len(runs()) == before, "no run was created"
        # ... and a good host is taken (plan mode, as the form defaults to)
        field.clear()
        field.send_keys(host("vpsadmin").address)
        ui.click(ui.button("Trigger", form))
        planned = wait("the triggered run", lambda: len(runs()) == before + 1 and runs()[0], 30)
        ui.shot("05-triggered")
        assert planned["conf"]["api_host"] == host("vpsadmin").address and planned["conf"]["dry_run"] is True
        # (the REST test saw a plan run through; this one is stopped, so the next run starts now)
        stop_run(admin, planned["dag_run_id"])

        # a task that failed on a node's fault is cleared once the node is fixed, and succeeds
        fault = lab.node_root("db") / "root/mysql-down"
        node_shim(lab, "db", "mysql", '[ -e /root/mysql-down ] && { echo "ERROR 2002 (HY000): Can\'t connect to '
                                      'local MySQL server through socket" >&2; exit 1; }')
        fault.touch()
        run_id = trigger(deployment.api("approver"), real_run_conf(members_expiration=True))
        assert wait("the run to fail", lambda: run_state(admin, run_id) in ("success", "failed")
                    and run_state(admin, run_id), RUN_TIMEOUT) == "failed"
        assert task(admin, run_id, "preflight.check_params")["state"] == "failed"
        fault.unlink()  # the operator fixed the DB host
        ui.open(f"/dags/{DAG_ID}/runs/{quoted(run_id)}/tasks/preflight.check_params")
        ui.show("reaches no server")  # the task's log says why
        ui.shot("06-failed-task")
        ui.click(ui.button("Press shift+c to clear"))
        # Confirm stays disabled until the dialog's preview (a dry run) lists the tasks it resets;
        # a click before that does nothing (seen in CI: the preview's request, then no clear)
        confirm = ui.button("Confirm", ui.dialog("Clear Task Instance"))
        ui.wait("Confirm enabled", lambda: confirm.is_enabled() and confirm.get_attribute("data-loading") is None)
        ui.click(confirm)
        ui.wait("the clear dialog to close", lambda: not any(
            "Clear Task Instance" in d.get_attribute("innerText") for d in ui.css("[role=dialog]")))
        wait("the cleared task to succeed", lambda: task(admin, run_id, "preflight.check_params")["state"] ==
             "success", 300)

        # the approval page shows the plan; Approve moves the run on
        gate = f"/dags/{DAG_ID}/runs/{quoted(run_id)}/tasks/{GATE}"
        wait("the gate to ask", lambda: task(admin, run_id, GATE)["state"] == "awaiting_input", RUN_TIMEOUT)
        ui.open(f"{gate}/required_actions")
        ui.wait_text("Replace members, members_changes, sysconfig and vps with their UTF-8 repair?")
        assert "load.sh" in ui.text() and "verify every row" in ui.text(), "the plan, as a list"
        ui.shot("07-approval")
        ui.click(ui.button("Approve"))
        wait("the gate to take the answer", lambda: task(admin, run_id, GATE)["state"] == "success", 120)
        wait("the run to move on", lambda: task(admin, run_id, "db.encoding_swap")["state"] in (
            "running", "success"), 120)
        ui.open(gate)
        ui.wait_text("Success")
        ui.shot("08-approved")
        stop_run(admin, run_id)  # the rest of the upgrade is the REST test's; the deployment stops sooner
    finally:
        ui.close()
    assert [p.name for p in ui.shots] == ["01-login.png", "02-dag-list.png", "03-graph.png",
                                          "04-trigger-refused.png", "05-triggered.png", "06-failed-task.png",
                                          "07-approval.png", "08-approved.png"]
