"""openvz_to_vpsadminos on the offline path, on one lab (tests in order on it): plan mode
changes nothing; the run moves a stopped simfs container and a running ZFS container (with a
subdataset) by export, copy and import, each equal file by file, the ZFS one running again
after a measured downtime, no archive left on either node; a second run changes nothing; a
copy cut halfway continues from what arrived (rsync --append-verify) on the retry; the retry
after a killed worker waits for the copy still running instead of starting a second one; the
window lets a transfer start only with the time it needs still left."""

from __future__ import annotations

import re
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
)
from tests.helpers import node_shim, run_dag, task_result

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("airflow_db")]

SIMFS, ZFS = 101, 104  # simfs stopped by the test first; ZFS running, with a subdataset
STOPPED_ZFS = 105  # seeded at 16 MiB: its copy takes seconds at the test's bandwidth
PLOOP = 103  # stopped


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with openvz_world(tmp_path_factory, sizes={STOPPED_ZFS: 16 << 20}) as lab:
        sh(lab, "vz1", f"vzctl stop {SIMFS}")
        yield lab


def offline(**changes) -> dict:
    return conf(**{"path": "offline", "containers": [SIMFS, ZFS], **changes})


def archives(lab) -> list[str]:
    return sh(lab, "vz1", "find /vz/airlift-export -type f 2>/dev/null || true").split() + \
        sh(lab, "os1", "find /tank/airlift-import -type f 2>/dev/null || true").split()


def test_plan_mode_changes_nothing(world):
    before = fingerprint(world)
    state, tasks, answered = run_dag(DAG_ID, offline(dry_run=True))
    assert state == "success", {t: s for t, s in tasks.items() if s != "success"}
    assert answered == []
    assert changed(before, fingerprint(world)) == []


def test_the_offline_run_moves_a_stopped_simfs_and_a_running_zfs_container(world):
    assert_moved_offline(world, offline(), {SIMFS: False, ZFS: True})
    for ctid in (SIMFS, ZFS):
        assert sh(world, "vz1", f"cat /var/lib/airlift/openvz/migrated/{ctid}").startswith("127.0.1.41 ")
    assert sh(world, "os1", f"zfs list -H -o name -r tank/ct/{ZFS}").split() == [f"tank/ct/{ZFS}", f"tank/ct/{ZFS}/data"]
    imported = task_result(DAG_ID, "move.import", map_index=1)
    assert imported["ctid"] == ZFS and imported["downtime_seconds"] > 0
    assert "downtime_seconds" not in task_result(DAG_ID, "move.import", map_index=0), "it was down already"
    assert archives(world) == []
    assert [s for s in sh(world, "os1", "zfs list -H -t snapshot -o name").split() if "osctl-" in s] == []
    assert [s for s in sh(world, "vz1", "zfs list -H -t snapshot -o name").split() if "osctl-" in s] == []


def test_a_second_run_changes_nothing(world):
    assert_second_run_changes_nothing(world, offline(), (SIMFS, ZFS))


def test_a_cut_copy_continues_from_what_arrived(world):
    node_shim(world, "vz1", "rsync", "set -- --bwlimit=4096 \"$@\"")  # 4 MiB/s: the copy takes seconds
    part = world.node_root("os1") / f"tank/airlift-import/{STOPPED_ZFS}.tar.part"
    cuts = []

    def cut_halfway():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if part.exists() and part.stat().st_size > 4 << 20:
                cuts.append(world.cut_ssh("os1"))
                return
            time.sleep(0.1)

    def quick_retries(dag) -> None:
        for task in dag.tasks:
            task.retry_delay, task.retry_exponential_backoff = timedelta(seconds=1), False

    cutter = threading.Thread(target=cut_halfway)
    cutter.start()
    try:
        state, tasks, _ = run_dag(DAG_ID, conf(path="offline", containers=[STOPPED_ZFS]),
                                  answers={"review": "Approve"}, adjust=quick_retries)
    finally:
        cutter.join()
        shimmed = world.node_root("vz1") / "usr/local/bin/rsync"
        shimmed.unlink()
    assert cuts and cuts[0] >= 1, "the copy was cut while it ran"
    assert state == "success", {t: s for t, s in tasks.items() if s not in ("success", "skipped")}
    assert os_state(world, STOPPED_ZFS)["state"] == "stopped"
    output = (world.node_root("vz1") / f"var/lib/airlift/jobs/{DAG_ID}.move_copy_archive.{STOPPED_ZFS}/output").read_text()
    sent = int(re.search(r"Literal data: ([\d,]+) bytes", output).group(1).replace(",", ""))
    whole = int(re.search(r"Total file size: ([\d,]+) bytes", output).group(1).replace(",", ""))
    assert 0 < sent <= whole - (4 << 20), f"the retry sent {sent} of {whole} bytes: it continued"
    assert archives(world) == []


