#!/usr/bin/python3
"""A `zfs` (and a tiny `zpool`) for lab nodes: datasets are real directories on the node.

Inside a node this file answers as /usr/local/sbin/zfs and zpool; on the host
`from lab.core.tools.zfs import Zfs` gives the same operations for seeding and for the lab's
daemons:

    z = Zfs(root=Path(node_dir))          # root "/" inside the node
    with z.batch():                       # one state.json write for many operations
        z.create_pool("backup")
        z.create("backup/vpsfree.cz/backup/101", parents=True)
        z.snapshot("backup/vpsfree.cz/backup/101@backup-2016-01-01T01:00:00", creation=ts)

Behaviour and wording follow OpenZFS's cmd/zfs and libzfs (research/vpsadminos.md §6):
errors on stderr as "<action>: <reason>", exit 1; usage errors print the command's usage
and exit 2. Simplifications: a filesystem's data is the directory at its mountpoint (or a
hidden directory when the mountpoint is none/legacy); no clones, volumes or bookmarks.

Snapshots cost what changed. A snapshot is a tree of the dataset's own files (child datasets
left out) under /var/lib/lab/zfs/snapshots/<guid>, with a manifest <guid>.json of each path's
kind, mode, owner, mtime_ns and a file's size and inode. Directories and symlinks are
recreated; a regular file is a hard link to the live file when its mtime is more than 2 s
old (so a file unchanged across snapshots is one inode in all of them), else a copy. A
shared inode means an in-place write (or chmod, chown) of the live file changes the snapshot
too: every reader of a snapshot's files (send, rollback, receive) first compares them with
the manifest and, if one changed, fails with "lab zfs: snapshot X was changed by an in-place
write to Y; ..." rather than use wrong data. So lab tools replace files (write a new file and
rename it, as toolbox.write does), which gives the live name a new inode and leaves the
snapshot's alone. A write into a file modified within the last 2 s could land in the same
clock tick and keep its mtime unnoticed: such files are copied. Not rsync's quick check
(same size and mtime: unchanged): a tool that sets mtimes would leave stale bytes in a
snapshot. `used` of a snapshot is the size of the files only it links (real ZFS: what only
it holds).

A send stream is a line "LAB-ZFS-STREAM 2", a JSON header line, then per carried snapshot
a begin record (the paths deleted since the previous snapshot), one record per file or
symlink that differs from it (another inode or other stats; a JSON line, a file's bytes
after it; a full stream has them all), and an end record with the directories whose stats
changed; the -v sizes are those deltas. The receiver builds each snapshot in a staging tree
(the previous snapshot's tree in hard links), a file first whole in a side file and then
renamed in, so a cut stream leaves only complete files; a cut -I stream keeps the snapshots
that came whole, as OpenZFS. `receive -s` keeps a cut receive (a new filesystem exists,
inconsistent and unmounted; an existing one keeps it hidden, as OpenZFS's <fs>/%recv) and
the filesystem's receive_resume_token names the snapshot and the last path received; `send
-t` sends the records after it, `receive -A` drops it. For fault tests a node file
/etc/lab/zfs-send-rate (bytes a second) slows every send on that node, so a test can cut a
stream midway; without it sends run at full speed.
"""

from __future__ import annotations

import bisect
import contextlib
import fcntl
import getopt
import hashlib
import io
import json
import os
import random
import re
import shutil
import signal
import stat
import sys
import time
import zlib
from pathlib import Path

if __package__:  # imported on the host (lab.core.tools.zfs)
    from lab.core.tools import toolbox
else:  # run as a program: toolbox.py is next to it
    import toolbox

STATE_DIR = "var/lib/lab/zfs"
STREAM_MAGIC = b"LAB-ZFS-STREAM 2\n"
POOL_FREE_FALLBACK = 1 << 40
SEND_RATE_FILE = "etc/lab/zfs-send-rate"  # bytes a second a send may write; absent: no limit
SETTLED_NS = 2 * 10**9  # a file's mtime older than this: any later write changes it (_share)
CHUNK = 1 << 16

# name -> (column, kind, default, inheritable, readonly, applies-to, index values)
# kind: str | num | index | date; applies-to: "fs", "snap" or "all".
PROPS = {
    "type": ("TYPE", "str", None, False, True, "all", None),
    "creation": ("CREATION", "date", None, False, True, "all", None),
    "used": ("USED", "num", None, False, True, "all", None),
    "available": ("AVAIL", "num", None, False, True, "fs", None),
    "referenced": ("REFER", "num", None, False, True, "all", None),
    "createtxg": ("CREATETXG", "num", None, False, True, "all", None),
    "quota": ("QUOTA", "num", 0, False, False, "fs", None),
    "refquota": ("REFQUOTA", "num", 0, False, False, "fs", None),
    "recordsize": ("RECSIZE", "num", 131072, True, False, "fs", None),
    "mountpoint": ("MOUNTPOINT", "str", None, True, False, "fs", None),
    "sharenfs": ("SHARENFS", "str", "off", True, False, "fs", None),
    "compression": ("COMPRESS", "index", "off", True, False, "fs",
                    ("on", "off", "lzjb", "gzip", "gzip-1", "gzip-2", "gzip-3", "gzip-4",
                     "gzip-5", "gzip-6", "gzip-7", "gzip-8", "gzip-9", "zle", "lz4", "zstd")),
    "sync": ("SYNC", "index", "standard", True, False, "fs", ("standard", "always", "disabled")),
    "atime": ("ATIME", "index", "on", True, False, "fs", ("on", "off")),
    "relatime": ("RELATIME", "index", "on", True, False, "fs", ("on", "off")),
    "canmount": ("CANMOUNT", "index", "on", False, False, "fs", ("on", "off", "noauto")),
    "mounted": ("MOUNTED", "index", None, False, True, "fs", ("yes", "no")),
    "origin": ("ORIGIN", "str", None, False, True, "fs", None),
    "clones": ("CLONES", "str", None, False, True, "snap", None),
    "receive_resume_token": ("RESUMETOK", "str", None, False, True, "fs", None),
}
ALIASES = {"avail": "available", "refer": "referenced", "compress": "compression",
           "recsize": "recordsize"}
# Numbers right-aligned with a fixed width unless -p (zprop_width); createtxg is flexible.
FIXED_WIDTH = {"used", "available", "referenced", "quota", "refquota", "recordsize"}
VALUES_TEXT = {"quota": "<size> | none", "refquota": "<size> | none",
               "recordsize": "512 to 16M, power of 2", "mountpoint": "<path> | legacy | none",
               "sharenfs": "on | off | NFS share options", "sync": "standard | always | disabled",
               "compression": "on | off | lzjb | gzip | gzip-[1-9] | zle | lz4 | zstd",
               "atime": "on | off", "relatime": "on | off", "canmount": "on | off | noauto",
               "mounted": "yes | no", "origin": "<snapshot>", "clones": "<dataset>[,...]",
               "type": "filesystem | volume | snapshot | bookmark", "creation": "<date>",
               "createtxg": "<uint64>", "used": "<size>", "available": "<size>",
               "referenced": "<size>", "receive_resume_token": "<string token>"}

USAGE = {
    "create": "\tcreate [-Pnp[p]uv] [-o property=value] ... <filesystem>\n",
    "destroy": "\tdestroy [-fnpRrv] <filesystem|volume>\n"
               "\tdestroy [-dnpRrv] <filesystem|volume>@<snap>[%<snap>][,...]\n"
               "\tdestroy <filesystem|volume>#<bookmark>\n",
    "snapshot": "\tsnapshot [-r] [-o property=value] ... <filesystem|volume>@<snap> ...\n",
    "rename": "\trename [-f] <filesystem|volume|snapshot> <filesystem|volume|snapshot>\n"
              "\trename -p[p] [-f] <filesystem|volume> <filesystem|volume>\n"
              "\trename -u [-f] <filesystem> <filesystem>\n"
              "\trename -r <snapshot> <snapshot>\n",
    "list": "\tlist [-Hp] [-j [--json-int]] [-r|-d max] [-o property[,...]] [-s property]...\n"
            "\t    [-S property]... [-t type[,...]] [filesystem|volume|snapshot] ...\n",
    "set": "\tset [-u] <property=value> ... <filesystem|volume|snapshot> ...\n",
    "mount": "\tmount [-j]\n\tmount [-flvO] [-o opts] <-a|-R filesystem|filesystem>\n",
    "unmount": "\tunmount [-fu] <-a | filesystem|mountpoint>\n",
    "get": "\tget [-rHp] [-j [--json-int]] [-d max] [-o \"all\" | field[,...]]\n"
           "\t    [-t type[,...]] [-s source[,...]]\n"
           "\t    <\"all\" | property[,...]> [filesystem|volume|snapshot|bookmark] ...\n",
    "inherit": "\tinherit [-rS] <property> <filesystem|volume|snapshot> ...\n",
    "send": "\tsend [-DLPbcehnpsUVvw] [-i|-I snapshot]\n"
            "\t     [-R [-X dataset[,dataset]...]]     <snapshot>\n"
            "\tsend [-nVvPe] -t <receive_resume_token>\n",
    "receive": "\treceive [-vMnsFhu] [-o <property>=<value>] ... [-x <property>] ...\n"
               "\t    <filesystem|volume|snapshot>\n"
               "\treceive [-vMnsFhu] [-o <property>=<value>] ... [-x <property>] ... \n"
               "\t    [-d | -e] <filesystem>\n"
               "\treceive -A <filesystem|volume>\n",
}
COMMAND_ORDER = ("create", "destroy", "snapshot", "rename", "list", "set", "get", "inherit",
                 "send", "receive")


class ZfsError(Exception):
    """What the real command prints on stderr, and its exit code."""

    def __init__(self, message: str, code: int = 1, usage: str | None = None):
        super().__init__(message)
        self.message, self.code, self.usage = message, code, usage


class UsageError(ZfsError):
    def __init__(self, message: str, command: str | None):
        super().__init__(message, 2, usage=command or "")


def nicenum(num: int, unit_b: bool = True) -> str:
    """zfs_nicebytes: 1024-based, at most 5 characters, "B" for plain bytes."""
    units = ("B" if unit_b else "", "K", "M", "G", "T", "P", "E")
    n, index = num, 0
    while n >= 1024 and index < 6:
        n //= 1024
        index += 1
    if index == 0 or num % (1024 ** index) == 0:
        return f"{n}{units[index]}"
    for digits in (2, 1, 0):
        text = f"{num / 1024 ** index:.{digits}f}{units[index]}"
        if len(text) <= 5:
            return text
    return text


def parse_size(text: str) -> int | None:
    """zfs_nicestrtonum: 10G, 1.5T, 512, 100KB; None when it is not a size."""
    m = re.fullmatch(r"(\d+(?:\.\d*)?)\s*([bkmgtpez]?)(b?)", text.strip(), re.IGNORECASE)
    if not m:
        return None
    number, unit = m.group(1), m.group(2).upper()
    if m.group(3) and not unit:
        unit = "B"
    shift = {"": 0, "B": 0, "K": 10, "M": 20, "G": 30, "T": 40, "P": 50, "E": 60, "Z": 70}[unit]
    if "." in number and shift == 0:
        return None
    return int(float(number) * (1 << shift)) if "." in number else int(number) << shift


def _is_user_prop(name: str) -> bool:
    return ":" in name and re.fullmatch(r"[a-z0-9_.:\-]+", name) is not None


