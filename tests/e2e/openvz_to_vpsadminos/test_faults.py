"""openvz_to_vpsadminos under faults, on one lab (tests in order on it): the review rejected
(every staged container cancelled), the destination refusing the transfer (the container runs
on OpenVZ again, nothing left on vpsAdminOS; a later run with delete_source moves it and
deletes the source after the verified move), the SSH stream cut
during a ZFS sync (the retry resumes from the receive token), and the task's worker killed
during a long sync (the send runs once; the retry waits for it)."""

from __future__ import annotations

import shutil
import threading
import time
from datetime import timedelta

import pytest

from tests.e2e.openvz_to_vpsadminos import DAG_ID, OS1, VZ1, conf, openvz_world, os_state, sh, vz_status
from tests.helpers import detached_step, node_shim, run_dag, step_context

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("airflow_db")]

BIG = 104  # ZFS, running, with a subdataset and older snapshots: seeded at 48 MiB here
MIGRATION_SNAPSHOT = ("@airlift-", "@converter-migrate-")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with openvz_world(tmp_path_factory, sizes={BIG: 48 << 20}) as lab:
        yield lab


def quick_retries(dag) -> None:
    for task in dag.tasks:
        task.retry_delay, task.retry_exponential_backoff = timedelta(seconds=1), False


def migration_snapshots(lab, node: str) -> list[str]:
    return [s for s in sh(lab, node, "zfs list -H -t snapshot -o name").split() if any(m in s for m in MIGRATION_SNAPSHOT)]


def assert_untouched_on_openvz(lab, ctids) -> None:
    for ctid in ctids:
        assert vz_status(lab, ctid).endswith("exist mounted running"), ctid
        assert os_state(lab, ctid) is None, ctid
    assert sh(lab, "vz1", "ls /root/.vpsadminos-converter 2>/dev/null || true").split() == []
    assert migration_snapshots(lab, "vz1") == migration_snapshots(lab, "os1") == []


def test_a_rejected_review_cancels_every_staged_container(world):
    state, tasks, answered = run_dag(DAG_ID, conf(containers=[101]), answers={"review": "Reject"})
    assert answered == [("review", "Reject")]
    assert tasks["cancel_rejected[CT 101]"] == "success" and tasks["move.sync"] == "skipped"
    assert state == "success"
    assert_untouched_on_openvz(world, [101])


def test_a_refused_transfer_leaves_the_container_running_on_openvz(world):
    refuse = ('case "$SSH_ORIGINAL_COMMAND" in *transfer*) echo "Error: refused by the test" >&2; exit 1;; esac')
    node_shim(world, "os1", "osctl-ct-receive", refuse)
    state, tasks, _ = run_dag(DAG_ID, conf(containers=[101, BIG], stop_on_first_error=False),
                              answers={"review": "Approve"}, adjust=quick_retries)
    assert state == "failed"
    assert tasks["move.transfer[CT 101]"] == tasks[f"move.transfer_zfs[CT {BIG}]"] == "failed"
    assert tasks["move.undo[CT 101]"] == tasks[f"move.undo[CT {BIG}]"] == "success"
    assert_untouched_on_openvz(world, [101, BIG])
    shimmed = world.node_root("os1") / "usr/local/sbin/.shimmed/osctl-ct-receive"
    (world.node_root("os1") / "usr/local/sbin/osctl-ct-receive").unlink()
    shimmed.rename(world.node_root("os1") / "usr/local/sbin/osctl-ct-receive")
    # a later run moves it, and deletes the source once the move is verified
    state, tasks, _ = run_dag(DAG_ID, conf(containers=[101], delete_source=True), answers={"review": "Approve"})
    assert state == "success" and os_state(world, 101)["state"] == "running", tasks
    assert tasks["move.verify[CT 101]"] == tasks["move.cleanup[CT 101]"] == "success"
    assert vz_status(world, 101).startswith("CTID 101 deleted")
    assert not (world.node_root("vz1") / "vz/private/101").exists()
    assert vz_status(world, BIG).endswith("exist mounted running"), "the other one is not touched"


def job_dir(lab, task: str, ctid: int):
    return lab.node_root("vz1") / "var/lib/airlift/jobs" / f"{DAG_ID}.{task}.{ctid}"


