"""The lab's zfs simulator: the CLI run as a real process on a temporary node root, every
answer checked against OpenZFS's wording and exit codes; and the v1.22 world's pools."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab.core.tools.zfs import Zfs, ZfsError

ROOT = Path(__file__).resolve().parents[2]
ZFS = ROOT / "lab" / "core" / "tools" / "zfs.py"


def zfs(root: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    """`zfs ARGS` on the node rooted at `root` (stdout as bytes, stderr as text)."""
    proc = subprocess.run(["/usr/bin/python3", str(ZFS), *args], input=stdin or b"",
                          capture_output=True, env={"LAB_ZFS_ROOT": str(root), "PATH": "/usr/bin"},
                          timeout=60)
    proc.err = proc.stderr.decode()
    proc.out = proc.stdout.decode("utf-8", "surrogateescape")
    return proc


def ok(root: Path, *args: str, stdin: bytes | None = None) -> str:
    proc = zfs(root, *args, stdin=stdin)
    assert proc.returncode == 0, (args, proc.err)
    return proc.out


def tree_digest(path: Path) -> dict[str, str]:
    """{relative path: content digest or link target or 'dir'} of a directory tree."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(path))
            if p.is_symlink():
                out[rel] = "-> " + os.readlink(p)
            elif p.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture
def node(tmp_path) -> Path:
    root = tmp_path / "node"
    root.mkdir()
    Zfs(root).create_pool("tank")
    return root


def test_create_parents_makes_directories_and_lists_in_name_order(node):
    ok(node, "create", "-p", "tank/a/b")
    ok(node, "create", "tank/a-z")
    assert (node / "tank/a/b").is_dir()
    # strcmp order of whole names, as zfs_compare: '-' sorts before '/'.
    assert ok(node, "list", "-H", "-o", "name,mountpoint") == (
        "tank\t/tank\ntank/a\t/tank/a\ntank/a-z\t/tank/a-z\ntank/a/b\t/tank/a/b\n")
    proc = zfs(node, "create", "tank/x/y")
    assert (proc.returncode, proc.err) == (1, "cannot create 'tank/x/y': parent does not exist\n")
    proc = zfs(node, "create", "tank/a")
    assert (proc.returncode, proc.err) == (1, "cannot create 'tank/a': dataset already exists\n")
    proc = zfs(node, "create", "nopool/a")
    assert (proc.returncode, proc.err) == (1, "cannot create 'nopool/a': no such pool 'nopool'\n")


def test_rename_moves_files_children_and_snapshots(node):
    ok(node, "create", "-p", "tank/a/b")
    (node / "tank/a/top.txt").write_text("top\n")
    (node / "tank/a/b/child.txt").write_text("child\n")
    ok(node, "snapshot", "-r", "tank/a@s1")
    ok(node, "rename", "tank/a", "tank/c")
    assert not (node / "tank/a").exists()
    assert (node / "tank/c/top.txt").read_text() == "top\n"
    assert (node / "tank/c/b/child.txt").read_text() == "child\n"
    assert ok(node, "list", "-H", "-r", "-t", "all", "-o", "name", "tank/c") == (
        "tank/c\ntank/c@s1\ntank/c/b\ntank/c/b@s1\n")
    ok(node, "rename", "-p", "tank/c/b", "tank/deep/er/b")
    assert (node / "tank/deep/er/b/child.txt").read_text() == "child\n"
    proc = zfs(node, "rename", "tank/c", "tank/c/inside")
    assert (proc.returncode, proc.err) == (1, "cannot rename to 'tank/c/inside': New dataset "
                                              "name cannot be a descendant of current dataset name\n")
    proc = zfs(node, "rename", "tank/c", "tank/deep")
    assert (proc.returncode, proc.err) == (1, "cannot rename 'tank/c': dataset already exists\n")
    proc = zfs(node, "rename", "tank/nope", "tank/x")
    assert (proc.returncode, proc.err) == (1, "cannot open 'tank/nope': dataset does not exist\n")
    proc = zfs(node, "rename", "tank/c", "tank/no/parent")
    assert (proc.returncode, proc.err) == (1, "cannot create 'tank/no/parent': parent does not exist\n")


def test_mountpoint_set_and_inherit_move_the_data(node):
    ok(node, "create", "-p", "tank/m/kid")
    (node / "tank/m/kid/f").write_text("data\n")
    ok(node, "set", "mountpoint=/srv/m", "tank/m")
    assert (node / "srv/m/kid/f").read_text() == "data\n"
    assert ok(node, "get", "-H", "-o", "value,source", "mountpoint", "tank/m/kid") == (
        "/srv/m/kid\tinherited from tank/m\n")
    ok(node, "set", "mountpoint=none", "tank/m/kid")
    assert ok(node, "get", "-H", "-o", "value", "mounted", "tank/m/kid") == "no\n"
    assert not (node / "srv/m/kid").exists()
    ok(node, "inherit", "mountpoint", "tank/m/kid")
    ok(node, "inherit", "mountpoint", "tank/m")
    assert (node / "tank/m/kid/f").read_text() == "data\n"
    proc = zfs(node, "set", "mountpoint=relative", "tank/m")
    assert (proc.returncode, proc.err) == (1, "cannot set property for 'tank/m': 'mountpoint' "
                                              "must be an absolute path, 'none', or 'legacy'\n")