def _parent(name: str) -> str | None:
    return name.rsplit("/", 1)[0] if "/" in name else None


def _depth(name: str) -> int:
    return name.count("/")


# -- trees: how snapshots are kept -----------------------------------------------------------
def _walk(top: Path, skip=frozenset()):
    """(relative path, path, lstat) of everything below `top`, not descending into `skip`.
    Paths are strings, not Path objects: snapshots, sends and receives walk whole trees, and
    pathlib's parsing was a third of a receive's time."""
    prefix = str(top).rstrip("/") + "/"
    skip = {str(path) for path in skip}
    stack = [str(top)]
    while stack:
        current = stack.pop()
        with os.scandir(current) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            info = entry.stat(follow_symlinks=False)
            yield entry.path[len(prefix):], entry.path, info
            if stat.S_ISDIR(info.st_mode) and entry.path not in skip:
                stack.append(entry.path)


def _entry(path: Path | str, info) -> list | None:
    """What a snapshot's manifest records of a path: kind, mode, uid, gid, mtime_ns, then a
    file's size and inode or a symlink's target; None for what snapshots leave out (fifos,
    sockets, devices)."""
    head = [info.st_mode, info.st_uid, info.st_gid, info.st_mtime_ns]
    if stat.S_ISREG(info.st_mode):
        return ["f", *head, info.st_size, info.st_ino]
    if stat.S_ISDIR(info.st_mode):
        return ["d", *head]
    if stat.S_ISLNK(info.st_mode):
        return ["l", *head, os.readlink(path)]
    return None


def _scan(tree: Path) -> dict:
    manifest = {".": _entry(tree, tree.lstat())}
    for rel, path, info in _walk(tree):
        entry = _entry(path, info)
        if entry is not None:
            manifest[rel] = entry
    return manifest


def _digest(h, rel: str, info, entry: list | None) -> None:
    """One path's part of a tree's fingerprint (what tells "modified since the snapshot")."""
    target = entry[5] if entry and entry[0] == "l" else ""
    h.update(f"{rel}\0{info.st_mode}\0{info.st_size}\0{info.st_mtime_ns}\0{target}\n"
             .encode("utf-8", "surrogateescape"))


def _intact(path: Path, entry: list) -> bool:
    """The file still has the kind, mode, owner, mtime and size recorded (the inode is not
    compared: a copied node directory keeps its snapshots)."""
    try:
        now = _entry(path, os.lstat(path))
    except OSError:
        return False
    return now is not None and now[:6] == entry[:6]


def _attrs(path: Path, entry: list) -> None:
    """Give a recreated file, directory or symlink its recorded owner, mode and mtime."""
    with contextlib.suppress(OSError):  # not root: the files stay ours
        os.lchown(path, entry[2], entry[3])
    if entry[0] != "l":
        os.chmod(path, stat.S_IMODE(entry[1]))
    os.utime(path, ns=(entry[4], entry[4]), follow_symlinks=False)


def _copy(src: Path, dst: Path, info) -> None:
    shutil.copy2(src, dst)
    with contextlib.suppress(OSError):
        os.lchown(dst, info.st_uid, info.st_gid)


def _share(src: Path | str, dst: Path | str, info) -> bool:
    """Make `dst` hold `src`'s file. A hard link costs nothing, but an in-place write to one
    name then changes both; every reader of a snapshot notices that by the changed mtime
    (_intact), which a write surely changes only once the file's mtime is well in the past
    (timestamps come from a coarse clock, some file systems keep whole seconds). So a file
    modified in the last SETTLED_NS is copied, any other linked. True: linked."""
    if info.st_mtime_ns < time.time_ns() - SETTLED_NS:
        try:
            os.link(src, dst)
            return True
        except OSError:  # another file system, too many links, protected_hardlinks
            pass
    _copy(src, dst, info)
    return False


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


# -- streams -----------------------------------------------------------------------------------
class _Cut(Exception):
    """The stream ended before its last record, or the receiver was told to stop."""


_SIGNALS: tuple = ()  # the signals that cut a receive (set by the command line)


@contextlib.contextmanager
def _deferred_signals():
    """Hold back the signals that cut a receive while its state changes."""
    if not _SIGNALS:
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _line(record: dict) -> bytes:
    return json.dumps(record).encode() + b"\n"


def _record(stream) -> dict:
    line = stream.readline()
    if not line.endswith(b"\n"):
        raise _Cut()
    return json.loads(line)


def _decode_token(token: str) -> dict:
    """A resume token's contents, refused with the real command's reasons."""
    def corrupt(why: str) -> ZfsError:
        return ZfsError(f"cannot resume send: resume token is corrupt ({why})")
    m = re.fullmatch(r"(\d+)-([0-9a-f]+)-([0-9a-f]+)-(.*)", token)
    if not m:
        raise corrupt("invalid format")
    if m.group(1) != "1":
        raise corrupt(f"invalid version {m.group(1)}")
    try:
        data = bytes.fromhex(m.group(4))
    except ValueError:
        raise corrupt("payload is not hex-encoded") from None
    if zlib.adler32(data) != int(m.group(2), 16):
        raise corrupt("incorrect checksum")
    try:
        packed = zlib.decompress(data)
    except zlib.error:
        raise corrupt("decompression failed") from None
    if len(packed) != int(m.group(3), 16):
        raise corrupt("decompression failed")
    try:
        return json.loads(packed)
    except ValueError:
        raise corrupt("nvlist_unpack failed") from None