def test_a_killed_worker_does_not_start_a_second_copy(world):
    from operators.openvz.nodes import ConverterInstalledOperator, DiscoverOperator, SshKeysOperator
    from operators.openvz.offline import CopyArchiveOperator, ExportOperator
    from tests.e2e.vpsadmin_upgrade_v2.test_faults import job_starts, kill_worker_during, run_step
    from tests.helpers import detached_step, step_context

    context = step_context(run_id="manual__killed_copy", **offline(containers=[PLOOP]))
    for node_pair_step in (ConverterInstalledOperator, SshKeysOperator):  # done already if the tests before ran
        detached_step(node_pair_step, product="openvz", task_id=node_pair_step.__name__).execute(context)
    ct = detached_step(DiscoverOperator, product="openvz", task_id="discover").execute(context)[0]
    ct["network"] = {"via": {"v4": "10.100.9.0/30", "v6": "fd00:100::900/126"}}  # what review_plan adds
    run_step(detached_step(ExportOperator, product="openvz", task_id="export", step="ct.export", container=ct), context)
    node_shim(world, "vz1", "rsync", "set -- --bwlimit=1024 \"$@\"")  # 1 MiB/s: seconds of copying
    try:
        copy = detached_step(CopyArchiveOperator, product="openvz", task_id="copy_archive", step="ct.copy-archive",
                             container=ct)
        kill_worker_during(world, "vz1", copy, context)
        record = run_step(copy, context)  # the retry: the job still runs; it waits for it
    finally:
        (world.node_root("vz1") / "usr/local/bin/rsync").unlink()
    assert job_starts(world, "vz1", copy, context) == 1, "the copy ran once"
    exported = sh(world, "vz1", f"cat /vz/airlift-export/{PLOOP}.tar.sha256").strip()
    assert record["sha256"] == exported
    assert sh(world, "os1", f"sha256sum /tank/airlift-import/{PLOOP}.tar").split()[0] == exported


def test_the_window_counts_the_time_a_transfer_needs(world):
    from datetime import UTC, datetime, timedelta

    from airflow.sdk.exceptions import TaskDeferred

    from operators.openvz.move import WindowOperator
    from operators.openvz.nodes import DiscoverOperator
    from tests.helpers import detached_step, step_context

    now = datetime.now(UTC)
    window = {"window_start": f"{now - timedelta(hours=1):%H:%M}", "window_timezone": "UTC", "transfer_rate_mib": 1,
              "stop_on_first_error": False}  # no run around it to ask
    wide = step_context(**offline(containers=[PLOOP], **window, window_end=f"{now + timedelta(hours=1):%H:%M}"))
    ct = detached_step(DiscoverOperator, product="openvz", task_id="discover").execute(wide)[0]
    needs = ct["size"] / (1 << 20)  # seconds at 1 MiB/s
    assert needs > 1
    record = detached_step(WindowOperator, product="openvz", task_id="window", container=ct).execute(wide)
    assert record["needs_seconds"] == round(needs)
    # a window that closes before the transfer would end: wait for tomorrow's opening
    closing = step_context(**offline(containers=[PLOOP], **window,
                                     window_end=f"{now + timedelta(minutes=1):%H:%M}"))
    ct_big = {**ct, "size": 600 << 20}  # ten minutes at 1 MiB/s
    with pytest.raises(TaskDeferred) as deferred:
        detached_step(WindowOperator, product="openvz", task_id="window", container=ct_big).execute(closing)
    assert deferred.value.trigger.moment > now + timedelta(hours=22)