def test_a_cut_stream_resumes_from_the_receive_token(world):
    rate = world.node_root("vz1") / "etc/lab/zfs-send-rate"
    rate.parent.mkdir(parents=True, exist_ok=True)
    rate.write_text(str(8 << 20))  # 48 MiB at 8 MiB/s: the first pass takes about six seconds
    cuts = []
    shutil.rmtree(job_dir(world, "move_sync_zfs", BIG), ignore_errors=True)  # the refused move's

    def cut_once_sending():
        output = job_dir(world, "move_sync_zfs", BIG) / "output"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if output.exists() and "full stream" in output.read_text():
                time.sleep(2)
                cuts.append(world.cut_ssh("os1"))
                return
            time.sleep(0.2)

    cutter = threading.Thread(target=cut_once_sending)
    cutter.start()
    try:
        state, tasks, _ = run_dag(DAG_ID, conf(containers=[BIG]), answers={"review": "Approve"},
                                  adjust=quick_retries)
    finally:
        cutter.join()
        rate.unlink()
    assert cuts and cuts[0] >= 1, "the stream was cut while it ran"
    jobs = {task: job_dir(world, task, BIG) / "output" for task in ("move_sync_zfs", "move_transfer_zfs")}
    assert state == "success", ({t: s for t, s in tasks.items() if s not in ("success", "skipped")},
                                {t: o.read_text()[-3000:] for t, o in jobs.items() if o.exists()})
    output = jobs["move_sync_zfs"].read_text()
    assert "resuming an interrupted receive from its token" in output
    assert os_state(world, BIG)["state"] == "running"
    tokens = sh(world, "os1", f"zfs get -r -H -o value receive_resume_token tank/ct/{BIG}").split()
    assert set(tokens) == {"-"}, "no partial receive is left"
    assert [d for d in sh(world, "os1", "zfs list -H -o name -r tank").split() if "%" in d] == []


def test_a_killed_worker_does_not_start_a_second_send(world):
    from multiprocessing import get_context

    from operators.openvz.nodes import ConverterInstalledOperator, DiscoverOperator, SshKeysOperator
    from operators.openvz.vz6_convert import Vz6ConvertOperator
    from operators.openvz.zfs_send import ZfsSendOperator
    from tests.e2e.vpsadmin_upgrade_v2.test_faults import _execute_in_child, job_running, run_step

    params = {"source_node": VZ1, "destination_node": OS1, "containers": [105]}
    context = step_context(run_id="manual__killed_worker", **params)
    for node_pair_step in (ConverterInstalledOperator, SshKeysOperator):  # done already if the tests before ran
        detached_step(node_pair_step, product="openvz", task_id=node_pair_step.__name__).execute(context)
    ct = detached_step(DiscoverOperator, product="openvz", task_id="discover").execute(context)[0]
    stage = detached_step(Vz6ConvertOperator, product="openvz", task_id="stage", step="ct.stage", subcommand="stage",
                          container=ct, network={"netif": "routed", "via": {"v4": "10.100.9.0/30", "v6": "fd00:100::900/126"}})
    run_step(stage, context)
    sh(world, "vz1", "mkdir -p /etc/lab && echo 16777216 > /etc/lab/zfs-send-rate && dd if=/dev/urandom of=/vz/private/105/private/big "
                     "bs=1M count=24 status=none")
    sync = detached_step(ZfsSendOperator, product="openvz", task_id="sync_zfs", step="ct.sync", mode="sync",
                         container=ct)
    worker = get_context("fork").Process(target=_execute_in_child, args=(world.env(), sync, context))
    worker.start()
    job_running(world, "vz1", sync, context)
    worker.kill()
    worker.join()
    record = run_step(sync, context)  # the retry: the job still runs; it waits for it
    sh(world, "vz1", "rm -f /etc/lab/zfs-send-rate")
    starts = (world.node_root("vz1") / "var/lib/airlift/jobs" / sync.job_key(context) / "starts").read_text()
    assert len(starts.splitlines()) == 1, "the send ran once"
    assert record["passes"] and record["passes"][0] > 24 << 20
    newest = sh(world, "os1", "zfs list -H -t snapshot -o name -d 1 tank/ct/105").split()[-1]
    assert newest.split("@")[1] == sh(world, "vz1", "zfs list -H -t snapshot -o name -d 1 vz/private/105").split()[-1].split("@")[1]