def test_mount_and_unmount_flip_mounted_as_openzfs_answers(node):
    ok(node, "create", "-p", "tank/ct/101")
    assert ok(node, "get", "-H", "-o", "value", "mounted", "tank/ct/101") == "yes\n"
    again = zfs(node, "mount", "tank/ct/101")
    assert (again.returncode, again.err) == (1, "cannot mount 'tank/ct/101': filesystem already mounted\n")
    ok(node, "umount", "tank/ct/101")
    assert ok(node, "get", "-H", "-o", "value", "mounted", "tank/ct/101") == "no\n"
    assert zfs(node, "unmount", "tank/ct/101").err == "cannot unmount 'tank/ct/101': not currently mounted\n"
    ok(node, "mount", "tank/ct/101")
    assert ok(node, "get", "-H", "-o", "value", "mounted", "tank/ct/101") == "yes\n"
    assert zfs(node, "mount", "tank/nosuch").err == "cannot open 'tank/nosuch': dataset does not exist\n"
    assert ok(node, "mount").splitlines() == ["tank         /tank", "tank/ct      /tank/ct", "tank/ct/101  /tank/ct/101"]
    assert zfs(node, "unmount").returncode == 2


def test_snapshots_are_hidden_copies_that_survive_later_writes(node):
    ok(node, "create", "tank/d")
    (node / "tank/d/f.txt").write_text("v1\n")
    ok(node, "snapshot", "tank/d@one")
    (node / "tank/d/f.txt").write_text("v2\n")
    (node / "tank/d/new.txt").write_text("new\n")
    ok(node, "snapshot", "tank/d@two")
    assert sorted(p.name for p in (node / "tank/d").iterdir()) == ["f.txt", "new.txt"]
    # Snapshot order is creation order, not name order; `list` shows the dataset first.
    ok(node, "snapshot", "tank/d@a-last")
    assert ok(node, "list", "-H", "-o", "name", "-t", "snapshot", "tank/d") == (
        "tank/d@one\ntank/d@two\ntank/d@a-last\n")
    assert ok(node, "list", "-H", "-o", "name", "-t", "all", "-r", "tank/d") == (
        "tank/d\ntank/d@one\ntank/d@two\ntank/d@a-last\n")
    # The default type list leaves snapshots out (listsnapshots=off) unless named.
    assert ok(node, "list", "-H", "-o", "name", "-r", "tank/d") == "tank/d\n"
    assert ok(node, "list", "-H", "-o", "name", "tank/d@one") == "tank/d@one\n"
    # What the first snapshot holds: receive it elsewhere and look.
    stream = ok_bytes(node, "send", "tank/d@one")
    ok(node, "receive", "tank/copy", stdin=stream)
    assert (node / "tank/copy/f.txt").read_text() == "v1\n"
    assert not (node / "tank/copy/new.txt").exists()
    proc = zfs(node, "snapshot", "tank/d@one")
    assert (proc.returncode, proc.err) == (1, "cannot create snapshot 'tank/d@one': "
                                              "dataset already exists\n")
    proc = zfs(node, "snapshot", "tank/missing@x")
    assert proc.returncode == 2
    assert proc.err.startswith("cannot open 'tank/missing': dataset does not exist\nusage:\n"
                               "\tsnapshot [-r] [-o property=value] ...")


def ok_bytes(root: Path, *args: str) -> bytes:
    proc = zfs(root, *args)
    assert proc.returncode == 0, (args, proc.err)
    return proc.stdout


def test_snapshot_rename(node):
    ok(node, "create", "-p", "tank/s/kid")
    ok(node, "snapshot", "-r", "tank/s@a")
    ok(node, "rename", "tank/s@a", "tank/s@b")
    ok(node, "rename", "tank/s@b", "c")  # the short form
    assert ok(node, "list", "-H", "-o", "name", "-t", "snapshot", "-r", "tank/s") == (
        "tank/s@c\ntank/s/kid@a\n")
    ok(node, "rename", "-r", "tank/s@a", "tank/s@z")  # only the child has @a
    assert ok(node, "list", "-H", "-o", "name", "-t", "snapshot", "-r", "tank/s") == (
        "tank/s@c\ntank/s/kid@z\n")
    proc = zfs(node, "rename", "tank/s@c", "tank/other@c")
    assert (proc.returncode, proc.err) == (1, "cannot rename to 'tank/other@c': snapshots must "
                                              "be part of same dataset\n")
    proc = zfs(node, "rename", "-r", "tank/s", "tank/t")
    assert proc.returncode == 2
    assert proc.err.startswith("source dataset for recursive rename must be a snapshot\nusage:\n")


def test_destroy_refusals_and_recursion(node):
    ok(node, "create", "-p", "tank/p/c1")
    ok(node, "create", "tank/p/c2")
    ok(node, "snapshot", "tank/p@s", "tank/p/c1@s")
    proc = zfs(node, "destroy", "tank/p")
    assert (proc.returncode, proc.err) == (1, "cannot destroy 'tank/p': filesystem has children\n"
                                              "use '-r' to destroy the following datasets:\n"
                                              "tank/p/c1@s\ntank/p/c1\ntank/p/c2\ntank/p@s\n")
    proc = zfs(node, "destroy", "tank/p@nope")
    assert (proc.returncode, proc.err) == (
        1, "could not find any snapshots to destroy; check snapshot names.\n")
    proc = zfs(node, "destroy", "tank/nope")
    assert (proc.returncode, proc.err) == (1, "cannot open 'tank/nope': dataset does not exist\n")
    proc = zfs(node, "destroy", "tank")
    assert (proc.returncode, proc.err) == (1, "cannot destroy 'tank': operation does not apply "
                                              "to pools\nuse 'zfs destroy -r tank' to destroy all "
                                              "datasets in the pool\nuse 'zpool destroy tank' to "
                                              "destroy the pool itself\n")
    proc = zfs(node, "destroy")
    assert proc.returncode == 2 and proc.err.startswith("missing dataset argument\nusage:\n")
    ok(node, "destroy", "-r", "tank/p@s")
    assert ok(node, "list", "-H", "-o", "name", "-t", "snapshot") == ""
    ok(node, "destroy", "-r", "tank/p")
    assert not (node / "tank/p").exists()
    assert ok(node, "list", "-H", "-o", "name") == "tank\n"


