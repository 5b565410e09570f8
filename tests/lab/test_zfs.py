"""The lab's zfs simulator: the CLI run as a real process on a temporary node root, every
answer checked against OpenZFS's wording and exit codes; and the v1.22 world's pools."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab.core.tools.zfs import Zfs

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


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
