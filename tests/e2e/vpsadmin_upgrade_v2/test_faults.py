"""Steps that move or destroy data, under faults: the full dump and the NAS data move with the
worker killed (SIGKILL of the process running the step) and with the SSH connection cut
while their remote job runs. The retry attaches to the job still running on the node: the
tool runs once, nothing is lost, and what the step records matches what is on disk."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import signal
import threading
import time
from multiprocessing import get_context

import pytest
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

from lab.core.nodes import run_in_node
from lab.core.topology import host
from tests.e2e.vpsadmin_upgrade_v2 import NAS_ROOT, expected_after_move, nas_files
from tests.helpers import detached_step, node_shim, step_context

pytestmark = [pytest.mark.lab]


def run_step(op, context):
    """Execute a step as a worker would, the triggerer included: a deferral's trigger runs
    inline and the step resumes with its event."""
    try:
        return op.execute(context)
    except TaskDeferred as deferred:
        trigger, method, kwargs = deferred.trigger, getattr(op, deferred.method_name), deferred.kwargs or {}

    async def first_event():
        async for event in trigger.run():
            return event.payload

    return method(context, event=asyncio.run(first_event()), **kwargs)


def job_running(lab, node: str, op, context, timeout: float = 30) -> None:
    """Wait until the step's remote job has started on the node."""
    pgid = lab.node_root(node) / "var/lib/airlift/jobs" / op.job_key(context) / "pgid"
    deadline = time.monotonic() + timeout
    while not (pgid.exists() and pgid.read_text().strip()):
        assert time.monotonic() < deadline, "the step's job did not start"
        time.sleep(0.1)


def job_finished(lab, node: str, op, context, timeout: float = 60) -> None:
    """Wait until the step's remote job has written its exit status on the node."""
    status = lab.node_root(node) / "var/lib/airlift/jobs" / op.job_key(context) / "exit"
    deadline = time.monotonic() + timeout
    while not status.exists():
        assert time.monotonic() < deadline, "the step's job did not finish"
        time.sleep(0.1)


def job_starts(lab, node: str, op, context) -> int:
    starts = lab.node_root(node) / "var/lib/airlift/jobs" / op.job_key(context) / "starts"
    return len(starts.read_text().splitlines())


def calls(counter) -> int:
    return len(counter.read_text().split()) if counter.exists() else 0


def _execute_in_child(env: dict, op, context) -> None:
    os.environ.update(env)
    run_step(op, context)


def kill_worker_during(lab, node: str, op, context) -> None:
    """The step in a child process that is SIGKILLed once its remote job runs."""
    worker = get_context("fork").Process(target=_execute_in_child, args=(lab.env(), op, context))
    worker.start()
    job_running(lab, node, op, context)
    os.kill(worker.pid, signal.SIGKILL)
    worker.join()
    assert worker.exitcode == -signal.SIGKILL


def cut_ssh_during(lab, node: str, op, context) -> dict | None:
    """The step in a thread; the node's SSH connections are cut once its job runs. Returns the
    record if the attempt carried on over a new connection; if it failed, it failed retryably
    (not a step failure) and the caller retries."""
    outcome = {}

    def attempt():
        try:
            outcome["record"] = run_step(op, context)
        except BaseException as exc:  # noqa: BLE001 - whatever it is, the test looks at it
            outcome["error"] = exc

    thread = threading.Thread(target=attempt)
    thread.start()
    job_running(lab, node, op, context)
    time.sleep(0.5)
    assert lab.cut_ssh(node) >= 1
    thread.join(timeout=120)
    assert not isinstance(outcome.get("error"), AirflowFailException), "a cut connection must be retried"
    return outcome.get("record")


def dump_step(lab):
    from operators.vpsadmin_upgrade.common import MysqlDumpOperator

    settings = {"db_host": host("db").address, "database": lab.cfg.vpsadmin_db,
                "backup_dir": "/var/backups/vpsadmin"}
    return detached_step(MysqlDumpOperator, step="db.backup", settings=settings, mode="full", label="fault")


def assert_one_verified_dump(lab, record, counter) -> None:
    assert calls(counter) == 1, "mysqldump ran once"
    path = lab.node_root("db") / record["path"].lstrip("/")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == record["sha256"]
    assert path.stat().st_size == record["size"] > 0
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".partial")] == []