def test_list_and_get_formats(node):
    ok(node, "create", "-o", "quota=10G", "-o", "sharenfs=rw=@172.16.0.0/23", "tank/q")
    ok(node, "create", "tank/q/kid")
    assert ok(node, "list", "-o", "name,quota,sharenfs", "-r", "tank/q") == (
        "NAME        QUOTA  SHARENFS\n"
        "tank/q        10G  rw=@172.16.0.0/23\n"
        "tank/q/kid   none  rw=@172.16.0.0/23\n")
    assert ok(node, "list", "-H", "-p", "-o", "name,quota", "-r", "tank/q") == (
        "tank/q\t10737418240\ntank/q/kid\t0\n")
    assert ok(node, "get", "-p", "quota", "tank/q") == (
        "NAME    PROPERTY  VALUE        SOURCE\n"
        "tank/q  quota     10737418240  local\n")
    assert ok(node, "get", "sharenfs,quota", "tank/q/kid") == (
        "NAME        PROPERTY  VALUE              SOURCE\n"
        "tank/q/kid  sharenfs  rw=@172.16.0.0/23  inherited from tank/q\n"
        "tank/q/kid  quota     none               default\n")
    assert ok(node, "get", "-H", "-o", "name,property,value,source", "compression,sync",
              "tank/q") == "tank/q\tcompression\toff\tdefault\ntank/q\tsync\tstandard\tdefault\n"
    ok(node, "set", "lab:note=hello", "tank/q")
    assert ok(node, "get", "-H", "-r", "-o", "name,value,source", "lab:note", "tank/q") == (
        "tank/q\thello\tlocal\ntank/q/kid\thello\tinherited from tank/q\n")
    assert ok(node, "get", "-H", "-o", "value", "lab:other", "tank/q") == "-\n"
    proc = zfs(node, "get", "bogus", "tank/q")
    assert proc.returncode == 2
    assert proc.err.startswith("bad property list: invalid property 'bogus'\nusage:\n\tget [-rHp]")
    proc = zfs(node, "list", "tank/none")
    assert (proc.returncode, proc.out, proc.err) == (
        1, "", "cannot open 'tank/none': dataset does not exist\n")
    proc = zfs(node, "list", "-t", "snapshot")
    assert (proc.returncode, proc.out, proc.err) == (0, "", "no datasets available\n")
    proc = zfs(node, "list", "-x")
    assert proc.returncode == 2 and proc.err.startswith("invalid option 'x'\nusage:\n\tlist ")


def test_set_and_inherit_sharenfs_and_quota(node):
    ok(node, "create", "-p", "tank/n/kid")
    ok(node, "set", "sharenfs=rw=@10.0.0.0/8,no_root_squash", "quota=1T", "tank/n")
    assert ok(node, "get", "-H", "-o", "value,source", "sharenfs", "tank/n/kid") == (
        "rw=@10.0.0.0/8,no_root_squash\tinherited from tank/n\n")
    ok(node, "inherit", "sharenfs", "tank/n")
    assert ok(node, "get", "-H", "-o", "value,source", "sharenfs", "tank/n/kid") == "off\tdefault\n"
    proc = zfs(node, "inherit", "quota", "tank/n")
    assert (proc.returncode, proc.err) == (1, "'quota' property cannot be inherited\n"
                                              "use 'zfs set quota=none' to clear\n"
                                              "use 'zfs inherit -S quota' to revert to received value\n")
    ok(node, "set", "quota=none", "tank/n")
    assert ok(node, "get", "-H", "-o", "value,source", "quota", "tank/n") == "none\tlocal\n"
    assert ok(node, "get", "-H", "-o", "value,source", "quota", "tank/n/kid") == "none\tdefault\n"
    for bad, message in (("quota=lots", "bad numeric value 'lots'"),
                         ("sync=sometimes", "'sync' must be one of 'standard | always | disabled'"),
                         ("used=5", "'used' is readonly")):
        proc = zfs(node, "set", bad, "tank/n")
        assert (proc.returncode, proc.err) == (1, f"cannot set property for 'tank/n': {message}\n")


def _dataset_with_history(node: Path) -> Path:
    ok(node, "create", "tank/src")
    src = node / "tank/src"
    (src / ".hidden").write_text("dot\n")
    (src / "sub dir").mkdir()
    (src / "sub dir/line\nbreak").write_text("odd name\n")
    (src / "link").symlink_to("sub dir")
    ok(node, "snapshot", "tank/src@a")
    (src / "more.txt").write_text("more\n")
    ok(node, "snapshot", "tank/src@b")
    (src / ".hidden").write_text("changed\n")
    ok(node, "snapshot", "tank/src@c")
    return src