class _Pump:
    """Writes a stream: at most `rate` bytes a second (the node's SEND_RATE_FILE, so a test
    can cut a slow stream midway) and, with -v, a progress line a second on stderr as the
    real progress thread prints it."""

    def __init__(self, out, rate: int, verbose, snap: str):
        self.out, self.rate, self.verbose, self.snap = out, rate, verbose, snap
        self.piece = min(CHUNK, max(rate // 4, 512)) if rate else CHUNK
        self.sent, self.start = 0, time.monotonic()
        self.tick = self.start + 1

    def send(self, data: bytes) -> None:
        for at in range(0, len(data), self.piece):
            piece = data[at:at + self.piece]
            self.out.write(piece)
            self.sent += len(piece)
            if self.rate:
                self.out.flush()
                time.sleep(max(0.0, self.start + self.sent / self.rate - time.monotonic()))
            if self.verbose is not None and time.monotonic() >= self.tick:
                self.verbose.write(f"{time.strftime('%H:%M:%S')}   {nicenum(self.sent):>5}   "
                                   f"{self.snap}\n")
                self.verbose.flush()
                self.tick = time.monotonic() + 1


class Zfs:
    """The node's datasets, their properties and snapshots (state in one JSON file)."""

    def __init__(self, root: Path | str = "/"):
        self.root = Path(root)
        self.state_dir = self.root / STATE_DIR
        self._state: dict | None = None
        self._depth = 0
        self._dirty = False
        self._lock_file = None
        self._names = None  # (encoded, names) of st["datasets"] sorted, for _children; None: build anew

    # -- state ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def batch(self):
        """Hold the lock and the state for several operations; write state.json once."""
        if self._depth == 0:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            self._lock_file = open(self.state_dir / "lock", "a+")
            fcntl.flock(self._lock_file, fcntl.LOCK_EX)
            path = self.state_dir / "state.json"
            self._state = (json.loads(path.read_text()) if path.exists()
                           else {"txg": 1, "datasets": {}, "snapshots": {}})
            self._dirty, self._names = False, None
        self._depth += 1
        try:
            yield self._state
        finally:
            self._depth -= 1
            if self._depth == 0:
                try:
                    if self._dirty:
                        self._write_state()
                finally:
                    fcntl.flock(self._lock_file, fcntl.LOCK_UN)
                    self._lock_file.close()
                    self._lock_file, self._state = None, None

    def _write_state(self) -> None:
        toolbox.write(self.state_dir / "state.json", json.dumps(self._state, sort_keys=True))

    def _changed(self) -> None:
        self._dirty = True

    def _next_txg(self, st: dict) -> int:
        st["txg"] += 1
        return st["txg"]

    def host_path(self, node_path: str) -> Path:
        return self.root / node_path.lstrip("/")

    # -- lookups -------------------------------------------------------------------------
    def exists(self, name: str) -> bool:
        with self.batch() as st:
            return name in st["datasets"] or name in st["snapshots"]

    def _need(self, st: dict, name: str, action: str | None = None) -> None:
        if name not in st["datasets"] and name not in st["snapshots"]:
            raise ZfsError(f"cannot open '{name}': dataset does not exist")

    def _children(self, st: dict, name: str) -> list[str]:
        """Every dataset below `name`, in byte order: a range of the sorted names (seeding a
        world of 100k datasets asks this once per snapshot; a scan would be quadratic)."""
        if self._names is None:
            names = sorted(st["datasets"], key=str.encode)
            self._names = ([n.encode() for n in names], names)
        keys, names = self._names
        prefix = (name + "/").encode()
        start = end = bisect.bisect_left(keys, prefix)
        while end < len(keys) and keys[end].startswith(prefix):
            end += 1
        return names[start:end]

    def _names_added(self, name: str) -> None:
        """Keep the sorted names of _children current when a dataset is created."""
        if self._names is not None:
            at = bisect.bisect_left(self._names[0], name.encode())
            self._names[0].insert(at, name.encode())
            self._names[1].insert(at, name)

    def _snapshots_of(self, st: dict, name: str) -> list[str]:
        prefix = name + "@"
        return sorted((s for s in st["snapshots"] if s.startswith(prefix)),
                      key=lambda s: st["snapshots"][s]["createtxg"])

    def snapshots(self, name: str) -> list[str]:
        with self.batch() as st:
            return self._snapshots_of(st, name)

    def datasets(self, under: str | None = None) -> list[str]:
        with self.batch() as st:
            names = sorted(st["datasets"], key=str.encode)
            if under is None:
                return names
            return [n for n in names if n == under or n.startswith(under + "/")]

    # -- properties ----------------------------------------------------------------------
    def _prop_source(self, st: dict, name: str, prop: str) -> tuple[str | None, str]:
        """(raw value, source) of a settable property; source local/default/inherited from X."""
        ds = st["datasets"][name]
        if prop in ds["props"]:
            return ds["props"][prop], "local"
        inheritable = _is_user_prop(prop) or PROPS[prop][3]
        if inheritable:
            parent = _parent(name)
            while parent is not None:
                if prop in st["datasets"][parent]["props"]:
                    if prop == "mountpoint":
                        value = st["datasets"][parent]["props"][prop]
                        if value not in ("none", "legacy"):
                            value = value.rstrip("/") + name[len(parent):]
                        return value, f"inherited from {parent}"
                    return st["datasets"][parent]["props"][prop], f"inherited from {parent}"
                parent = _parent(parent)
        if prop == "mountpoint":
            return "/" + name, "default"
        if _is_user_prop(prop):
            return None, "-"
        default = PROPS[prop][2]
        return (str(default) if default is not None else None), "default"

    def mountpoint(self, name: str) -> str:
        with self.batch() as st:
            return self._prop_source(st, name, "mountpoint")[0]

    def _data_dir(self, st: dict, name: str) -> str:
        """Where the filesystem's files are on the node: its mountpoint when it has one."""
        mp = self._prop_source(st, name, "mountpoint")[0]
        canmount = st["datasets"][name]["props"].get("canmount", "on")
        if mp in ("none", "legacy") or canmount == "off":
            return f"/{STATE_DIR}/unmounted/{st['datasets'][name]['guid']:016x}"
        return mp

    def path(self, name: str) -> Path:
        """The host path of a filesystem's files."""
        with self.batch() as st:
            self._need(st, name)
            return self.host_path(self._data_dir(st, name))

    def _own_files(self, st: dict, name: str):
        """(relative path, host path, lstat) of a filesystem's own files; child datasets'
        directories are yielded as empty directories, their contents left out."""
        top = self.host_path(self._data_dir(st, name))
        if top.is_dir():
            yield from _walk(top, {self.host_path(self._data_dir(st, c))
                                   for c in self._children(st, name)})

    def _fingerprint(self, st: dict, name: str) -> tuple[str, int]:
        """A digest of a filesystem's own tree (to tell "modified since the last snapshot")
        and its size in bytes (`referenced`)."""
        h, size = hashlib.sha256(), 0
        for rel, path, info in self._own_files(st, name):
            _digest(h, rel, info, _entry(path, info))
            if stat.S_ISREG(info.st_mode):
                size += info.st_size
        return h.hexdigest(), size

    def _referenced(self, st: dict, name: str) -> int:
        if name in st["snapshots"]:
            return st["snapshots"][name]["referenced"]
        return self._fingerprint(st, name)[1]

    def _used(self, st: dict, name: str) -> int:
        if name in st["snapshots"]:
            # What only this snapshot holds, as real ZFS: its files no other tree links.
            tree = self._tree(st["snapshots"][name])
            used = 0
            for rel, entry in self._manifest(st["snapshots"][name]).items():
                with contextlib.suppress(OSError):
                    info = os.lstat(tree / rel)
                    if entry[0] == "f" and info.st_nlink == 1:
                        used += info.st_size
            return used
        return self._referenced(st, name) + sum(
            self._used(st, c) for c in self._children(st, name) if _parent(c) == name)

    def _available(self, st: dict, name: str) -> int:
        try:
            vfs = os.statvfs(self.root)
            avail = vfs.f_bavail * vfs.f_frsize
        except OSError:
            avail = POOL_FREE_FALLBACK
        ds = name
        while ds is not None:
            quota = int(st["datasets"][ds]["props"].get("quota", 0))
            if quota:
                avail = min(avail, max(quota - self._used(st, ds), 0))
            ds = _parent(ds)
        refquota = int(st["datasets"][name]["props"].get("refquota", 0))
        if refquota:
            avail = min(avail, max(refquota - self._referenced(st, name), 0))
        return avail

    def _value(self, st: dict, name: str, prop: str, literal: bool) -> tuple[str, str] | None:
        """(display value, source) or None when the property does not apply to the type."""
        snap = name in st["snapshots"]
        if _is_user_prop(prop):
            if snap:
                value = st["snapshots"][name].get("props", {}).get(prop)
                return (value, "local") if value is not None else ("-", "-")
            value, source = self._prop_source(st, name, prop)
            return (value, source) if value is not None else ("-", "-")
        applies = PROPS[prop][5]
        if (applies == "fs" and snap) or (applies == "snap" and not snap):
            return None
        obj = st["snapshots"][name] if snap else st["datasets"][name]
        if prop == "name":
            return name, "-"
        if prop == "type":
            return ("snapshot" if snap else "filesystem"), "-"
        if prop == "creation":
            ts = obj["creation"]
            return (str(ts) if literal else time.strftime("%a %b %e %k:%M %Y", time.localtime(ts))), "-"
        if prop == "createtxg":
            return str(obj["createtxg"]), "-"
        if prop in ("used", "referenced", "available"):
            number = {"used": self._used, "referenced": self._referenced,
                      "available": self._available}[prop](st, name)
            return (str(number) if literal else nicenum(number)), "-"
        if prop == "mounted":
            mounted = (obj.get("mounted", True) and not self._data_dir(st, name).startswith(
                f"/{STATE_DIR}/") and obj["props"].get("canmount", "on") != "noauto")
            return ("yes" if mounted else "no"), "-"
        if prop == "origin":
            return "-", "-"
        if prop == "clones":
            return "", "-"
        if prop == "receive_resume_token":
            return self._token(st, name) or "-", "-"
        value, source = self._prop_source(st, name, prop)
        if prop in ("quota", "refquota"):
            # libzfs prints 0 as none; the source stays where the value came from, so an
            # explicit `zfs set quota=none` reads `none local` (never set: `none default`)
            number = int(value)
            return ("0" if literal else "none") if number == 0 else (
                str(number) if literal else nicenum(number)), source
        if prop == "recordsize":
            return (value if literal else nicenum(int(value))), source
        return value, source

    def get(self, name: str, prop: str, literal: bool = True) -> str:
        """One property's value (literal numbers by default), as `zfs get -Hp -o value`."""
        prop = ALIASES.get(prop, prop)
        with self.batch() as st:
            self._need(st, name)
            result = self._value(st, name, prop, literal)
            return "-" if result is None else result[0]

    def get_source(self, name: str, prop: str) -> str:
        with self.batch() as st:
            self._need(st, name)
            result = self._value(st, name, ALIASES.get(prop, prop), True)
            return "-" if result is None else result[1]

    def _check_value(self, name: str, prop: str, value: str, snap: bool) -> str:
        """Validate `prop=value` as zfs_valid_proplist does; the value to store."""
        where = f"cannot set property for '{name}'"
        if _is_user_prop(prop):
            return value
        if prop not in PROPS:
            raise ZfsError(f"{where}: invalid property '{prop}'")
        column, kind, _default, _inherit, readonly, applies, values = PROPS[prop]
        if readonly:
            raise ZfsError(f"{where}: '{prop}' is readonly")
        if snap and applies == "fs":
            raise ZfsError(f"{where}: this property can not be modified for snapshots")
        if kind == "num":
            if prop in ("quota", "refquota") and value == "none":
                return "0"
            number = parse_size(value)
            if number is None:
                raise ZfsError(f"{where}: bad numeric value '{value}'")
            if prop == "recordsize" and (number < 512 or number > 1 << 24 or number & (number - 1)):
                raise ZfsError(f"{where}: 'recordsize' must be power of 2 from 512B to 16M")
            return str(number)
        if kind == "index" and value not in values:
            raise ZfsError(f"{where}: '{prop}' must be one of '{VALUES_TEXT[prop]}'")
        if prop == "mountpoint" and value not in ("none", "legacy") and not value.startswith("/"):
            raise ZfsError(f"{where}: 'mountpoint' must be an absolute path, 'none', or 'legacy'")
        if prop == "mountpoint" and value not in ("none", "legacy"):
            value = "/" + value.strip("/") if value.strip("/") else "/"
        return value

    def set(self, name: str, prop: str, value: str) -> None:
        prop = ALIASES.get(prop, prop)
        with self.batch() as st:
            self._need(st, name)
            snap = name in st["snapshots"]
            stored = self._check_value(name, prop, value, snap)
            if snap:
                st["snapshots"][name].setdefault("props", {})[prop] = stored
            elif prop in ("mountpoint", "canmount"):
                self._relocate(st, name, lambda: st["datasets"][name]["props"].__setitem__(
                    prop, stored))
            else:
                st["datasets"][name]["props"][prop] = stored
            self._changed()

    def mount(self, name: str, mounted: bool = True) -> None:
        """`zfs mount NAME` / `zfs unmount NAME`: only the `mounted` flag (the files stay where
        the lab keeps them)."""
        with self.batch() as st:
            self._need(st, name)
            ds = st["datasets"].get(name)
            if ds is None:
                raise ZfsError(f"cannot {'mount' if mounted else 'unmount'} '{name}': not a filesystem")
            if ds.get("mounted", True) == mounted:
                raise ZfsError(f"cannot mount '{name}': filesystem already mounted" if mounted
                               else f"cannot unmount '{name}': not currently mounted")
            ds["mounted"] = mounted
            self._changed()

    def inherit(self, name: str, prop: str) -> None:
        prop = ALIASES.get(prop, prop)
        if not _is_user_prop(prop):
            if prop not in PROPS:
                raise UsageError(f"invalid property '{prop}'", "inherit")
            if PROPS[prop][4]:
                raise ZfsError(f"{prop} property is read-only")
            if not PROPS[prop][3]:
                extra = ""
                if prop in ("quota", "refquota"):
                    extra = (f"\nuse 'zfs set {prop}=none' to clear\n"
                             f"use 'zfs inherit -S {prop}' to revert to received value")
                raise ZfsError(f"'{prop}' property cannot be inherited{extra}")
        with self.batch() as st:
            self._need(st, name)
            if name in st["snapshots"]:
                st["snapshots"][name].get("props", {}).pop(prop, None)
            elif prop == "mountpoint":
                self._relocate(st, name, lambda: st["datasets"][name]["props"].pop(prop, None))
            else:
                st["datasets"][name]["props"].pop(prop, None)
            self._changed()

    # -- moving data when mountpoints change ---------------------------------------------
    def _relocate(self, st: dict, name: str, change) -> None:
        """Apply `change()` (a rename or a mountpoint change of `name`); the data directories
        of `name` and its descendants follow their new mountpoints."""
        affected = [name] + self._children(st, name)
        guids = {st["datasets"][n]["guid"]: n for n in affected}
        old = {g: self._data_dir(st, n) for g, n in guids.items()}
        change()
        by_guid = {ds["guid"]: n for n, ds in st["datasets"].items()}
        new = {g: self._data_dir(st, by_guid[g]) for g in guids}
        moving = [g for g in guids if old[g] != new[g]]
        for g in moving:
            target = self.host_path(new[g])
            inside_old = any(new[g] == old[o] or new[g].startswith(old[o].rstrip("/") + "/")
                             for o in moving)
            if not inside_old and target.is_dir() and any(target.iterdir()):
                raise ZfsError(f"cannot mount '{new[g]}': directory is not empty")
        staging = self.state_dir / "staging"
        staging.mkdir(parents=True, exist_ok=True)
        for g in sorted(moving, key=lambda g: old[g].count("/"), reverse=True):
            source = self.host_path(old[g])
            if source.exists():
                os.rename(source, staging / f"{g:016x}")
            else:
                (staging / f"{g:016x}").mkdir()
        for g in sorted(moving, key=lambda g: new[g].count("/")):
            target = self.host_path(new[g])
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_dir():
                target.rmdir()
            os.rename(staging / f"{g:016x}", target)

    # -- create / destroy / rename -------------------------------------------------------
    def create_pool(self, name: str, props: dict | None = None) -> None:
        """A pool's root dataset (the lab has no vdevs; `zpool create` is not simulated)."""
        with self.batch() as st:
            if name in st["datasets"]:
                raise ZfsError(f"cannot create '{name}': pool already exists")
            self._new_dataset(st, name, props or {})

    def _new_dataset(self, st: dict, name: str, props: dict) -> None:
        st["datasets"][name] = {"guid": random.getrandbits(63) | 1, "createtxg": self._next_txg(st),
                                "creation": int(time.time()), "props": {}, "mounted": True}
        self._names_added(name)
        for prop, value in props.items():
            prop = ALIASES.get(prop, prop)
            st["datasets"][name]["props"][prop] = self._check_value(name, prop, str(value), False)
        # An existing directory at the mountpoint is adopted (the lab lays out files first).
        self.host_path(self._data_dir(st, name)).mkdir(parents=True, exist_ok=True)
        self._changed()

    def create(self, name: str, parents: bool = False, props: dict | None = None) -> None:
        with self.batch() as st:
            where = f"cannot create '{name}'"
            if "@" in name:
                raise ZfsError(f"{where}: snapshot delimiter '@' is not expected here")
            if "/" not in name:
                raise ZfsError(f"{where}: missing dataset name")
            pool = name.split("/", 1)[0]
            if pool not in st["datasets"]:
                raise ZfsError(f"{where}: no such pool '{pool}'")
            if name in st["datasets"]:
                if parents:
                    return
                raise ZfsError(f"{where}: dataset already exists")
            parent = _parent(name)
            if parent not in st["datasets"]:
                if not parents:
                    raise ZfsError(f"{where}: parent does not exist")
                missing = []
                while parent not in st["datasets"]:
                    missing.append(parent)
                    parent = _parent(parent)
                for ancestor in reversed(missing):
                    self._new_dataset(st, ancestor, {})
            self._new_dataset(st, name, props or {})

    def _remove_snapshot(self, st: dict, snap: str) -> None:
        meta = st["snapshots"].pop(snap)
        shutil.rmtree(self._tree(meta), ignore_errors=True)
        self._tree(meta).with_suffix(".json").unlink(missing_ok=True)
        self._changed()

    def _remove_dataset(self, st: dict, name: str) -> None:
        for snap in self._snapshots_of(st, name):
            self._remove_snapshot(st, snap)
        path = self.host_path(self._data_dir(st, name))
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        if "recv" in st["datasets"][name]:
            shutil.rmtree(self.state_dir / st["datasets"][name]["recv"]["stage"],
                          ignore_errors=True)
        del st["datasets"][name]
        self._names = None
        self._changed()

    def _dependents(self, st: dict, name: str) -> list[str]:
        """Post-order like zfs_iter_dependents: each child's subtree, then snapshots."""
        out = []
        for child in self._children(st, name):
            if _parent(child) == name:
                out += self._dependents(st, child) + [child]
        return out + self._snapshots_of(st, name)

    def destroy(self, name: str, recursive: bool = False) -> None:
        with self.batch() as st:
            if "@" in name:
                fs, snapname = name.split("@", 1)
                if fs not in st["datasets"]:
                    raise ZfsError(f"cannot open '{fs}': dataset does not exist")
                targets = [d for d in [fs] + (self._children(st, fs) if recursive else [])
                           if f"{d}@{snapname}" in st["snapshots"]]
                if not targets:
                    raise ZfsError("could not find any snapshots to destroy; check snapshot names.")
                for d in targets:
                    self._remove_snapshot(st, f"{d}@{snapname}")
                return
            if name not in st["datasets"]:
                raise ZfsError(f"cannot open '{name}': dataset does not exist")
            if "/" not in name and not recursive:
                raise ZfsError(f"cannot destroy '{name}': operation does not apply to pools\n"
                               f"use 'zfs destroy -r {name}' to destroy all datasets in the pool\n"
                               f"use 'zpool destroy {name}' to destroy the pool itself")
            dependents = self._dependents(st, name)
            if dependents and not recursive:
                raise ZfsError(f"cannot destroy '{name}': filesystem has children\n"
                               "use '-r' to destroy the following datasets:\n"
                               + "\n".join(dependents))
            for dep in dependents:
                if "@" in dep:
                    self._remove_snapshot(st, dep)
                else:
                    self._remove_dataset(st, dep)
            if "/" in name:
                self._remove_dataset(st, name)

    def rename(self, src: str, dst: str, parents: bool = False, recursive: bool = False) -> None:
        with self.batch() as st:
            if "@" in src:
                self._rename_snapshot(st, src, dst, recursive)
                return
            if src not in st["datasets"]:
                raise ZfsError(f"cannot open '{src}': dataset does not exist")
            if src == dst:
                return
            if recursive:
                raise ZfsError(f"cannot rename to '{dst}': recursive rename must be a snapshot")
            if "@" in dst or "/" not in dst:
                raise ZfsError(f"cannot rename to '{dst}': "
                               + ("snapshot delimiter '@' is not expected here" if "@" in dst
                                  else "datasets must be within same pool"))
            if dst.split("/", 1)[0] != src.split("/", 1)[0]:
                if dst.split("/", 1)[0] not in st["datasets"]:
                    raise ZfsError(f"cannot create '{dst}': no such pool '{dst.split('/', 1)[0]}'")
                raise ZfsError(f"cannot rename to '{dst}': datasets must be within same pool")
            if "/" not in src:
                raise ZfsError(f"cannot rename to '{dst}': datasets must be within same pool")
            if dst.startswith(src + "/"):
                raise ZfsError(f"cannot rename to '{dst}': New dataset name cannot be a "
                               "descendant of current dataset name")
            parent = _parent(dst)
            if parent not in st["datasets"]:
                if not parents:
                    raise ZfsError(f"cannot create '{dst}': parent does not exist")
                self.create(parent, parents=True)
            if dst in st["datasets"]:
                raise ZfsError(f"cannot rename '{src}': dataset already exists")

            def change():
                for old in [src] + self._children(st, src):
                    new = dst + old[len(src):]
                    st["datasets"][new] = st["datasets"].pop(old)
                    self._names = None
                    for snap in [s for s in st["snapshots"] if s.startswith(old + "@")]:
                        st["snapshots"][new + snap[len(old):]] = st["snapshots"].pop(snap)
            self._relocate(st, src, change)
            self._changed()

    def _rename_snapshot(self, st: dict, src: str, dst: str, recursive: bool) -> None:
        fs, old_snap = src.split("@", 1)
        if "@" not in dst:
            dst = f"{fs}@{dst}"
        elif dst.startswith("@"):
            dst = fs + dst
        if dst.split("@", 1)[0] != fs:
            raise ZfsError(f"cannot rename to '{dst}': snapshots must be part of same dataset")
        new_snap = dst.split("@", 1)[1]
        if fs not in st["datasets"]:
            raise ZfsError(f"cannot open '{fs if recursive else src}': dataset does not exist")
        if src == dst:
            return
        targets = [d for d in [fs] + (self._children(st, fs) if recursive else [])
                   if f"{d}@{old_snap}" in st["snapshots"]]
        if not recursive and not targets:
            raise ZfsError(f"cannot open '{src}': dataset does not exist")
        for d in targets:
            if f"{d}@{new_snap}" in st["snapshots"]:
                if recursive:
                    raise ZfsError(f"cannot rename '{d}@{old_snap}': a child dataset already "
                                   "has a snapshot with the new name")
                raise ZfsError(f"cannot rename '{src}': dataset already exists")
        for d in targets:
            st["snapshots"][f"{d}@{new_snap}"] = st["snapshots"].pop(f"{d}@{old_snap}")
        self._changed()

    # -- snapshots -----------------------------------------------------------------------
    def _tree(self, meta: dict) -> Path:
        return self.state_dir / "snapshots" / meta.get("tree", f"{meta['guid']:016x}")

    def _new_tree(self, guid: int) -> str:
        """A snapshot's directory name: its guid, unless a snapshot of that guid is here
        already (received on the node it was sent from)."""
        name = f"{guid:016x}"
        while (self.state_dir / "snapshots" / name).exists():
            name = f"{guid:016x}-{random.getrandbits(32):08x}"
        (self.state_dir / "snapshots" / name).mkdir(parents=True)
        return name

    def _manifest(self, meta: dict) -> dict:
        """{relative path: entry} of a snapshot's tree ("." its top), kept next to the tree;
        written here for a snapshot taken before manifests existed."""
        path = self._tree(meta).with_suffix(".json")
        with contextlib.suppress(FileNotFoundError):
            return json.loads(path.read_text())
        manifest = _scan(self._tree(meta))
        toolbox.write(path, json.dumps(manifest))
        return manifest

    def _record_snapshot(self, st: dict, fs: str, snapname: str, meta: dict,
                         manifest: dict | None = None) -> None:
        """Add a snapshot whose tree is in place; `manifest`: its entries when the caller
        walked the tree already (else it is scanned)."""
        tree = self._tree(meta)
        toolbox.write(tree.with_suffix(".json"), json.dumps(manifest or _scan(tree)))
        st["snapshots"][f"{fs}@{snapname}"] = meta
        self._changed()

    def _check(self, st: dict, snap: str, rel: str, entry: list, tree: str | None = None) -> None:
        """Refuse to read a snapshot's file that no longer has the stats it was recorded with:
        its inode is shared with the live file, and something wrote into that. `tree`: the
        snapshot's tree as a string ending in "/" (callers checking many files pass it)."""
        tree = tree or str(self._tree(st["snapshots"][snap])) + "/"
        if not _intact(tree + rel, entry):
            where = self._data_dir(st, snap.split("@", 1)[0]).rstrip("/")
            raise ZfsError(f"lab zfs: snapshot {snap} was changed by an in-place write to "
                           f"{where}/{rel}; lab tools must replace files (write a new file and "
                           "rename it), not write into them")

    def _check_all(self, st: dict, snap: str, rels=None) -> dict:
        manifest = self._manifest(st["snapshots"][snap])
        tree = str(self._tree(st["snapshots"][snap])) + "/"
        for rel in manifest if rels is None else rels:
            if manifest[rel][0] == "f":
                self._check(st, snap, rel, manifest[rel], tree)
        return manifest

    def _take_snapshot(self, st: dict, fs: str, snapname: str, creation: int | None = None,
                       guid: int | None = None, txg: int | None = None) -> None:
        """A tree of hard links to the live files where that is safe (_share), so a snapshot
        costs what changed. An unchanged file shares the previous snapshot's inode because
        both link the live one. Not rsync's quick check (same size and mtime: link the previous
        snapshot's file): a tool that sets mtimes makes it keep stale bytes."""
        guid = guid or (random.getrandbits(63) | 1)
        tree = self._new_tree(guid)
        target = self.state_dir / "snapshots" / tree
        prefix = str(target) + "/"
        top = self.host_path(self._data_dir(st, fs))
        h, size, dirs, manifest = hashlib.sha256(), 0, [], {}
        for rel, path, info in self._own_files(st, fs):
            entry = _entry(path, info)
            _digest(h, rel, info, entry)
            dest = prefix + rel
            if entry is None:
                continue  # fifos, sockets, devices: not kept, as before
            manifest[rel] = entry  # the tree's copy gets the same stats (_attrs, copy2)
            if entry[0] == "d":
                os.mkdir(dest)
                dirs.append((dest, entry))
            elif entry[0] == "l":
                os.symlink(entry[5], dest)
                _attrs(dest, entry)
            else:
                size += info.st_size
                if not _share(path, dest, info):
                    entry[6] = os.lstat(dest).st_ino  # a copy: the manifest names its inode
        for dest, entry in reversed(dirs):  # children first: adding them changed the mtimes
            _attrs(dest, entry)
        if top.is_dir():
            _attrs(target, _entry(top, top.lstat()))
        self._record_snapshot(st, fs, snapname, {
            "guid": guid, "tree": tree, "createtxg": txg or st["txg"],
            "fingerprint": h.hexdigest(), "referenced": size,
            "creation": int(creation if creation is not None else time.time())},
            {".": _entry(target, target.lstat()), **manifest})

    def snapshot(self, names: str | list[str], recursive: bool = False,
                 creation: int | None = None) -> None:
        """Snapshot one or more `fs@snap` atomically (one txg); `creation` is for seeding."""
        names = [names] if isinstance(names, str) else names
        with self.batch() as st:
            todo = []
            for name in names:
                if "@" not in name:
                    raise UsageError("", "snapshot")
                fs, snapname = name.split("@", 1)
                if fs not in st["datasets"]:
                    raise ZfsError(f"cannot open '{fs}': dataset does not exist", 2, "snapshot")
                for d in [fs] + (self._children(st, fs) if recursive else []):
                    todo.append((d, snapname))
            errors = [f"cannot create snapshot '{d}@{s}': dataset already exists"
                      for d, s in todo if f"{d}@{s}" in st["snapshots"]]
            if errors:
                if recursive or len(names) > 1:
                    errors.append("no snapshots were created")
                raise ZfsError("\n".join(errors))
            txg = self._next_txg(st)
            for d, s in todo:
                self._take_snapshot(st, d, s, creation, txg=txg)

    def _restore(self, st: dict, fs: str, snap: str) -> None:
        """Make a filesystem's own files equal to a snapshot (rollback / receive): the
        snapshot's files are checked first, then shared with the live tree (_share)."""
        manifest = self._check_all(st, snap)
        tree = self._tree(st["snapshots"][snap])
        top = self.host_path(self._data_dir(st, fs))
        child_dirs = {self.host_path(self._data_dir(st, c)) for c in self._children(st, fs)}
        top.mkdir(parents=True, exist_ok=True)
        for entry in list(top.iterdir()):
            if entry in child_dirs or any(c.is_relative_to(entry) for c in child_dirs):
                if entry.is_dir() and not entry.is_symlink() and entry not in child_dirs:
                    self._clear_except(entry, child_dirs)
                continue
            _remove(entry)
        for rel in sorted(manifest):  # a directory before what it holds
            entry, dest = manifest[rel], top / rel
            if entry[0] == "d":
                dest.mkdir(exist_ok=True)  # "." and child datasets' mountpoints exist
            elif entry[0] == "l":
                os.symlink(entry[5], dest)
                _attrs(dest, entry)
            else:
                _share(tree / rel, dest, os.lstat(tree / rel))
        for rel in sorted((r for r, e in manifest.items() if e[0] == "d"), reverse=True):
            _attrs(top / rel, manifest[rel])

    def _apply_delta(self, st: dict, fs: str, base: str, snap: str) -> bool:
        """Bring a live filesystem that still equals snapshot `base` to `snap` by touching
        only the paths that differ (what _restore does for a whole tree); False, with
        nothing changed, when the filesystem was modified since `base` or a child dataset's
        mountpoint would change."""
        if base not in st["snapshots"] or \
                self._fingerprint(st, fs)[0] != st["snapshots"][base]["fingerprint"]:
            return False
        old = self._manifest(st["snapshots"][base])
        new = self._check_all(st, snap)
        gone = sorted((r for r in old if r not in new or new[r][0] != old[r][0]), reverse=True)
        changed = [r for r in sorted(new) if new[r] != old.get(r)]
        top = self.host_path(self._data_dir(st, fs))
        children = [str(self.host_path(self._data_dir(st, c)).relative_to(top))
                    for c in self._children(st, fs)]
        if any(c == r or c.startswith(r + "/") for r in gone + changed for c in children):
            return False
        tree, live = str(self._tree(st["snapshots"][snap])) + "/", str(top) + "/"
        for rel in gone:  # deepest first
            _remove(Path(live + rel))
        for rel in changed:  # a directory before what it holds
            entry, dest = new[rel], live + rel
            if entry[0] == "d":
                with contextlib.suppress(FileExistsError):
                    os.mkdir(dest)
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(dest)
            if entry[0] == "l":
                os.symlink(entry[5], dest)
                _attrs(dest, entry)
            else:
                _share(tree + rel, dest, os.lstat(tree + rel))
        # The directories that changed, and those whose entries did (their mtimes moved).
        touched = {r for r in changed if new[r][0] == "d"}
        touched.update(r.rpartition("/")[0] or "." for r in gone + changed if r != ".")
        for rel in sorted(touched, reverse=True):
            if rel in new:
                _attrs(top if rel == "." else live + rel, new[rel])
        return True

    def _clear_except(self, directory: Path, keep: set[Path]) -> None:
        for entry in list(directory.iterdir()):
            if entry in keep:
                continue
            if any(c.is_relative_to(entry) for c in keep) and entry.is_dir():
                self._clear_except(entry, keep)
            else:
                _remove(entry)

    def rollback(self, snap: str) -> None:
        with self.batch() as st:
            self._need(st, snap)
            fs = snap.split("@", 1)[0]
            self._check_all(st, snap)  # before anything is destroyed
            later = [s for s in self._snapshots_of(st, fs)
                     if st["snapshots"][s]["createtxg"] > st["snapshots"][snap]["createtxg"]]
            for s in later:
                self._remove_snapshot(st, s)
            self._restore(st, fs, snap)
            st["snapshots"][snap]["fingerprint"] = self._fingerprint(st, fs)[0]
            self._changed()

    # -- send / receive ------------------------------------------------------------------
    def _delta(self, st: dict, base: str | None, snap: str, after: str | None = None) -> dict:
        """What a stream carries for `snap` over `base` (None: all of it): the paths gone or
        changed in kind, then in path order the files and symlinks that differ (another inode
        or other stats), and the directories whose stats differ. `after`: a resumed stream,
        only the records after that path (the receiver has the rest)."""
        new = self._manifest(st["snapshots"][snap])
        old = self._manifest(st["snapshots"][base]) if base else {}
        records = [(rel, e) for rel, e in sorted(new.items())
                   if e[0] != "d" and old.get(rel) != e and (after is None or rel > after)]
        self._check_all(st, snap, [rel for rel, _e in records])
        return {"snap": snap, "from": base, "records": records,
                "deleted": [] if after is not None else
                sorted(r for r in old if r not in new or new[r][0] != old[r][0]),
                "dirs": {r: e for r, e in new.items() if e[0] == "d" and old.get(r) != e},
                "size": sum(e[5] for _rel, e in records if e[0] == "f")}

    def _resume_plan(self, st: dict, token: str) -> tuple[str, str | None, dict]:
        """(snapshot, incremental source, token contents) of `zfs send -t`, with the real
        command's refusals."""
        nv = _decode_token(token)
        toname, toguid = nv.get("toname"), nv.get("toguid")
        if not isinstance(toname, str) or not isinstance(toguid, int) or "after" not in nv:
            raise ZfsError("cannot resume send: resume token is corrupt")
        snap = next((s for s in self._snapshots_of(st, toname.split("@", 1)[0])
                     if st["snapshots"][s]["guid"] == toguid), None)  # renamed is fine
        if snap is None:
            reason = ("is no longer the same snapshot used in the initial send"
                      if toname in st["snapshots"] else "used in the initial send no longer exists")
            raise ZfsError(f"cannot resume send: '{toname}' {reason}")
        base = None
        if nv.get("fromguid"):
            base = next((s for s in self._snapshots_of(st, snap.split("@", 1)[0])
                         if st["snapshots"][s]["guid"] == nv["fromguid"]), None)
            if base is None:
                raise ZfsError(f"cannot resume send: incremental source {nv['fromguid']:#x} "
                               "no longer exists")
        return snap, base, nv

    def send(self, out, snap: str | None, from_snap: str | None = None,
             intermediates: bool = False, props: bool = False, verbose=None,
             dry_run: bool = False, token: str | None = None) -> None:
        """Write a stream for `snap` (full, or incremental from `from_snap`, -I with
        `intermediates`; or what a resume `token` still misses) to the binary file `out`;
        -v text goes to `verbose`. The state lock is held to plan, not while streaming."""
        with self.batch() as st:
            after, nv = None, None
            if token is not None:
                snap, from_snap, nv = self._resume_plan(st, token)
                after = nv["after"]
            if snap not in st["snapshots"]:
                raise ZfsError(f"cannot open '{snap}': dataset does not exist")
            fs = snap.split("@", 1)[0]
            carried = [snap]
            from_meta = None
            if from_snap:
                if from_snap not in st["snapshots"]:
                    if intermediates:
                        raise ZfsError(f"WARNING: could not send {snap}:\n"
                                       f"incremental source ({from_snap}) does not exist")
                    raise ZfsError(f"warning: cannot send '{snap}': "
                                   f"incremental source ({from_snap}) does not exist")
                from_meta = st["snapshots"][from_snap]
                if from_meta["createtxg"] >= st["snapshots"][snap]["createtxg"]:
                    raise ZfsError(f"warning: cannot send '{snap}': not an earlier snapshot "
                                   "from the same fs")
                if intermediates:
                    carried = [s for s in self._snapshots_of(st, fs)
                               if from_meta["createtxg"] < st["snapshots"][s]["createtxg"]
                               <= st["snapshots"][snap]["createtxg"]]
            parts, base = [], from_snap
            for s in carried:
                parts.append(self._delta(st, base, s, after))
                base = s
            trees = {s: self._tree(st["snapshots"][s]) for s in carried}
            header = {"source": fs, "toname": snap, "resume": token is not None,
                      "fromguid": from_meta["guid"] if from_meta else 0,
                      "fromname": from_snap,
                      "props": dict(st["datasets"][fs]["props"]) if props else None,
                      "snapshots": [{"name": s.split("@", 1)[1], "guid": st["snapshots"][s]["guid"],
                                     "creation": st["snapshots"][s]["creation"]} for s in carried]}
        if verbose is not None:
            if nv is not None:
                verbose.write("resume token contents:\nnvlist version: 0\n" + "".join(
                    f"\t{k} = {v:#x}\n" if isinstance(v, int) else f"\t{k} = {v}\n"
                    for k, v in nv.items()))
            for part in parts:
                if part["from"]:
                    verbose.write(f"send from @{part['from'].split('@', 1)[1]} to {part['snap']} "
                                  f"estimated size is {nicenum(part['size'])}\n")
                else:
                    verbose.write(f"full send of {part['snap']} estimated size is "
                                  f"{nicenum(part['size'])}\n")
            verbose.write(f"total estimated size is {nicenum(sum(p['size'] for p in parts))}\n")
            if not dry_run:
                verbose.write(f"TIME        SENT   SNAPSHOT {snap}\n")
            verbose.flush()
        if dry_run:
            return
        rate = toolbox.read(self.host_path(SEND_RATE_FILE), "").strip()
        pump = _Pump(out, int(rate) if rate.isdigit() else 0, verbose, snap)
        pump.send(STREAM_MAGIC + json.dumps(header).encode() + b"\n")
        for i, part in enumerate(parts):
            pump.send(_line({"begin": i, "deleted": part["deleted"]}))
            for rel, entry in part["records"]:
                pump.send(_line({"path": rel, "entry": entry[:6]}))
                if entry[0] == "f":
                    with open(trees[part["snap"]] / rel, "rb") as f:
                        left = entry[5]
                        while left:
                            chunk = f.read(min(CHUNK, left))
                            if not chunk:  # shrunk under us: the same in-place write
                                with self.batch() as st:
                                    self._check(st, part["snap"], rel, entry)
                                raise ZfsError(f"lab zfs: {part['snap']}: {rel} shrank while sent")
                            pump.send(chunk)
                            left -= len(chunk)
            pump.send(_line({"end": i, "dirs": part["dirs"]}))
        out.flush()
        if verbose is not None:
            verbose.write(f"{time.strftime('%H:%M:%S')}   {nicenum(pump.sent):>5}   {snap}\n")

    def abort_receive(self, fs: str) -> None:
        """`zfs receive -A`: drop a partial receive (and the filesystem it was creating)."""
        with self.batch() as st:
            if fs not in st["datasets"]:
                raise ZfsError(f"cannot open '{fs}': dataset does not exist", 2, "receive")
            ds = st["datasets"][fs]
            if "recv" not in ds:
                raise ZfsError(f"'{fs}' does not have any resumable receive state to abort")
            if ds.get("inconsistent"):
                self.destroy(fs)
            else:
                shutil.rmtree(self.state_dir / ds.pop("recv")["stage"], ignore_errors=True)
            self._changed()

    def _receive_checks(self, st: dict, header: dict, fs: str, force: bool, resumable: bool,
                        where: str) -> str | None:
        """The refusals before any data is read, as OpenZFS orders them; the target's
        snapshot the stream's first snapshot builds on (None: a full stream)."""
        full = header["fromguid"] == 0
        ds = st["datasets"].get(fs)
        if header["resume"]:
            if ds is None:
                raise ZfsError(f"{where}: destination '{fs}' does not exist")
            if full and not ds.get("inconsistent") and not force:
                raise ZfsError(f"{where}: Resuming recv on existing destination '{fs}'\n"
                               "must specify -F to overwrite it")
            if ds.get("recv", {}).get("toguid") != header["snapshots"][0]["guid"]:
                raise ZfsError(f"{where}: " + ("kernel modules must be upgraded to receive "
                                               "this stream." if resumable else
                                               "invalid backup stream"))
            return None
        busy = ZfsError(f"{where}: destination {fs} contains partially-complete state from "
                        "\"zfs receive -s\".")
        if full:
            if ds is not None:
                if not force:
                    raise ZfsError(f"{where}: destination '{fs}' exists\n"
                                   "must specify -F to overwrite it")
                existing = self._snapshots_of(st, fs)
                if existing:
                    # The real one names the first its ZAP cursor meets; here the newest.
                    raise ZfsError(f"{where}: destination has snapshots (eg. {existing[-1]})\n"
                                   "must destroy them to overwrite it")
                if "recv" in ds:
                    raise busy
            else:
                parent = _parent(fs)
                if parent is None:
                    raise ZfsError(f"{where}: destination '{fs}' does not exist")
                if parent not in st["datasets"]:
                    raise ZfsError(f"cannot open '{parent}': dataset does not exist\n"
                                   f"{where}: unable to restore to destination")
            return None
        if ds is None:
            raise ZfsError(f"{where}: destination '{fs}' does not exist")
        if "recv" in ds:
            raise busy
        snaps = self._snapshots_of(st, fs)
        by_guid = {st["snapshots"][s]["guid"]: s for s in snaps}
        base = by_guid.get(header["fromguid"])
        if force and base is not None and snaps[-1] != base:
            for s in snaps[snaps.index(base) + 1:]:
                self._remove_snapshot(st, s)
            snaps = self._snapshots_of(st, fs)
        if not snaps or st["snapshots"][snaps[-1]]["guid"] != header["fromguid"]:
            raise ZfsError(f"{where}: most recent snapshot of {fs} does not\n"
                           "match incremental source")
        if self._fingerprint(st, fs)[0] != st["snapshots"][snaps[-1]]["fingerprint"]:
            if not force:
                raise ZfsError(f"{where}: destination {fs} has been modified\n"
                               "since most recent snapshot")
            self.rollback(snaps[-1])
        return snaps[-1]

    def receive(self, stream, target: str, force: bool = False, no_mount: bool = False,
                resumable: bool = False) -> None:
        """Apply a stream from `send` read from the binary file `stream` to `target`.

        Each carried snapshot is built in a staging tree (the previous snapshot's tree in
        hard links, minus what the stream deletes, plus its records) that becomes the
        snapshot's tree; the live filesystem follows the last complete one. A stream that ends
        early keeps the complete snapshots; with `resumable` (-s) also the staging tree and
        the last path whose record completed, which the resume token carries."""
        if stream.readline() != STREAM_MAGIC:
            raise ZfsError("cannot receive: invalid stream (bad magic number)")
        line = stream.readline()
        if not line.endswith(b"\n"):
            raise ZfsError("cannot receive: failed to read from stream")
        header = json.loads(line)
        fs, _, target_snap = target.partition("@")
        what = ("resume" if header["resume"] else
                "new filesystem" if header["fromguid"] == 0 else "incremental")
        where = f"cannot receive {what} stream"
        with self.batch() as st:
            base = self._receive_checks(st, header, fs, force, resumable, where)
            partial = st["datasets"][fs]["recv"] if header["resume"] else None
            names = [s["name"] for s in header["snapshots"]]
            if target_snap:
                names[-1] = target_snap
            if partial:
                names = [partial["name"]]
            for name in names:
                if f"{fs}@{name}" in st["snapshots"]:
                    raise ZfsError(f"cannot restore to {fs}@{name}: destination already exists")
        keep = resumable or partial is not None  # a cut leaves a resumable state
        done, cur = [], None  # snapshots received; the one being received
        try:
            while len(done) < len(names):
                record = _record(stream)
                if "begin" in record:
                    i = record["begin"]
                    fromguid = header["snapshots"][i - 1]["guid"] if i else header["fromguid"]
                    cur = {"name": names[i], "after": "", "bytes": 0,
                           "toguid": header["snapshots"][i]["guid"], "fromguid": fromguid,
                           "toname": f"{header['source']}@{header['snapshots'][i]['name']}",
                           "creation": header["snapshots"][i]["creation"]}
                    if partial:
                        cur.update(partial)
                    else:
                        cur["stage"] = f"recv/{os.getpid()}-{random.getrandbits(32):08x}"
                        self._stage(fs, done[-1] if done else base, record["deleted"],
                                    self.state_dir / cur["stage"])
                        if keep:
                            self._keep_partial(fs, cur, header)
                    saved = time.monotonic()
                elif "path" in record:
                    cur["bytes"] += self._stage_record(stream, self.state_dir / cur["stage"],
                                                       record)
                    cur["after"] = record["path"]
                    if keep and time.monotonic() > saved + 2:  # a killed receiver loses little
                        self._keep_partial(fs, cur, header)
                        saved = time.monotonic()
                else:
                    self._stage_commit(fs, cur, record["dirs"], header, props=not done)
                    done.append(cur["name"])
                    cur = None
        except (_Cut, KeyboardInterrupt):
            if done:
                self._receive_done(fs, done[-1], no_mount, base)
            if cur is not None and keep:
                token = self._keep_partial(fs, cur, header)
                raise ZfsError(f"{where}: checksum mismatch or incomplete stream.\n"
                               "Partially received snapshot is saved.\n"
                               "A resuming stream can be generated on the sending system by "
                               f"running:\n    zfs send -t {token}") from None
            raise ZfsError(f"{where}: incomplete stream") from None
        finally:
            if cur is not None:
                (self.state_dir / (cur["stage"] + ".part")).unlink(missing_ok=True)
                if not keep:
                    shutil.rmtree(self.state_dir / cur["stage"], ignore_errors=True)
        self._receive_done(fs, done[-1], no_mount, base)

    def _stage(self, fs: str, base: str | None, deleted: list[str], stage: Path) -> None:
        """A staging tree: the base snapshot's tree in hard links, minus `deleted`."""
        stage.mkdir(parents=True)
        try:
            self._fill_stage(fs, base, deleted, stage)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise

    def _fill_stage(self, fs: str, base: str | None, deleted: list[str], stage: Path) -> None:
        if base is None:
            return
        with self.batch() as st:
            snap = f"{fs}@{base}" if "@" not in base else base
            manifest = self._check_all(st, snap)
            tree = str(self._tree(st["snapshots"][snap])) + "/"
        prefix = str(stage) + "/"
        for rel in sorted(manifest):
            if rel == ".":
                continue
            entry, dest = manifest[rel], prefix + rel
            if entry[0] == "d":
                os.mkdir(dest)
            elif entry[0] == "l":
                os.symlink(entry[5], dest)
                _attrs(dest, entry)
            else:
                try:
                    os.link(tree + rel, dest)  # both names are snapshot trees: never written
                except OSError:
                    _copy(tree + rel, dest, os.lstat(tree + rel))
        for rel in deleted:
            _remove(stage / rel)

    def _stage_record(self, stream, stage: Path, record: dict) -> int:
        """Apply one file or symlink record: a file is read whole into a side file and only
        then renamed into place, so the tree never holds a half-received file."""
        rel, entry = record["path"], record["entry"]
        dest, part = stage / rel, stage.with_name(stage.name + ".part")
        if entry[0] == "f":
            with open(part, "wb") as f:
                left = entry[5]
                while left:
                    chunk = stream.read(min(CHUNK, left))
                    if not chunk:
                        raise _Cut()
                    f.write(chunk)
                    left -= len(chunk)
            _attrs(part, entry)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.is_dir() and not dest.is_symlink():
            shutil.rmtree(dest)
        if entry[0] == "f":
            os.replace(part, dest)
            return entry[5]
        dest.unlink(missing_ok=True)
        os.symlink(entry[5], dest)
        _attrs(dest, entry)
        return 0

    def _stage_commit(self, fs: str, cur: dict, dirs: dict, header: dict, props: bool) -> None:
        """The end of a snapshot's records: directories get their stats (the changed ones from
        the stream, the others the base's), the staging tree becomes the snapshot."""
        stage = self.state_dir / cur["stage"]
        with self.batch() as st:
            base = next((s for s in self._snapshots_of(st, fs)
                         if st["snapshots"][s]["guid"] == cur["fromguid"]), None)
            base = self._manifest(st["snapshots"][base]) if base else {}
        for rel in sorted(dirs):
            if (stage / rel).is_symlink() or (stage / rel).exists() and not (stage / rel).is_dir():
                _remove(stage / rel)
            (stage / rel).mkdir(parents=True, exist_ok=True)
        prefix = str(stage) + "/"
        present = ["."] + [rel for rel, _p, info in _walk(stage) if stat.S_ISDIR(info.st_mode)]
        for rel in sorted(present, reverse=True):
            entry = dirs.get(rel) or base.get(rel)
            if entry:
                _attrs(stage if rel == "." else prefix + rel, entry)
        h, size, manifest = hashlib.sha256(), 0, {}
        for rel, path, info in _walk(stage):
            manifest[rel] = entry = _entry(path, info)
            _digest(h, rel, info, entry)
            size += info.st_size if stat.S_ISREG(info.st_mode) else 0
        manifest = {rel: e for rel, e in manifest.items() if e is not None}
        with _deferred_signals(), self.batch() as st:
            if fs not in st["datasets"]:
                self._new_dataset(st, fs, {})
            if props and header.get("props"):
                for prop, value in header["props"].items():
                    if prop in ("mountpoint", "canmount"):
                        self.set(fs, prop, value)
                    else:
                        st["datasets"][fs]["props"][prop] = value
            tree = self._new_tree(cur["toguid"])
            os.replace(stage, self.state_dir / "snapshots" / tree)  # over the empty directory
            self._record_snapshot(st, fs, cur["name"], {
                "guid": cur["toguid"], "tree": tree, "createtxg": self._next_txg(st),
                "fingerprint": h.hexdigest(), "referenced": size,
                "creation": int(cur["creation"])},
                {".": _entry(stage, os.lstat(self.state_dir / "snapshots" / tree)), **manifest})
            st["datasets"][fs].pop("recv", None)

    def _keep_partial(self, fs: str, cur: dict, header: dict) -> str:
        """Record a partial receive on its filesystem (a new one exists from now on, marked
        inconsistent, its data not the snapshot's); the resume token."""
        with _deferred_signals(), self.batch() as st:
            if fs not in st["datasets"]:
                self._new_dataset(st, fs, {})
                st["datasets"][fs].update(inconsistent=True, mounted=False)
            st["datasets"][fs]["recv"] = {k: cur[k] for k in (
                "stage", "name", "after", "bytes", "toguid", "fromguid", "toname", "creation")}
            self._changed()
            return self._token(st, fs)

    def _token(self, st: dict, fs: str) -> str | None:
        """`receive_resume_token`: 1-<adler32 hex>-<length hex>-<zlib'd JSON in hex>, laid
        out like OpenZFS's (which packs an nvlist and sums it with fletcher4)."""
        recv = st["datasets"][fs].get("recv")
        if not recv:
            return None
        nv = {"fromguid": recv["fromguid"], "object": 0, "offset": 0, "bytes": recv["bytes"],
              "toguid": recv["toguid"], "toname": recv["toname"], "after": recv["after"]}
        if not nv["fromguid"]:
            del nv["fromguid"]
        packed = json.dumps(nv).encode()
        data = zlib.compress(packed)
        return f"1-{zlib.adler32(data):x}-{len(packed):x}-{data.hex()}"

    def _receive_done(self, fs: str, last: str, no_mount: bool, base: str | None) -> None:
        """The live filesystem becomes the last snapshot received: only what changed since
        `base` when it still holds that snapshot (an incremental stream), else rebuilt."""
        with _deferred_signals(), self.batch() as st:
            ds = st["datasets"][fs]
            if not (base and self._apply_delta(st, fs, base, f"{fs}@{last}")):
                self._restore(st, fs, f"{fs}@{last}")
            st["snapshots"][f"{fs}@{last}"]["fingerprint"] = self._fingerprint(st, fs)[0]
            if ds.pop("inconsistent", False):
                ds["mounted"] = True
            if no_mount:
                ds["mounted"] = False
            self._changed()

    # -- list / get rows -----------------------------------------------------------------
    def _select(self, st: dict, args: list[str], recursive: bool, depth: int | None,
                types: set[str], snaps_in_recursion: bool) -> tuple[list[str], int]:
        """Names zfs_for_each visits, in zfs_compare order; (names, arguments that failed).
        Snapshots count one level below their dataset for -d; `zfs list` without -t leaves
        them out of recursion (listsnapshots=off) but shows ones named as arguments."""
        errors = 0
        picked: dict[str, None] = {}

        def visit(name: str, level: int, recurse: bool):
            if name in st["snapshots"]:
                if "snapshot" in types:
                    picked[name] = None
                return
            if "filesystem" in types:
                picked[name] = None
            if not recurse or (depth is not None and level >= depth):
                return
            if snaps_in_recursion and "snapshot" in types:
                for snap in self._snapshots_of(st, name):
                    picked[snap] = None
            for child in self._children(st, name):
                if _parent(child) == name:
                    visit(child, level + 1, recurse)

        recurse = recursive or depth is not None
        if not args:
            for pool in sorted((d for d in st["datasets"] if "/" not in d), key=str.encode):
                visit(pool, 0, True)
        for arg in args:
            if arg not in st["datasets"] and arg not in st["snapshots"]:
                sys.stderr.write(f"cannot open '{arg}': dataset does not exist\n")
                errors += 1
                continue
            visit(arg, 0, recurse)

        def order(name: str):
            fs, _, snap = name.partition("@")
            return (fs.encode(), 1 if snap else 0,
                    st["snapshots"][name]["createtxg"] if snap else 0)
        return sorted(picked, key=order), errors

    def list(self, under: str | None = None, types: str = "filesystem",
             recursive: bool = True) -> list[str]:
        """Names, as `zfs list -H -o name [-r] [-t filesystem|snapshot|all] [under]`."""
        with self.batch() as st:
            wanted = {"filesystem", "snapshot"} if types == "all" else {types}
            names, errors = self._select(st, [under] if under else [], recursive, None,
                                         wanted, True)
            if errors:
                raise ZfsError(f"cannot open '{under}': dataset does not exist")
            return names


# -- the command line ----------------------------------------------------------------------
def _usage_text(command: str | None) -> str:
    if not command:
        text = "usage: zfs command args ...\nwhere 'command' is one of the following:\n\n"
        text += "".join(USAGE[c] for c in COMMAND_ORDER)
        return text + "\nEach dataset is of the form: pool/[dataset/]*dataset[@name]\n"
    text = "usage:\n" + USAGE[command]
    if command in ("set", "get", "inherit", "list"):
        text += "\nThe following properties are supported:\n\n"
        text += f"\t{'PROPERTY':<21} EDIT  INHERIT   VALUES\n\n"
        for name, (_c, _k, _d, inherit, readonly, _a, _v) in sorted(PROPS.items()):
            text += (f"\t{name:<22} " + (" NO    " if readonly else "YES    ")
                     + ("  YES   " if inherit else "   NO   ") + VALUES_TEXT.get(name, "-") + "\n")
        text += ("\nSizes are specified in bytes with standard units such as K, M, G, etc.\n"
                 "\nUser-defined properties can be specified by using a name containing a "
                 "colon (:).\n")
    else:
        text += ("\nFor the property list, run: zfs set|get\n"
                 "\nFor the delegated permission list, run: zfs allow|unallow\n"
                 "\nFor further help on a command or topic, run: zfs help [<topic>]\n")
    return text


def _getopt(command: str, args: list[str], spec: str):
    try:
        return getopt.gnu_getopt(args, spec)
    except getopt.GetoptError as e:
        if "requires argument" in e.msg:
            raise UsageError(f"missing argument for '{e.opt}' option", command) from None
        raise UsageError(f"invalid option '{e.opt}'", command) from None


def _prop_list(text: str, command: str, allow_all: bool) -> list[str]:
    props = []
    for raw in text.split(","):
        name = ALIASES.get(raw, raw)
        if name == "all" and allow_all:
            props += ["all"]
        elif name == "name" or name in PROPS or _is_user_prop(name):
            props.append(name)
        else:
            raise UsageError(f"bad property list: invalid property '{raw}'", command)
    return props


def _types(text: str, command: str) -> set[str]:
    types = set()
    for tok in text.split(","):
        if tok in ("filesystem", "fs"):
            types.add("filesystem")
        elif tok in ("snapshot", "snap"):
            types.add("snapshot")
        elif tok == "all":
            types |= {"filesystem", "snapshot"}
        elif tok in ("volume", "vol", "bookmark"):
            types.add(tok)
        else:
            raise UsageError(f"invalid type '{tok}'", command)
    return types


def _depth_arg(text: str, command: str) -> int:
    if not text.isdigit():
        raise UsageError(f"invalid depth '{text}'", command)
    return int(text)


def _width(z: Zfs, st: dict, prop: str, header: str, values: list[str], literal: bool) -> int:
    if prop in FIXED_WIDTH and not literal:
        return max(len(header), 5)
    return max([len(header)] + [len(v) for v in values])


def cmd_list(z: Zfs, args: list[str], out) -> int:
    opts, rest = _getopt("list", args, "Hprd:o:s:S:t:")
    scripted = literal = recursive = False
    depth, fields, sorts, types = None, "name,used,available,referenced,mountpoint", [], None
    for o, v in opts:
        if o == "-H":
            scripted = True
        elif o == "-p":
            literal = True
        elif o == "-r":
            recursive = True
        elif o == "-d":
            depth = _depth_arg(v, "list")
        elif o == "-o":
            fields = v
        elif o in ("-s", "-S"):
            prop = ALIASES.get(v, v)
            if prop != "name" and prop not in PROPS and not _is_user_prop(prop):
                raise UsageError(f"invalid property '{v}'", "list")
            sorts.append((prop, o == "-S"))
        elif o == "-t":
            types = _types(v, "list")
    props = _prop_list(fields, "list", allow_all=False)
    # Without -t, recursion leaves snapshots out (the pool's listsnapshots=off).
    snaps_in_recursion = types is not None
    types = types or {"filesystem", "snapshot"}
    if types == {"snapshot"} and rest and not recursive and depth is None:
        depth = 1  # `zfs list -t snapshot ds`: the snapshots of ds
    with z.batch() as st:
        names, errors = z._select(st, rest, recursive, depth, types, snaps_in_recursion)
        rows = []
        for name in names:
            row = []
            for prop in props:
                if prop == "name":
                    row.append(name)
                    continue
                result = z._value(st, name, prop, literal)
                row.append("-" if result is None else result[0])
            rows.append((name, row))
        for prop, reverse in reversed(sorts):
            def key(item, prop=prop):
                name, _row = item
                if prop == "name":
                    return (0, name.encode())
                result = z._value(st, name, prop, True)
                value = "-" if result is None else result[0]
                if value.isdigit():
                    return (0, int(value))
                return (1, value.encode())
            rows.sort(key=key, reverse=reverse)
        headers = [p.upper() if _is_user_prop(p) else ("NAME" if p == "name" else PROPS[p][0])
                   for p in props]
        if scripted:
            for _name, row in rows:
                out.write("\t".join(row) + "\n")
        elif rows:
            widths = [_width(z, st, p, h, [r[i] for _n, r in rows], literal)
                      for i, (p, h) in enumerate(zip(props, headers, strict=True))]
            right = [p in PROPS and PROPS[p][1] == "num" for p in props]

            def line(cells):
                parts = []
                for i, cell in enumerate(cells):
                    if right[i]:
                        parts.append(cell.rjust(widths[i]))
                    elif i == len(cells) - 1:
                        parts.append(cell)
                    else:
                        parts.append(cell.ljust(widths[i]))
                return "  ".join(parts) + "\n"
            out.write(line(headers))
            for _name, row in rows:
                out.write(line(row))
        if not rows and not scripted and not errors:
            sys.stderr.write("no datasets available\n")
    return 1 if errors else 0


def cmd_get(z: Zfs, args: list[str], out) -> int:
    opts, rest = _getopt("get", args, "Hprd:o:s:t:")
    scripted = literal = recursive = False
    depth, columns, types, sources = None, ["name", "property", "value", "source"], None, None
    for o, v in opts:
        if o == "-H":
            scripted = True
        elif o == "-p":
            literal = True
        elif o == "-r":
            recursive = True
        elif o == "-d":
            depth = _depth_arg(v, "get")
        elif o == "-o":
            columns = []
            for tok in v.split(","):
                if tok == "all":
                    columns = ["name", "property", "value", "received", "source"]
                elif tok in ("name", "property", "value", "received", "source"):
                    columns.append(tok)
                else:
                    raise UsageError(f"invalid column name '{tok}'", "get")
        elif o == "-s":
            sources = set(v.split(","))
        elif o == "-t":
            types = _types(v, "get")
    if not rest:
        raise UsageError("missing property argument", "get")
    props = _prop_list(rest[0], "get", allow_all=True)
    show_all = "all" in props
    if show_all:
        props = ["type", "creation", "used", "available", "referenced", "compression",
                 "mounted", "quota", "recordsize", "mountpoint", "sharenfs", "sync", "atime",
                 "relatime", "canmount", "origin", "clones", "refquota", "createtxg"]
    types = types or {"filesystem", "snapshot"}
    with z.batch() as st:
        names, errors = z._select(st, rest[1:], recursive, depth, types, True)
        rows = []
        for name in names:
            user_props = []
            if show_all:
                obj = st["snapshots"].get(name) or st["datasets"][name]
                user_props = sorted(p for p in obj.get("props", {}) if _is_user_prop(p))
            for prop in props + user_props:
                if prop == "name":
                    rows.append((name, "name", name, "-"))
                    continue
                result = z._value(st, name, prop, literal)
                if result is None:
                    if show_all:
                        continue
                    result = ("-", "-")
                value, source = result
                kind = source.split(" ")[0] if source != "-" else "none"
                if sources and kind not in sources:
                    continue
                rows.append((name, prop, value, source))
        cells_of = {"name": 0, "property": 1, "value": 2, "source": 3}
        if rows and not scripted:
            widths = {"name": max(4, *(len(r[0]) for r in rows)),
                      "property": max(8, *(len(r[1]) for r in rows)),
                      "value": max([5] + [len(r[2]) for r in rows]
                                   + [5 if p in FIXED_WIDTH and not literal else
                                      len(PROPS[p][0]) if p in PROPS else len(p)
                                      for p in set(r[1] for r in rows) if p != "name"]),
                      "received": 8, "source": 6}
            header = []
            for i, col in enumerate(columns):
                title = col.upper()
                header.append(title if i == len(columns) - 1 else title.ljust(widths[col]))
            out.write("  ".join(header) + "\n")
        for row in rows:
            cells = [row[cells_of[c]] if c != "received" else "-" for c in columns]
            if scripted:
                out.write("\t".join(cells) + "\n")
            else:
                out.write("  ".join(c if i == len(cells) - 1 else c.ljust(widths[columns[i]])
                                    for i, c in enumerate(cells)) + "\n")
    return 1 if errors else 0


def _parse_assignment(text: str, command: str) -> tuple[str, str]:
    if "=" not in text:
        raise UsageError("missing '=' for property=value argument" if command == "set"
                         else "missing '=' for -o option", command)
    prop, value = text.split("=", 1)
    if not prop:
        raise UsageError("missing property in property=value argument", command)
    return ALIASES.get(prop, prop), value


def main(argv: list[str] | None = None, root: str | None = None, stdin=None, stdout=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    root = root or os.environ.get("LAB_ZFS_ROOT", "/")
    stdin = stdin or sys.stdin.buffer
    stdout = stdout or sys.stdout.buffer
    text_out = io.TextIOWrapper(stdout, encoding="utf-8", errors="surrogateescape",
                                write_through=True)
    z = Zfs(root)
    command = argv[0] if argv else None
    if command in ("recv",):
        command = "receive"
    if command == "snap":
        command = "snapshot"
    if command == "umount":
        command = "unmount"
    try:
        if command is None:
            raise UsageError("missing command", None)
        if command in ("help", "-?", "--help"):
            text_out.write(_usage_text(None))
            return 0
        if command not in USAGE:
            raise UsageError(f"unrecognized command '{command}'", None)
        return _run(z, command, argv[1:], stdin, stdout, text_out)
    except ZfsError as e:
        if e.message:
            sys.stderr.write(e.message + "\n")
        if e.usage is not None:
            sys.stderr.write(_usage_text(e.usage or None))
        return e.code
    finally:
        with contextlib.suppress(ValueError):
            text_out.flush()
        text_out.detach()


def _run(z: Zfs, command: str, args: list[str], stdin, stdout, text_out) -> int:
    if command == "create":
        opts, rest = _getopt(command, args, "po:")
        props = dict(_parse_assignment(v, "create") for o, v in opts if o == "-o")
        if not rest:
            raise UsageError("missing filesystem argument", command)
        if len(rest) > 1:
            raise UsageError("too many arguments", command)
        z.create(rest[0], parents=any(o == "-p" for o, _ in opts), props=props)
        return 0
    if command == "destroy":
        opts, rest = _getopt(command, args, "vpndfrR")
        if not rest:
            raise UsageError("missing dataset argument", command)
        if len(rest) > 1:
            raise UsageError("too many arguments", command)
        z.destroy(rest[0], recursive=any(o in ("-r", "-R") for o, _ in opts))
        return 0
    if command == "snapshot":
        opts, rest = _getopt(command, args, "ro:")
        if not rest:
            raise UsageError("missing snapshot argument", command)
        z.snapshot(rest, recursive=any(o == "-r" for o, _ in opts))
        return 0
    if command == "rename":
        opts, rest = _getopt(command, args, "pruf")
        flags = {o for o, _ in opts}
        if not rest:
            raise UsageError("missing source dataset argument", command)
        if len(rest) < 2:
            raise UsageError("missing target dataset argument", command)
        if len(rest) > 2:
            raise UsageError("too many arguments", command)
        if "-r" in flags and "-p" in flags:
            raise UsageError("-p and -r options are mutually exclusive", command)
        if "-r" in flags and "@" not in rest[0]:
            raise UsageError("source dataset for recursive rename must be a snapshot", command)
        z.rename(rest[0], rest[1], parents="-p" in flags, recursive="-r" in flags)
        return 0
    if command == "list":
        return cmd_list(z, args, text_out)
    if command == "get":
        return cmd_get(z, args, text_out)
    if command == "set":
        opts, rest = _getopt(command, args, "u")
        assignments = [a for a in rest if "=" in a]
        targets = [a for a in rest if "=" not in a]
        if not rest:
            raise UsageError("missing arguments", command)
        if not assignments:
            raise UsageError("missing property=value argument(s)", command)
        if not targets:
            raise UsageError("missing dataset name(s)", command)
        code = 0
        for target in targets:
            for assignment in assignments:
                prop, value = _parse_assignment(assignment, command)
                try:
                    z.set(target, prop, value)
                except ZfsError as e:
                    sys.stderr.write(e.message + "\n")
                    code = 1
        return code
    if command in ("mount", "unmount"):
        opts, rest = _getopt(command, args, "flvOo:u")
        if command == "mount" and not rest:  # the mounted filesystems and where
            rows = [(n, z.get(n, "mountpoint")) for n in z.datasets() if z.get(n, "mounted") == "yes"]
            width = max((len(n) for n, _ in rows), default=0)
            text_out.write("".join(f"{n:<{width}}  {mp}\n" for n, mp in rows))
            return 0
        if len(rest) != 1:
            raise UsageError("missing filesystem argument" if not rest else "too many arguments", command)
        z.mount(rest[0], mounted=command == "mount")
        return 0
    if command == "inherit":
        opts, rest = _getopt(command, args, "rS")
        if not rest:
            raise UsageError("missing property argument", command)
        if len(rest) < 2:
            raise UsageError("missing dataset argument", command)
        recursive = any(o == "-r" for o, _ in opts)
        for target in rest[1:]:
            with z.batch() as st:
                z._need(st, target)
                names = [target] + (z._children(st, target) if recursive else [])
            for name in names:
                z.inherit(name, rest[0])
        return 0
    if command == "send":
        opts, rest = _getopt(command, args, "cpLvnePi:I:t:")
        flags = {o for o, _ in opts}
        from_snap, intermediates, token = None, False, None
        for o, v in opts:
            if o in ("-i", "-I"):
                from_snap, intermediates = v, o == "-I"
            elif o == "-t":
                token = v
        verbose = sys.stderr if "-v" in flags else None
        if "-n" in flags and verbose is not None:
            verbose = text_out
        if token is not None:
            if from_snap or "-p" in flags:
                raise UsageError("invalid flags combined with -t", command)
            if rest:
                raise UsageError("too many arguments", command)
            if "-n" not in flags and os.isatty(stdout.fileno()):
                raise ZfsError("Error: Stream can not be written to a terminal.\n"
                               "You must redirect standard output.")
            z.send(stdout, None, verbose=verbose, dry_run="-n" in flags, token=token)
            return 0
        if not rest:
            raise UsageError("missing snapshot argument", command)
        if len(rest) > 1:
            raise UsageError("too many arguments", command)
        snap = rest[0]
        if "-n" not in flags and os.isatty(stdout.fileno()):
            raise ZfsError("Error: Stream can not be written to a terminal.\n"
                           "You must redirect standard output.")
        if "@" not in snap:
            with z.batch() as st:
                z._need(st, snap)
            raise ZfsError(f"cannot open '{snap}': operation not applicable to datasets of "
                           "this type")
        fs = snap.split("@", 1)[0]
        if from_snap:
            if "@" in from_snap:
                from_fs, _, from_name = from_snap.partition("@")
                if from_fs and from_fs != fs:
                    raise UsageError("incremental source must be in same filesystem", command)
            else:
                sys.stderr.write("Warning: incremental source didn't specify type, assuming "
                                 "snapshot. Use '@' or '#' prefix to avoid ambiguity.\n")
                from_name = from_snap
            if "@" in from_name or "/" in from_name:
                raise UsageError("invalid incremental source", command)
            from_snap = f"{fs}@{from_name}"
        z.send(stdout, snap, from_snap, intermediates, props="-p" in flags, verbose=verbose,
               dry_run="-n" in flags)
        return 0
    if command == "receive":
        opts, rest = _getopt(command, args, "vnFusdeAo:x:")
        flags = {o for o, _ in opts}
        if not rest:
            raise UsageError("missing snapshot argument", command)
        if len(rest) > 1:
            raise UsageError("too many arguments", command)
        if "-A" in flags:
            if flags & {"-d", "-e", "-n", "-s", "-u"}:
                raise UsageError("invalid option", command)
            z.abort_receive(rest[0])
            return 0
        if os.isatty(stdin.fileno()):
            raise ZfsError("Error: Backup stream can not be read from a terminal.\n"
                           "You must redirect standard input.")
        # A killed receive (a cut ssh hangs up) ends like a cut stream: -s keeps what came.
        global _SIGNALS
        _SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
        for sig in _SIGNALS[:2]:
            signal.signal(sig, _stop)
        z.receive(stdin, rest[0], force="-F" in flags, no_mount="-u" in flags,
                  resumable="-s" in flags)
        return 0
    raise UsageError(f"unrecognized command '{command}'", None)


def _stop(signum, frame):
    raise _Cut()


def zpool_main(argv: list[str]) -> int:
    """`zpool list [-H] [-o name]`: the lab's pools are its top-level datasets."""
    z = Zfs(os.environ.get("LAB_ZFS_ROOT", "/"))
    if not argv or argv[0] != "list":
        sys.stderr.write("usage: zpool list [-H] [-o name] [pool] ...\n(lab: only "
                         "`zpool list` is simulated)\n")
        return 2
    opts, rest = getopt.gnu_getopt(argv[1:], "Hpo:")
    scripted = any(o == "-H" for o, _ in opts)
    with z.batch() as st:
        pools = sorted(d for d in st["datasets"] if "/" not in d)
    for name in rest:
        if name not in pools:
            sys.stderr.write(f"cannot open '{name}': no such pool\n")
            return 1
    pools = rest or pools
    if not pools:
        sys.stdout.write("no pools available\n")
        return 0
    if not scripted:
        sys.stdout.write("NAME\n")
    for pool in pools:
        sys.stdout.write(pool + "\n")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `zfs list | head` ends quietly, as real
    toolbox.main({"zfs": main, "zpool": zpool_main})