@pytest.mark.parametrize("fault", ["worker killed", "ssh cut"])
def test_the_dump_survives(lab_world, fault):
    lab = lab_world()
    counter = node_shim(lab, "db", "mysqldump", "sleep 4")
    op, context = dump_step(lab), step_context(run_id=f"fault_dump_{fault.replace(' ', '_')}")
    if fault == "worker killed":
        kill_worker_during(lab, "db", op, context)
        record = None
    else:
        record = cut_ssh_during(lab, "db", op, context)
    record = record or run_step(dump_step(lab), context)  # the retry
    assert record["applied"] and job_starts(lab, "db", op, context) == 1, "the dump job ran once"
    assert_one_verified_dump(lab, record, counter)


def nas_move_step():
    from operators.runbook_step import NodeScriptOperator

    pool = {"server_name": "storage1", "address": host("storage1").address, "filesystem": NAS_ROOT}
    return detached_step(NodeScriptOperator, step="nas.move-data", args=["{filesystem}"], ssh_conn_id="vpsadmin_ssh",
                         node=pool)


def rename_private_datasets(lab) -> None:
    """What storage.rename-private does first: child datasets named `private` renamed."""
    listing = run_in_node(lab.node_root("storage1"), f"zfs list -H -r -o name {NAS_ROOT}").stdout.decode().split()
    for name in [n for n in listing if n.endswith("/private")]:
        assert run_in_node(lab.node_root("storage1"), f"zfs rename {name} {name}-data").returncode == 0


@pytest.mark.parametrize("fault", ["worker killed", "ssh cut"])
def test_the_nas_move_survives(lab_world, fault):
    lab = lab_world()
    before = nas_files(lab)
    rename_private_datasets(lab)
    counter = node_shim(lab, "storage1", "mv", "sleep 0.3")
    op, context = nas_move_step(), step_context(run_id=f"fault_nas_{fault.replace(' ', '_')}")
    if fault == "worker killed":
        kill_worker_during(lab, "storage1", op, context)
        record = None
    else:
        record = cut_ssh_during(lab, "storage1", op, context)
    record = record or run_step(nas_move_step(), context)  # the retry
    assert job_starts(lab, "storage1", op, context) == 1, "the move ran once"
    assert calls(counter) > 0
    after = nas_files(lab)
    assert {expected_after_move(path, "private-data"): digest for path, digest in before.items()} == after, \
        "every file moved once, none lost or changed"


# -- the pinned migration and its restore gate -------------------------------------------------

def migration_ready(lab) -> None:
    """What the DAG has done when it reaches the pinned migration: daemons stopped, the
    Database section's fixes, time zones loaded, the 2.0 API checked out."""
    from lab.core import mysql
    from tests.lab.test_rake_migrate import database_section

    for name in ("node1", "node2", "storage1", "backup1"):
        assert run_in_node(lab.node_root(name), "service vpsadmind stop").returncode == 0
    database_section(lab)
    mysql.load_timezones(lab.cfg.mysql_kwargs())
    assert run_in_node(lab.node_root("vpsadmin"), "cd /opt/vpsadminapi && git pull").returncode == 0


def migrate_step():
    from operators.vpsadmin_upgrade.common import RakeMigrateOperator
    from operators.vpsadmin_upgrade.preflight import PINNED_VERSION

    return detached_step(RakeMigrateOperator, step="api.migrate-pinned", version=PINNED_VERSION,
                         settings={"api_host": host("vpsadmin").address})


def restore_gate():
    from operators.vpsadmin_upgrade.api import RestoreGateOperator

    return detached_step(RestoreGateOperator, task_id="approve_restore", step="api.migrate-pinned",
                         migrate_task_id="migrate_pinned", subject="Restore?")


def schema_version(lab) -> str:
    from tests.helpers import scalar

    return scalar(lab, "SELECT MAX(version) FROM schema_migrations")