def test_send_receive_full_and_incremental(node):
    src = _dataset_with_history(node)
    ok(node, "create", "tank/dst")
    full = zfs(node, "send", "-v", "tank/src@a")
    assert full.returncode == 0
    assert full.err.startswith("full send of tank/src@a estimated size is ")
    assert "\ntotal estimated size is " in full.err
    ok(node, "receive", "tank/dst/copy", stdin=full.stdout)
    ok(node, "receive", "tank/dst/copy", stdin=ok_bytes(node, "send", "-I", "@a", "tank/src@c"))
    assert tree_digest(node / "tank/dst/copy") == tree_digest(src)
    assert ok(node, "list", "-H", "-o", "name", "-t", "snapshot", "tank/dst/copy") == (
        "tank/dst/copy@a\ntank/dst/copy@b\ntank/dst/copy@c\n")
    # Snapshot identity survives the trip (guid), so a later -i finds its base.
    guid = Zfs(node)
    with guid.batch() as st:
        assert st["snapshots"]["tank/src@c"]["guid"] == st["snapshots"]["tank/dst/copy@c"]["guid"]
    (src / "more.txt").write_text("even more\n")
    ok(node, "snapshot", "tank/src@d")
    ok(node, "receive", "-u", "tank/dst/copy", stdin=ok_bytes(node, "send", "-i", "tank/src@c",
                                                               "tank/src@d"))
    assert tree_digest(node / "tank/dst/copy") == tree_digest(src)
    assert ok(node, "get", "-H", "-o", "value", "mounted", "tank/dst/copy") == "no\n"


def test_receive_refusals(node):
    _dataset_with_history(node)
    full = ok_bytes(node, "send", "tank/src@a")
    incr = ok_bytes(node, "send", "-i", "@b", "tank/src@c")
    ok(node, "create", "tank/exists")
    proc = zfs(node, "receive", "tank/exists", stdin=full)
    assert (proc.returncode, proc.err) == (1, "cannot receive new filesystem stream: destination "
                                              "'tank/exists' exists\nmust specify -F to overwrite it\n")
    ok(node, "snapshot", "tank/exists@x")
    proc = zfs(node, "receive", "-F", "tank/exists", stdin=full)
    assert (proc.returncode, proc.err) == (1, "cannot receive new filesystem stream: destination "
                                              "has snapshots (eg. tank/exists@x)\n"
                                              "must destroy them to overwrite it\n")
    ok(node, "create", "tank/empty")
    ok(node, "receive", "-F", "tank/empty", stdin=full)  # osctld's case: an empty dataset
    assert (node / "tank/empty/.hidden").read_text() == "dot\n"
    proc = zfs(node, "receive", "tank/missing", stdin=incr)
    assert (proc.returncode, proc.err) == (1, "cannot receive incremental stream: destination "
                                              "'tank/missing' does not exist\n")
    proc = zfs(node, "receive", "tank/empty", stdin=incr)  # has @a, the stream is from @b
    assert (proc.returncode, proc.err) == (1, "cannot receive incremental stream: most recent "
                                              "snapshot of tank/empty does not\n"
                                              "match incremental source\n")
    ok(node, "receive", "tank/empty", stdin=ok_bytes(node, "send", "-i", "@a", "tank/src@b"))
    (node / "tank/empty/local-change").write_text("x\n")
    proc = zfs(node, "receive", "tank/empty", stdin=incr)
    assert (proc.returncode, proc.err) == (1, "cannot receive incremental stream: destination "
                                              "tank/empty has been modified\n"
                                              "since most recent snapshot\n")
    ok(node, "receive", "-F", "tank/empty", stdin=incr)  # -F rolls back first
    assert not (node / "tank/empty/local-change").exists()
    proc = zfs(node, "send", "-i", "@nope", "tank/src@c")
    assert (proc.returncode, proc.err) == (1, "warning: cannot send 'tank/src@c': incremental "
                                              "source (tank/src@nope) does not exist\n")
    proc = zfs(node, "send", "tank/src@nope")
    assert (proc.returncode, proc.err) == (1, "cannot open 'tank/src@nope': dataset does not exist\n")


def test_state_survives_concurrent_commands(node):
    procs = [subprocess.Popen(["/usr/bin/python3", str(ZFS), "create", f"tank/c{i}"],
                              env={"LAB_ZFS_ROOT": str(node)}) for i in range(8)]
    assert [p.wait(timeout=60) for p in procs] == [0] * 8
    assert ok(node, "list", "-H", "-o", "name").splitlines() == ["tank"] + [f"tank/c{i}"
                                                                          for i in range(8)]


