"""The zfs simulator against a real ZFS: Debian's zfs-fuse on a file-backed pool.

One command sequence runs on both (through bash, so `send | recv` are real pipes); exit
codes and outputs must match after the pool's name and mountpoint are normalised. zfs-fuse
is ZFS of 2011 (pool v23) while the simulator follows OpenZFS master (research/vpsadminos.md
§6); where the two differ, KNOWN_DIFFERENCES records what zfs-fuse says and the simulator's
side is held to master by tests/test_zfs_sim.py.

Skipped, with the reason, where zfs-fuse is not installed or cannot start (no /dev/fuse,
no permission, the daemon not answering).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from lab.core.tools.zfs import Zfs

ROOT = Path(__file__).resolve().parents[2]
SOCKET = Path("/var/run/zfs/zfs_socket")

# (step, shell command); P = the pool, $MP = the pool's mountpoint on this side.
STEPS = [
    ("create -p", "zfs create -p P/a/b"),
    ("create over an existing dataset", "zfs create P/a"),
    ("create without parent", "zfs create P/x/y"),
    ("set", "zfs set quota=1G P/a && zfs set lab:note=hi P/a && zfs set compression=on P/a"),
    ("get -r", "zfs get -H -o name,property,value,source quota,compression,lab:note -r P/a"),
    ("get -p", "zfs get -H -p -o value quota P/a"),
    ("get default", "zfs get -H -o value,source mountpoint,atime,canmount P/a/b"),
    ("set bad number", "zfs set quota=lots P/a"),
    ("set readonly", "zfs set used=5 P/a"),
    ("set relative mountpoint", "zfs set mountpoint=rel P/a"),
    ("inherit quota", "zfs inherit quota P/a"),
    # an explicit none stays set (source local); never set reads default
    ("set quota none", "zfs set quota=none P/a && zfs get -H -o value,source quota,refquota P/a"),
    ("create with quota none", "zfs create -o refquota=none P/nq && zfs get -H -o value,source quota,refquota P/nq"),
    ("write files", "echo one > $MP/a/f && mkdir -p \"$MP/a/sub dir\" && "
                    "echo two > \"$MP/a/sub dir/.hidden\""),
    ("snapshot", "zfs snapshot P/a@s1"),
    ("snapshot again", "zfs snapshot P/a@s1"),
    ("snapshot -r", "zfs snapshot -r P/a@s2"),
    ("list -t all -r", "zfs list -H -o name -t all -r P"),
    ("list -t snapshot", "zfs list -H -o name,type -t snapshot -r P/a"),
    ("list missing", "zfs list P/none"),
    ("list bad option", "zfs list -x >/dev/null 2>&1; echo $?"),
    ("rename", "zfs rename P/a/b P/c && zfs list -H -o name,mountpoint -r P"),  # remounts
    ("rename snapshot", "zfs rename P/a@s1 P/a@s0 && zfs list -H -o name -t snapshot -r P/a"),
    ("rename snapshot across datasets", "zfs rename P/a@s0 P/c@s0"),
    ("rename into itself", "zfs rename P/a P/a/z"),
    ("rename without parent", "zfs rename P/c P/q/c"),
    ("destroy with children", "zfs destroy P/a"),
    ("destroy missing", "zfs destroy P/none"),
    ("destroy pool", "zfs destroy P"),
    ("send | recv", "zfs send P/a@s2 | zfs recv P/r"),
    ("recv over existing", "zfs send P/a@s2 | zfs recv P/r"),
    ("snapshot on the copy", "zfs snapshot P/r@x && zfs send P/a@s2 | zfs recv -F P/r"),
    ("drop it", "zfs destroy P/r@x"),
    ("incremental", "echo three > $MP/a/g && zfs snapshot P/a@s3 && "
                    "zfs send -i @s2 P/a@s3 | zfs recv P/r"),
    ("received files", "cd $MP/r && find . | sort && cat f \"sub dir/.hidden\" g"),
    ("received snapshots", "zfs list -H -o name -t snapshot -r P/r"),
    ("incremental, wrong base", "zfs send -i @s0 P/a@s3 | zfs recv P/r"),
    ("destroy -r", "zfs destroy -r P/a && zfs list -H -o name -r P"),  # remounts
    ("destroy missing snapshot", "zfs destroy P/r@nope"),
    ("snapshot of missing dataset", "zfs snapshot P/none@x"),
]

# Steps that unmount a filesystem: zfs-fuse's own unmount inside rename/destroy answers
# "dataset is busy" while FUSE lets go, so on zfs-fuse the dataset is unmounted first with
# `zfs unmount` and everything mounted again after (the simulator runs the step as it is).
REMOUNTS = {"rename": "P/a/b", "destroy -r": "P/a"}

# step -> (exit code, stderr) of zfs-fuse 0.7.0 where OpenZFS master (the simulator) differs.
KNOWN_DIFFERENCES = {
    # master adds "use 'zfs inherit -S quota' to revert to received value" (received props)
    "inherit quota": (1, "'quota' property cannot be inherited\n"
                         "use 'zfs set quota=none' to clear\n"),
    # master: "could not find any snapshots to destroy; check snapshot names."
    "destroy missing snapshot": (1, "cannot open 'P/r@nope': dataset does not exist\n"),
    # master: the same message, then the usage text, exit 2 (zfs_do_snapshot jumps to usage)
    "snapshot of missing dataset": (1, "cannot open 'P/none': dataset does not exist\n"),
    # master's destroy lists dependents as zfs_iter_dependents (children's subtrees, then
    # snapshots); zfs-fuse lists them in its own order. Compared as sets below.
}
UNORDERED_STDERR = {"destroy with children"}


def _run(command: str, env: dict, mp: str, pool: str) -> tuple[int, str, str]:
    """Run one step; (exit code, stdout, stderr) with the pool named P mounted at /P."""
    proc = subprocess.run(["bash", "-c", re.sub(r"\bP\b", pool, command)],
                          env={**env, "MP": mp}, capture_output=True, timeout=120)

    def norm(text: bytes) -> str:
        text = text.decode().replace(mp, "/P").replace(pool, "P")
        # Whether `zfs send` still writes when `recv` refuses and exits is a race on real ZFS.
        text = re.sub(r"warning: cannot send '[^']*': Broken pipe\n", "", text)
        # Which snapshot `recv -F` names follows ZAP hash order on real ZFS: any will do.
        return re.sub(r"destination has snapshots \(eg\. P/(\w+)@\w+\)",
                      r"destination has snapshots (eg. P/\1@...)", text)
    return proc.returncode, norm(proc.stdout), norm(proc.stderr)


def _zfs_fuse_skip_reason() -> str | None:
    if not shutil.which("zfs-fuse") or not Path("/usr/sbin/zpool").exists():
        return "zfs-fuse is not installed (apt-get install zfs-fuse)"
    if not Path("/dev/fuse").exists():
        return "no /dev/fuse: zfs-fuse cannot mount datasets here"
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        return "/dev/fuse is not usable by this user"
    return None


@pytest.fixture(scope="module")
def zfs_fuse(tmp_path_factory):
    """A running zfs-fuse daemon (ours, stopped after, or one already answering)."""
    reason = _zfs_fuse_skip_reason()
    if reason:
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("zfs-fuse")
    daemon = None
    if subprocess.run(["zpool", "list"], capture_output=True).returncode != 0:
        log = open(work / "daemon.log", "wb")
        daemon = subprocess.Popen(["zfs-fuse", "-n", "--no-kstat-mount"], stdout=log,
                                  stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while subprocess.run(["zpool", "list"], capture_output=True).returncode != 0:
            if daemon.poll() is not None or time.monotonic() > deadline:
                daemon.kill()
                daemon.wait()
                pytest.skip("zfs-fuse did not start: " + (work / "daemon.log").read_text()[-300:])
            time.sleep(0.2)
    yield work
    if daemon:
        daemon.terminate()
        try:
            daemon.wait(timeout=15)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()


@pytest.fixture
def real_pool(zfs_fuse):
    pool = "labct" + uuid.uuid4().hex[:6]
    disk, mnt = zfs_fuse / f"{pool}.img", zfs_fuse / f"{pool}-mnt"
    with open(disk, "wb") as f:
        f.truncate(128 << 20)
    proc = subprocess.run(["zpool", "create", "-m", str(mnt), pool, str(disk)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"zpool create failed on zfs-fuse: {proc.stderr.strip()}")
    yield pool, str(mnt)
    subprocess.run(["zpool", "destroy", "-f", pool], capture_output=True)
    disk.unlink(missing_ok=True)


def _sim_env(tmp_path: Path, root: Path) -> dict:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "zfs"
    wrapper.write_text(f"#!/bin/bash\nLAB_ZFS_ROOT={root} exec /usr/bin/python3 "
                       f"{ROOT / 'lab/core/tools/zfs.py'} \"$@\"\n")
    wrapper.chmod(0o755)
    return {"PATH": f"{bin_dir}:/usr/bin:/bin", "LANG": "C.UTF-8"}


def test_simulator_matches_zfs_fuse(real_pool, tmp_path):
    pool, real_mp = real_pool
    sim_root = tmp_path / "node"
    sim_root.mkdir()
    Zfs(sim_root).create_pool(pool, props={"mountpoint": f"/{pool}"})  # as `zpool create -m`
    sim_env = _sim_env(tmp_path, sim_root)
    real_env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
    mismatches = []
    for step, command in STEPS:
        real_command = (f"zfs unmount {REMOUNTS[step]} && sleep 0.5; {command}; rc=$?; "
                        "zfs mount -a; exit $rc" if step in REMOUNTS else command)
        real = _run(real_command, real_env, real_mp, pool)
        sim = _run(command, sim_env, str(sim_root / pool), pool)
        if step in KNOWN_DIFFERENCES:
            assert (real[0], real[2]) == KNOWN_DIFFERENCES[step], (step, real)
            assert sim[0] != 0, (step, sim)
            continue
        if step in UNORDERED_STDERR:
            real = (real[0], real[1], sorted(real[2].splitlines()))
            sim = (sim[0], sim[1], sorted(sim[2].splitlines()))
        if real != sim:
            mismatches.append(f"{step}: {command}\n  zfs-fuse:  {real}\n  simulator: {sim}")
    assert not mismatches, "\n".join(mismatches)