def test_the_pinned_migration_survives_a_cut_connection_and_offers_no_restore(lab_world):
    from airflow.sdk.exceptions import AirflowSkipException

    from operators.vpsadmin_upgrade.preflight import PINNED_VERSION

    lab = lab_world()
    migration_ready(lab)
    counter = node_shim(lab, "vpsadmin", "rake", "sleep 4")
    op, context = migrate_step(), step_context(run_id="fault_rake_ssh_cut")
    record = cut_ssh_during(lab, "vpsadmin", op, context)
    # whatever the cut attempt saw, the migration's task may end failed (its retries used up)
    # while rake still runs (that gate refusal is the next test's); once rake has finished at
    # its target, the gate finds that and offers nothing
    job_finished(lab, "vpsadmin", op, context)
    with pytest.raises(AirflowSkipException, match="rake finished"):
        restore_gate().execute(context)
    # the attempt that carried on applied it; a retry finds the schema at the target
    record = record or run_step(migrate_step(), context)
    assert record["version"] == PINNED_VERSION == schema_version(lab)
    assert calls(counter) == 1 and job_starts(lab, "vpsadmin", op, context) == 1, "rake ran once"


def test_no_restore_is_offered_while_rake_runs_and_a_killed_rake_is_not_rerun(lab_world, monkeypatch):
    from operators.runbook_step import ApprovalGateOperator

    lab = lab_world()
    migration_ready(lab)
    before = schema_version(lab)
    counter = node_shim(lab, "vpsadmin", "rake", "sleep 30")
    op, context = migrate_step(), step_context(run_id="fault_rake_running")
    outcome = {}

    def attempt():
        try:
            run_step(op, context)
        except BaseException as exc:  # noqa: BLE001 - the test looks at it
            outcome["error"] = exc

    thread = threading.Thread(target=attempt)
    thread.start()
    job_running(lab, "vpsadmin", op, context)
    with pytest.raises(AirflowFailException, match="rake still runs on .* no restore while it runs"):
        restore_gate().execute(context)

    op.on_kill()  # the task timed out: rake's process group ends with it, migration unfinished
    thread.join(timeout=60)
    assert isinstance(outcome.get("error"), AirflowFailException), outcome
    with pytest.raises(AirflowFailException, match="died .* not started again"):
        run_step(migrate_step(), context)  # a retry does not start a killed rake again
    assert calls(counter) == 1 and schema_version(lab) == before

    asked = []
    monkeypatch.setattr(ApprovalGateOperator, "execute", lambda self, context: asked.append(self.task_id))
    restore_gate().execute(context)
    assert asked == ["approve_restore"], "rake stopped short of the target: the restore is offered"


def test_a_nas_move_that_fails_midway_says_what_is_left_and_resumes(lab_world):
    """`mv` starts failing after a few moves (a full disk, say): the step fails and records
    what its probe still sees to move (XCom `left_after_failure`); with the cause fixed, the
    next attempt moves the rest, and every file ends up moved once."""
    from operators.runbook_step import RunbookStepOperator

    lab = lab_world()
    before = nas_files(lab)
    rename_private_datasets(lab)
    shim = node_shim(lab, "storage1", "mv", 'if [ "$(wc -l < /root/mv-calls)" -gt 3 ]; then echo "mv: No space left '
                                           'on device" >&2; exit 1; fi')
    op, context = nas_move_step(), step_context(run_id="midway_nas")
    with pytest.raises(AirflowFailException, match="exited 1"):
        run_step(op, context)
    left = context["ti"].xcoms[RunbookStepOperator.LEFT]
    moved = {path for path in nas_files(lab) if "/private/" in path or path.split("/", 2)[1:2] == ["private"]}
    assert left and all(re.fullmatch(rf"(storage1: )?{NAS_ROOT}/\S+: move \d+ entr(y|ies) into /\S+/private/", line)
                        for line in left), left
    assert 0 < len(moved) < len(before), "stopped midway"
    snapshots = run_in_node(lab.node_root("storage1"), f"zfs list -H -t snapshot -o name {NAS_ROOT}@airlift-before-nas-move")
    assert snapshots.returncode == 0, "the pool's snapshot was taken before the first move"

    (lab.node_root("storage1") / "usr/local/bin/mv").unlink()  # the cause fixed
    assert shim.exists()
    record = run_step(nas_move_step(), step_context(run_id="midway_nas_again"))
    assert record["applied"]
    assert {expected_after_move(path, "private-data"): digest for path, digest in before.items()} == nas_files(lab)