def test_lab_world_pools(lab_world):
    """The seeded v1.22 world over the lab's own node sandbox: backups, NAS files, sharenfs."""
    from lab.core.nodes import run_in_node
    from lab.vpsadmin.pools import backup_snapshot_name
    from tests.helpers import query

    lab = lab_world(wait_for_queue=False)
    backup1, storage1 = lab.cfg.node_root("backup1"), lab.cfg.node_root("storage1")

    def sh(root, command):
        proc = run_in_node(root, command)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.decode("utf-8", "surrogateescape")

    exports = [str(r[0]) for r in query(lab, "SELECT dataset FROM storage_export "
                                             "WHERE root_id = 2 AND `default` = 'no'")]
    names = sh(backup1, "zfs list -H -o name -r backup").splitlines()
    assert names[:3] == ["backup", "backup/vpsfree.cz", "backup/vpsfree.cz/backup"]
    assert sorted(names[3:]) == sorted(f"backup/vpsfree.cz/backup/{e}" for e in exports)
    expected = sorted(f"backup/vpsfree.cz/backup/{vps}@{backup_snapshot_name(ts)}"
                      for vps, ts in query(lab, "SELECT vps_id, timestamp FROM vps_backups"))
    listed = sh(backup1, "zfs list -H -o name -t snapshot").splitlines()
    assert sorted(listed) == expected and expected
    vps, ts = query(lab, "SELECT vps_id, MAX(timestamp) FROM vps_backups GROUP BY vps_id "
                         "ORDER BY vps_id LIMIT 1")[0]
    assert sh(backup1, f"zfs get -H -p -o value creation "
                       f"backup/vpsfree.cz/backup/{vps}@{backup_snapshot_name(ts)}") == f"{ts}\n"
    assert sh(backup1, f"cat /backup/vpsfree.cz/backup/{vps}/var/log/backup-time") == (
        backup_snapshot_name(ts) + "\n")
    assert sh(backup1, "zfs get -H -o value,source sharenfs backup/vpsfree.cz/backup") == (
        "ro=@172.16.0.0/23,no_root_squash,no_subtree_check\tlocal\n")
    member = query(lab, "SELECT dataset FROM storage_export WHERE root_id = 1 "
                        "AND `default` = 'no' AND dataset LIKE '%/private'")[0][0].split("/")[0]
    nas = f"/storage/vpsfree.cz/nas/{member}"
    assert sh(storage1, f"cat {nas}/.config/app.ini").startswith("[app]\n")
    listing = sh(storage1, f"ls -A {nas}")
    assert ".profile" in listing and "photo album 2016" in listing
    assert sh(storage1, f"cat {nas}/private/.secret").startswith("token-")
    assert sh(storage1, f"zfs get -H -o value,source sharenfs storage/vpsfree.cz/nas/{member}") == (
        "rw=@172.16.0.0/23,no_root_squash,no_subtree_check\tinherited from "
        "storage/vpsfree.cz/nas\n")
    node1 = lab.cfg.node_root("node1")
    assert sh(node1, "zfs get -H -o value sharenfs vz/private") == "off\n"
    veids = [r[0] for r in query(lab, "SELECT vps_id FROM vps WHERE vps_server = 1")]
    private = sh(node1, "zfs list -H -o name,mountpoint -r vz/private").splitlines()
    assert private[1:] == sorted((f"vz/private/{v}\t/vz/private/{v}" for v in veids),
                                 key=str.encode)
    assert sh(node1, f"cat /vz/private/{veids[0]}/etc/hostname").strip()
    assert sh(node1, "zpool list -H -o name") == "vz\n"


# -- snapshots that cost what changed, delta streams, resumable receive -------------------------
OLD = time.time() - 3600  # data at rest: files are shared by hard link, not copied


