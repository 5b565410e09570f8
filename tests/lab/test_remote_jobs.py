"""Remote jobs (include/scripts/job.sh through hooks/node.py) on lab nodes over real SSH: a
step's script outlives a cut connection and a killed caller, a second start attaches instead
of starting a copy, a retry takes the finished result, a died job starts anew, and a kill
ends the whole process group."""

from __future__ import annotations

import os
import signal
import time
import uuid
from multiprocessing import get_context

import pytest

from airlift.remote import job_key
from hooks.node import JobDied, NodeHook
from lab.core.topology import host

pytestmark = pytest.mark.lab

NODE = host("storage1").address
# Counts its starts on the node, then works for `seconds`, printing as it goes.
SCRIPT = """
echo "$$" >> /root/job-starts
for i in $(seq "$1"); do echo "tick $i"; sleep 0.5; done
echo done
"""


def starts(lab) -> int:
    path = lab.node_root("storage1") / "root/job-starts"
    return len(path.read_text().split()) if path.exists() else 0


def wait_state(nodes, key, state, timeout=20):
    deadline = time.monotonic() + timeout
    while (current := nodes.job_status(NODE, key)).state != state:
        assert time.monotonic() < deadline, current
        time.sleep(0.2)
    return current


def new_key():
    return job_key("test", uuid.uuid4().hex[:8])


def test_a_job_runs_once_and_its_result_stands(lab, nodes):
    key, before = new_key(), starts(lab)
    result = nodes.run_job(NODE, key, "run1", SCRIPT, ["3"], poll=0.2)
    assert result.ok and result.stdout.splitlines()[-1] == "done"
    again = nodes.run_job(NODE, key, "run1", SCRIPT, ["3"], poll=0.2)
    assert again.stdout == result.stdout and starts(lab) == before + 1, "the same run's finished job is not rerun"
    nodes.run_job(NODE, key, "run2", SCRIPT, ["1"], poll=0.2)
    assert starts(lab) == before + 2, "another run starts it anew"
    job_dir = lab.node_root("storage1") / "var/lib/airlift/jobs" / key
    assert oct(job_dir.stat().st_mode & 0o777) == "0o700"


def test_a_cut_connection_leaves_the_job_running_and_the_retry_attaches(lab, nodes):
    key, before = new_key(), starts(lab)
    state = nodes.start_job(NODE, key, "run1", SCRIPT, ["10"])
    assert state.state == "running"
    old = nodes.connect_to(NODE).get_transport()
    assert lab.cut_ssh("storage1") >= 1
    # The old connection is gone (the hook would reconnect on its next call, so watch the
    # transport itself: paramiko notices the cut on its own reader thread).
    deadline = time.monotonic() + 10
    while old.is_active():
        assert time.monotonic() < deadline, "the cut connection still looks alive"
        time.sleep(0.05)
    retry = NodeHook()
    try:
        attached = retry.start_job(NODE, key, "run1", SCRIPT, ["10"])
        assert attached.state == "running" and attached.pgid == state.pgid, "the retry attaches"
        result = retry.run_job(NODE, key, "run1", SCRIPT, ["10"], poll=0.2)
    finally:
        retry.close()
    assert result.ok and "tick 10" in result.stdout
    assert starts(lab) == before + 1, "never a second copy"


def _run_and_be_killed(env: dict, key: str) -> None:
    os.environ.update(env)
    NodeHook().run_job(NODE, key, "run1", SCRIPT, ["10"], poll=0.2)


def test_a_killed_caller_leaves_the_job_running_and_the_retry_waits_for_it(lab, nodes):
    key, before = new_key(), starts(lab)
    worker = get_context("fork").Process(target=_run_and_be_killed, args=(lab.env(), key))
    worker.start()
    wait_state(nodes, key, "running")
    os.kill(worker.pid, signal.SIGKILL)
    worker.join()
    result = nodes.run_job(NODE, key, "run1", SCRIPT, ["10"], poll=0.2)
    assert result.ok and "tick 10" in result.stdout and starts(lab) == before + 1


def test_a_killed_job_died_and_a_retry_starts_it_anew(lab, nodes):
    import threading

    key, before = new_key(), starts(lab)
    outcome = {}

    def wait_for_it():
        waiter = NodeHook()
        try:
            waiter.run_job(NODE, key, "run1", SCRIPT + "sleep 60 & wait\n", ["2"], poll=0.2)
        except JobDied as exc:
            outcome["died"] = str(exc)
        finally:
            waiter.close()

    waiting = threading.Thread(target=wait_for_it)
    waiting.start()
    state = wait_state(nodes, key, "running")
    assert nodes.kill_job(NODE, key).state == "died"
    waiting.join(timeout=30)
    assert "died" in outcome.get("died", ""), "the waiting caller learns the job died"
    assert nodes.run(NODE, f"pgrep -g {state.pgid} || true").stdout.split() == [], \
        "the whole process group ended, the background sleep too"
    assert nodes.run_job(NODE, key, "run1", SCRIPT, ["1"], poll=0.2).ok, "the retry starts it anew"
    assert starts(lab) == before + 2


def test_another_runs_job_is_waited_for_not_doubled(lab, nodes):
    key = new_key()
    nodes.start_job(NODE, key, "run1", SCRIPT, ["4"])
    started = time.monotonic()
    result = nodes.run_job(NODE, key, "run2", SCRIPT, ["1"], poll=0.2)
    assert result.ok and result.stdout.split() == ["tick", "1", "done"]
    assert time.monotonic() - started >= 1.0, "run2's job started only after run1's ended"


def test_a_timed_out_job_is_ended(lab, nodes):
    key = new_key()
    with pytest.raises(TimeoutError, match="its processes were ended"):
        nodes.run_job(NODE, key, "run1", SCRIPT, ["20"], timeout=2, poll=0.2)
    assert nodes.job_status(NODE, key).state == "died"
