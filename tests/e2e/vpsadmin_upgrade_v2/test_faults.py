"""Steps that move or destroy data, under faults: the full dump and the NAS data move with the
worker killed (SIGKILL of the process running the step) and with the SSH connection cut
while their remote job runs. The retry attaches to the job still running on the node: the
tool runs once, nothing is lost, and what the step records matches what is on disk."""

from __future__ import annotations

import asyncio
import hashlib
import os
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