def put(path: Path, data: bytes, mtime: float | None = OLD, mode: int = 0o644) -> None:
    """Replace a file as lab tools must (a new file renamed over it), optionally backdated."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.chmod(mode)
    if mtime is not None:
        os.utime(tmp, (mtime, mtime))
    os.replace(tmp, path)


def tree_stats(path: Path) -> dict[str, tuple]:
    """{relative path: (mode, mtime_ns, content digest or link target)} of a tree."""
    out = {}
    for rel, digest in tree_digest(path).items():
        info = os.lstat(path / rel)
        mtime = info.st_mtime_ns if not stat.S_ISDIR(info.st_mode) else 0  # see the end
        out[rel] = (info.st_mode, mtime, digest)
    for dirpath, _dirs, _files in os.walk(path):  # directories last: listing them is no change
        if dirpath != str(path):
            out[os.path.relpath(dirpath, path)] += (os.lstat(dirpath).st_mtime_ns,)
    return out


def disk_bytes(root: Path) -> int:
    """Blocks on disk under `root`, each inode counted once."""
    seen, total = set(), 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames + ["."]:
            info = os.lstat(os.path.join(dirpath, name))
            if (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                total += info.st_blocks * 512
    return total


def test_snapshots_cost_what_changed(node):
    ok(node, "create", "tank/big")
    big = node / "tank/big"
    for i in range(20):
        put(big / f"data/{i:02}.bin", os.urandom(1 << 20))
    data = disk_bytes(big)
    for n in range(10):
        put(big / f"log/day-{n}", f"day {n}\n".encode() * 100, mtime=None)  # written just now
        put(big / "data/00.bin", os.urandom(64 << 10) + b"%d" % n)
        ok(node, "snapshot", f"tank/big@s{n}")
    total = disk_bytes(node)
    print(f"20 MiB dataset, 10 snapshots: {total / (1 << 20):.1f} MiB on disk")
    assert total < 2 * data, (total, data)
    # `used` of a snapshot: what only it holds, its own 00.bin (the newest shares the live
    # one) and its copies of the logs (written just now, so copied, not linked).
    used = ok(node, "list", "-Hp", "-o", "name,used,referenced", "-t", "snapshot", "tank/big")
    rows = [line.split("\t") for line in used.splitlines()]
    assert [int(u) for _n, u, _r in rows] == [(64 << 10) + 1 + 600 * (n + 1) for n in range(9)] + [
        6000]
    assert int(rows[0][2]) > 19 << 20


def test_incremental_stream_carries_the_delta(node):
    ok(node, "create", "tank/big")
    big = node / "tank/big"
    for i in range(3):
        put(big / f"{i}.bin", os.urandom(10 << 20))
    ok(node, "snapshot", "tank/big@a")
    put(big / "1.bin", os.urandom(10 << 20))
    (big / "2.bin").unlink()
    ok(node, "snapshot", "tank/big@b")
    proc = zfs(node, "send", "-v", "-i", "@a", "tank/big@b")
    assert proc.returncode == 0, proc.err
    assert 10 << 20 < len(proc.stdout) < (10 << 20) + 4096
    assert proc.err.startswith("send from @a to tank/big@b estimated size is 10M\n"
                               "total estimated size is 10M\n"
                               "TIME        SENT   SNAPSHOT tank/big@b\n")
    full = ok_bytes(node, "send", "tank/big@a")
    assert 30 << 20 < len(full) < (30 << 20) + 4096
    ok(node, "receive", "tank/copy", stdin=full)
    ok(node, "receive", "tank/copy", stdin=proc.stdout)
    assert tree_digest(node / "tank/copy") == tree_digest(big)


def test_receive_of_intermediates_gives_every_snapshot_identically(node):
    ok(node, "create", "tank/src")
    src, seen = node / "tank/src", {}
    steps = [
        lambda: (put(src / "keep", b"kept\n"), put(src / "dir/a", b"a\n"),
                 (src / "link").symlink_to("dir/a"), put(src / "gone", b"x" * 5000)),
        lambda: ((src / "gone").unlink(), put(src / "dir/b", b"b\n", mtime=None),
                 put(src / "keep", b"kept\n", mode=0o600)),
        lambda: (shutil.rmtree(src / "dir"), put(src / "dir", b"a file now\n"),
                 (src / "link").unlink(), (src / "link").symlink_to("keep")),
        lambda: ((src / "dir").unlink(), put(src / "dir/deep/er/x", b"x\n"),
                 (src / "empty").mkdir(), os.chmod(src / "dir/deep", 0o700)),
    ]
    for n, step in enumerate(steps):
        step()
        ok(node, "snapshot", f"tank/src@s{n}")
        seen[n] = tree_stats(src)
    ok(node, "receive", "tank/dst", stdin=ok_bytes(node, "send", "tank/src@s0"))
    ok(node, "receive", "tank/dst", stdin=ok_bytes(node, "send", "-I", "@s0", "tank/src@s3"))
    assert tree_stats(node / "tank/dst") == seen[3]
    for n in range(4):  # each received snapshot, sent on as a full stream, is the original
        ok(node, "receive", f"tank/check{n}", stdin=ok_bytes(node, "send", f"tank/dst@s{n}"))
        assert tree_stats(node / f"tank/check{n}") == seen[n], n


def test_incremental_receives_change_only_what_differs(node):
    """Each one-step incremental receive updates the live tree in place: the result is the
    sender's tree, stats and all, and a directory the stream leaves alone is the same
    directory (not rebuilt). A destination modified since its snapshot is refused without
    -F; with -F it is rolled back first, and a child dataset inside keeps its files."""
    ok(node, "create", "tank/src")
    src = node / "tank/src"
    put(src / "keep/k", b"kept\n")
    put(src / "dir/a", b"a\n")
    (src / "link").symlink_to("dir/a")
    ok(node, "snapshot", "tank/src@s0")
    ok(node, "receive", "tank/dst", stdin=ok_bytes(node, "send", "tank/src@s0"))
    untouched = os.lstat(node / "tank/dst/keep").st_ino
    steps = [
        lambda: put(src / "dir/b", b"b\n", mtime=None),
        lambda: (shutil.rmtree(src / "dir"), put(src / "dir", b"a file now\n"),
                 (src / "link").unlink(), (src / "link").symlink_to("keep")),
        lambda: ((src / "dir").unlink(), put(src / "dir/deep/x", b"x\n"),
                 os.chmod(src / "dir/deep", 0o700)),
    ]
    for n, step in enumerate(steps, 1):
        step()
        ok(node, "snapshot", f"tank/src@s{n}")
        ok(node, "receive", "tank/dst",
           stdin=ok_bytes(node, "send", "-i", f"@s{n - 1}", f"tank/src@s{n}"))
        assert tree_stats(node / "tank/dst") == tree_stats(src), n
        assert os.lstat(node / "tank/dst/keep").st_ino == untouched, n

    ok(node, "create", "tank/dst/kid")  # its mountpoint directory modifies tank/dst
    put(node / "tank/dst/kid/own", b"the child's\n")
    (node / "tank/dst/stray").write_text("written on the destination\n")
    put(src / "late", b"late\n")
    ok(node, "snapshot", "tank/src@s4")
    stream = ok_bytes(node, "send", "-i", "@s3", "tank/src@s4")
    refused = zfs(node, "receive", "tank/dst", stdin=stream)
    assert refused.returncode == 1
    assert "destination tank/dst has been modified\nsince most recent snapshot" in refused.err
    ok(node, "receive", "-F", "tank/dst", stdin=stream)
    assert not (node / "tank/dst/stray").exists()
    assert (node / "tank/dst/late").read_bytes() == b"late\n"
    assert (node / "tank/dst/kid/own").read_bytes() == b"the child's\n"

def test_an_in_place_write_into_a_snapshot_file_is_caught(node):
    ok(node, "create", "tank/d")
    put(node / "tank/d/shared", b"version 1\n")
    put(node / "tank/d/replaced", b"version 1\n")
    ok(node, "snapshot", "tank/d@a")
    put(node / "tank/d/replaced", b"version 2\n")  # a new inode: the snapshot keeps the old
    ok(node, "receive", "tank/r", stdin=ok_bytes(node, "send", "tank/d@a"))
    assert (node / "tank/r/replaced").read_text() == "version 1\n"
    with open(node / "tank/d/shared", "r+b") as f:  # into the inode the snapshot shares
        f.write(b"VERSION")
    message = ("lab zfs: snapshot tank/d@a was changed by an in-place write to /tank/d/shared; "
               "lab tools must replace files (write a new file and rename it), not write into "
               "them\n")
    proc = zfs(node, "send", "tank/d@a")
    assert (proc.returncode, proc.err, proc.stdout) == (1, message, b"")
    with pytest.raises(ZfsError) as caught:
        Zfs(node).rollback("tank/d@a")
    assert caught.value.message + "\n" == message
    assert (node / "tank/d/shared").read_bytes() == b"VERSION 1\n"  # nothing was rolled back


def _resumable_source(node: Path) -> bytes:
    ok(node, "create", "tank/src")
    for i in range(16):
        put(node / f"tank/src/f{i:02}", os.urandom(64 << 10))
    (node / "tank/src/link").symlink_to("f00")
    ok(node, "snapshot", "tank/src@a")
    return ok_bytes(node, "send", "tank/src@a")


TOKEN = r"1-[0-9a-f]+-[0-9a-f]+-[0-9a-f]+"


def test_resumable_receive_of_a_cut_full_stream(node):
    full = _resumable_source(node)
    begun = full.index(b"\n", full.index(b"\n", 20) + 1) + 1  # magic, header, begin record
    for k, cut in enumerate((begun + 5, len(full) // 4, len(full) // 2, len(full) - 10)):
        target = f"tank/r{k}"
        proc = zfs(node, "receive", "-s", target, stdin=full[:cut])
        token = ok(node, "get", "-H", "-o", "value", "receive_resume_token", target).strip()
        assert re.fullmatch(TOKEN, token), (cut, token)
        assert (proc.returncode, proc.err) == (
            1, "cannot receive new filesystem stream: checksum mismatch or incomplete stream.\n"
               "Partially received snapshot is saved.\nA resuming stream can be generated on "
               f"the sending system by running:\n    zfs send -t {token}\n")
        # The new filesystem exists, unmounted, without the snapshot's data or the snapshot.
        assert ok(node, "list", "-H", "-o", "name,mounted", "-t", "all", "-r", target) == (
            f"{target}\tno\n")
        assert not any((node / target).iterdir())
        rest = ok_bytes(node, "send", "-t", token)
        assert len(rest) <= len(full) - cut + (64 << 10) + 1024
        ok(node, "receive", "-s", target, stdin=rest)
        assert tree_digest(node / target) == tree_digest(node / "tank/src")
        assert ok(node, "get", "-H", "-o", "value", "receive_resume_token,mounted", target) == (
            "-\nyes\n")
        assert ok(node, "list", "-H", "-o", "name", "-t", "snapshot", target) == f"{target}@a\n"
    assert not any((node / "var/lib/lab/zfs/recv").iterdir())
    # Cut twice: the second token carries on from where the resumed stream stopped.
    zfs(node, "receive", "-s", "tank/twice", stdin=full[:len(full) // 3])
    token = ok(node, "get", "-H", "-o", "value", "receive_resume_token", "tank/twice").strip()
    rest = ok_bytes(node, "send", "-t", token)
    zfs(node, "receive", "-s", "tank/twice", stdin=rest[:len(rest) // 2])
    second = ok(node, "get", "-H", "-o", "value", "receive_resume_token", "tank/twice").strip()
    assert second != token
    ok(node, "receive", "-s", "tank/twice", stdin=ok_bytes(node, "send", "-t", second))
    assert tree_digest(node / "tank/twice") == tree_digest(node / "tank/src")


def test_resume_state_refusals_and_abort(node):
    full = _resumable_source(node)
    zfs(node, "receive", "-s", "tank/r", stdin=full[:len(full) // 2])
    proc = zfs(node, "receive", "tank/r", stdin=full)
    assert (proc.returncode, proc.err) == (1, "cannot receive new filesystem stream: destination "
                                              "'tank/r' exists\nmust specify -F to overwrite it\n")
    proc = zfs(node, "receive", "-F", "tank/r", stdin=full)
    assert (proc.returncode, proc.err) == (1, "cannot receive new filesystem stream: destination "
                                              "tank/r contains partially-complete state from "
                                              "\"zfs receive -s\".\n")
    ok(node, "receive", "-A", "tank/r")  # a new filesystem's partial receive: all of it goes
    assert zfs(node, "list", "tank/r").returncode == 1
    proc = zfs(node, "receive", "-A", "tank/src")
    assert (proc.returncode, proc.err) == (1, "'tank/src' does not have any resumable receive "
                                              "state to abort\n")
    proc = zfs(node, "receive", "-A", "tank/nope")
    assert proc.returncode == 2 and proc.err.startswith(
        "cannot open 'tank/nope': dataset does not exist\nusage:\n\treceive ")
    # An incremental receive into an existing filesystem keeps its partial state hidden.
    ok(node, "receive", "tank/r", stdin=full)
    for i in range(8):
        put(node / f"tank/src/new{i}", os.urandom(64 << 10))
    ok(node, "snapshot", "tank/src@b")
    incr = ok_bytes(node, "send", "-i", "@a", "tank/src@b")
    before = tree_digest(node / "tank/r")
    proc = zfs(node, "receive", "-s", "tank/r", stdin=incr[:len(incr) // 2])
    assert proc.err.startswith("cannot receive incremental stream: checksum mismatch or "
                               "incomplete stream.\nPartially received snapshot is saved.\n")
    assert tree_digest(node / "tank/r") == before
    assert ok(node, "list", "-H", "-o", "name", "-t", "all", "-r", "tank/r") == "tank/r\ntank/r@a\n"
    proc = zfs(node, "receive", "tank/r", stdin=incr)
    assert (proc.returncode, proc.err) == (1, "cannot receive incremental stream: destination "
                                              "tank/r contains partially-complete state from "
                                              "\"zfs receive -s\".\n")
    ok(node, "receive", "-A", "tank/r")
    assert ok(node, "get", "-H", "-o", "value", "receive_resume_token", "tank/r") == "-\n"
    assert tree_digest(node / "tank/r") == before
    zfs(node, "receive", "-s", "tank/r", stdin=incr[:len(incr) // 3])
    token = ok(node, "get", "-H", "-o", "value", "receive_resume_token", "tank/r").strip()
    proc = zfs(node, "send", "-v", "-t", token)
    assert proc.err.startswith("resume token contents:\nnvlist version: 0\n")
    assert "send from @a to tank/src@b estimated size is " in proc.err
    ok(node, "receive", "-s", "tank/r", stdin=proc.stdout)
    assert tree_digest(node / "tank/r") == tree_digest(node / "tank/src")
    proc = zfs(node, "send", "-t", "1-zz-10-00")
    assert (proc.returncode, proc.err) == (1, "cannot resume send: resume token is corrupt "
                                              "(invalid format)\n")
    proc = zfs(node, "send", "-t", token[:-2] + "00")
    assert (proc.returncode, proc.err) == (1, "cannot resume send: resume token is corrupt "
                                              "(incorrect checksum)\n")
    ok(node, "destroy", "tank/src@b")
    proc = zfs(node, "send", "-t", token)
    assert (proc.returncode, proc.err) == (1, "cannot resume send: 'tank/src@b' used in the "
                                              "initial send no longer exists\n")


def test_a_cut_receive_without_s_leaves_nothing_partial(node):
    full = _resumable_source(node)
    proc = zfs(node, "receive", "tank/r", stdin=full[:len(full) // 2])
    assert (proc.returncode, proc.err) == (1, "cannot receive new filesystem stream: "
                                              "incomplete stream\n")
    assert zfs(node, "list", "tank/r").returncode == 1 and not (node / "tank/r").exists()
    assert not any((node / "var/lib/lab/zfs/recv").iterdir())
    # -I: the snapshots that arrived whole stay (as real ZFS), the cut one leaves no trace.
    ok(node, "receive", "tank/r", stdin=full)
    for name in ("b", "c"):
        put(node / f"tank/src/{name}", os.urandom(256 << 10))
        ok(node, "snapshot", f"tank/src@{name}")
    incr = ok_bytes(node, "send", "-I", "@a", "tank/src@c")
    zfs(node, "receive", "tank/r", stdin=incr[:len(incr) - 1000])
    assert ok(node, "list", "-H", "-o", "name", "-t", "snapshot", "tank/r") == "tank/r@a\ntank/r@b\n"
    assert (node / "tank/r/b").exists() and not (node / "tank/r/c").exists()
    assert ok(node, "get", "-H", "-o", "value", "receive_resume_token", "tank/r") == "-\n"
    assert not any((node / "var/lib/lab/zfs/recv").iterdir())


def test_a_throttled_send_shows_progress_and_a_killed_one_resumes(node):
    full = _resumable_source(node)  # about 1 MiB
    (node / "etc/lab").mkdir(parents=True)
    (node / "etc/lab/zfs-send-rate").write_text("400000\n")
    env = {"LAB_ZFS_ROOT": str(node), "PATH": "/usr/bin"}
    started = time.monotonic()
    sender = subprocess.Popen(["/usr/bin/python3", str(ZFS), "send", "-v", "tank/src@a"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    receiver = subprocess.Popen(["/usr/bin/python3", str(ZFS), "receive", "-s", "tank/r"],
                                stdin=sender.stdout, stderr=subprocess.PIPE, env=env)
    sender.stdout.close()
    time.sleep(1.6)
    sender.kill()  # the cut: the receiver reads EOF
    assert receiver.wait(timeout=30) == 1
    assert b"Partially received snapshot is saved." in receiver.stderr.read()
    err = sender.stderr.read().decode()
    assert err.startswith("full send of tank/src@a estimated size is 1M\n"
                          "total estimated size is 1M\nTIME        SENT   SNAPSHOT tank/src@a\n")
    assert re.search(r"^\d\d:\d\d:\d\d   [ 0-9.]{3,4}[KM]   tank/src@a$", err, re.MULTILINE), err
    token = ok(node, "get", "-H", "-o", "value", "receive_resume_token", "tank/r").strip()
    (node / "etc/lab/zfs-send-rate").unlink()
    rest = ok_bytes(node, "send", "-t", token)
    assert len(rest) < len(full) * 0.7
    ok(node, "receive", "-s", "tank/r", stdin=rest)
    assert tree_digest(node / "tank/r") == tree_digest(node / "tank/src")
    assert time.monotonic() - started < 20


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
