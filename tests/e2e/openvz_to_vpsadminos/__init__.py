"""openvz_to_vpsadminos on the lab's OpenVZ node vz1 and vpsAdminOS nodes os1/os2: what the
modules share (the world, its fingerprint, the run's conf)."""

from __future__ import annotations

from lab.core.nodes import run_in_node
from lab.core.topology import host
from tests.helpers import files_of, started_lab

DAG_ID = "openvz_to_vpsadminos"
VZ1, OS1 = host("vz1").address, host("os1").address
MOVABLE = (101, 102, 103, 104, 105)
REFUSED = (106, 107, 108)
RUNNING = (101, 102, 104, 106, 107, 108)
# What a running OpenVZ container writes by itself (lab/openvz/runtime.py), what the run's
# remote jobs keep, and lock files (empty, made by the first flock): left out of "nothing
# changed".
LIVE = ("/var/log/lab-ct/", "/var/lib/lab-ct/", "var/lib/airlift/jobs/", "var/lib/lab/zfs/lock", ".lock")
SKIP_DIRS = ("tmp", "proc", "dev", "usr", "run")


def openvz_world(tmp_path_factory, **seed):
    """A started lab with the OpenVZ world seeded; its connections in the environment."""
    return started_lab(tmp_path_factory.mktemp("lab"), world="openvz", **seed)


def conf(**changes) -> dict:
    return {"source_node": VZ1, "destination_node": OS1, "dry_run": False, **changes}


def sh(lab, node: str, command: str) -> str:
    result = run_in_node(lab.node_root(node), command)
    assert result.returncode == 0, (node, command, result.stderr.decode())
    return result.stdout.decode()


def fingerprint(lab) -> dict[str, str]:
    """{node/path: sha256 or link target} of vz1, os1 and os2 (their own writes and the jobs'
    state left out), and each node's `zfs list -t all`."""
    found = {}
    for node in ("vz1", "os1", "os2"):
        files = files_of(lab.node_root(node), SKIP_DIRS, lambda rel: any(part in f"/{rel}" for part in LIVE))
        found.update({f"{node}/{rel}": digest for rel, digest in files.items()})
        found[f"{node}: zfs list"] = sh(lab, node, "zfs list -H -t all -o name 2>/dev/null || true")
    return found


def changed(before: dict, after: dict) -> list[str]:
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


def os_state(lab, ctid: int) -> dict | None:
    import json

    result = run_in_node(lab.node_root("os1"), f"osctl -j ct show {ctid}")
    return json.loads(result.stdout) if result.returncode == 0 else None


def vz_status(lab, ctid: int) -> str:
    return sh(lab, "vz1", f"vzctl status {ctid}").strip()


def assert_moved_offline(lab, conf: dict, moved: dict[int, bool]) -> dict[str, str]:
    """Run the offline path with the review approved and check each of `moved` ({ctid:
    running}) went through export, copy and import, verified and cleaned up: on os1 in its
    state with its owner's user and /default, the source kept stopped. The run's task states."""
    from tests.helpers import run_dag

    state, tasks, answered = run_dag(DAG_ID, conf, answers={"review": "Approve"})
    assert state == "success", {t: s for t, s in tasks.items() if s not in ("success", "skipped")}
    assert answered == [("review", "Approve")]
    for ctid, running in moved.items():
        for task in ("export", "copy_archive", "import", "verify", "cleanup"):
            assert tasks[f"move.{task}[CT {ctid}]"] == "success", (task, ctid)
        there = os_state(lab, ctid)
        assert there["state"] == ("running" if running else "stopped"), ctid
        assert there["user"] == f"ct{ctid}" and there["group"] == "/default"
        assert vz_status(lab, ctid).endswith("exist unmounted down"), "the source is kept, stopped"
    return tasks


def assert_second_run_changes_nothing(lab, conf: dict, ctids) -> None:
    from tests.helpers import run_dag

    before = fingerprint(lab)
    state, tasks, _ = run_dag(DAG_ID, conf, answers={"review": "Approve"})
    assert state == "success", {t: s for t, s in tasks.items() if s not in ("success", "skipped")}
    assert {tasks[f"prepare.preflight[CT {c}]"] for c in ctids} == {"skipped"}
    assert changed(before, fingerprint(lab)) == []
