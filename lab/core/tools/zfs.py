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
hidden directory when the mountpoint is none/legacy); a snapshot is a full copy of the
dataset's own files (child datasets left out) under /var/lib/lab/zfs/snapshots/<guid>;
a send stream is a one-line JSON header followed by a tar of each snapshot it carries;
`used` of a snapshot is 0; no clones, volumes or bookmarks.
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
import stat
import sys
import tarfile
import time
from pathlib import Path

if __package__:  # imported on the host (lab.core.tools.zfs)
    from lab.core.tools import toolbox
else:  # run as a program: toolbox.py is next to it
    import toolbox

STATE_DIR = "var/lib/lab/zfs"
STREAM_MAGIC = b"LAB-ZFS-STREAM 1\n"
POOL_FREE_FALLBACK = 1 << 40

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
               "referenced": "<size>"}

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
    "get": "\tget [-rHp] [-j [--json-int]] [-d max] [-o \"all\" | field[,...]]\n"
           "\t    [-t type[,...]] [-s source[,...]]\n"
           "\t    <\"all\" | property[,...]> [filesystem|volume|snapshot|bookmark] ...\n",
    "inherit": "\tinherit [-rS] <property> <filesystem|volume|snapshot> ...\n",
    "send": "\tsend [-DLPbcehnpsUVvw] [-i|-I snapshot]\n"
            "\t     [-R [-X dataset[,dataset]...]]     <snapshot>\n",
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
        child_dirs = {self.host_path(self._data_dir(st, c)) for c in self._children(st, name)}
        if not top.is_dir():
            return
        stack = [top]
        while stack:
            current = stack.pop()
            with os.scandir(current) as it:
                entries = sorted(it, key=lambda e: e.name)
            for entry in entries:
                path = Path(entry.path)
                info = entry.stat(follow_symlinks=False)
                yield str(path.relative_to(top)), path, info
                if stat.S_ISDIR(info.st_mode) and path not in child_dirs:
                    stack.append(path)

    def _fingerprint(self, st: dict, name: str) -> tuple[str, int]:
        """A digest of a filesystem's own tree (to tell "modified since the last snapshot")
        and its size in bytes (`referenced`)."""
        h, size = hashlib.sha256(), 0
        for rel, path, info in self._own_files(st, name):
            target = os.readlink(path) if stat.S_ISLNK(info.st_mode) else ""
            h.update(f"{rel}\0{info.st_mode}\0{info.st_size}\0{info.st_mtime_ns}\0{target}\n"
                     .encode("utf-8", "surrogateescape"))
            if stat.S_ISREG(info.st_mode):
                size += info.st_size
        return h.hexdigest(), size

    def _referenced(self, st: dict, name: str) -> int:
        if name in st["snapshots"]:
            return st["snapshots"][name]["referenced"]
        return self._fingerprint(st, name)[1]

    def _used(self, st: dict, name: str) -> int:
        if name in st["snapshots"]:
            return 0
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
        shutil.rmtree(self.state_dir / "snapshots" / f"{meta['guid']:016x}", ignore_errors=True)
        self._changed()

    def _remove_dataset(self, st: dict, name: str) -> None:
        for snap in self._snapshots_of(st, name):
            self._remove_snapshot(st, snap)
        path = self.host_path(self._data_dir(st, name))
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
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
    def _take_snapshot(self, st: dict, fs: str, snapname: str, creation: int | None = None,
                       guid: int | None = None, txg: int | None = None) -> None:
        guid = guid or (random.getrandbits(63) | 1)
        target = self.state_dir / "snapshots" / f"{guid:016x}"
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        top = self.host_path(self._data_dir(st, fs))
        if top.is_dir():
            shutil.copystat(top, target)
        h, size = hashlib.sha256(), 0
        dirs = []
        for rel, path, info in self._own_files(st, fs):
            dest = target / rel
            mode = info.st_mode
            link = os.readlink(path) if stat.S_ISLNK(mode) else ""
            h.update(f"{rel}\0{mode}\0{info.st_size}\0{info.st_mtime_ns}\0{link}\n"
                     .encode("utf-8", "surrogateescape"))
            if stat.S_ISDIR(mode):
                dest.mkdir()
                dirs.append((path, dest))
            elif stat.S_ISLNK(mode):
                os.symlink(link, dest)
            elif stat.S_ISREG(mode):
                shutil.copy2(path, dest)
                size += info.st_size
        for path, dest in reversed(dirs):
            shutil.copystat(path, dest)
        st["snapshots"][f"{fs}@{snapname}"] = {
            "guid": guid, "createtxg": txg or st["txg"], "fingerprint": h.hexdigest(),
            "creation": int(creation if creation is not None else time.time()),
            "referenced": size}
        self._changed()

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

    def _restore(self, st: dict, fs: str, snap_dir: Path) -> None:
        """Make a filesystem's own files equal to a snapshot copy (rollback / receive)."""
        top = self.host_path(self._data_dir(st, fs))
        child_dirs = {self.host_path(self._data_dir(st, c)) for c in self._children(st, fs)}
        top.mkdir(parents=True, exist_ok=True)
        for entry in list(top.iterdir()):
            if entry in child_dirs or any(c.is_relative_to(entry) for c in child_dirs):
                if entry.is_dir() and not entry.is_symlink() and entry not in child_dirs:
                    self._clear_except(entry, child_dirs)
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        shutil.copytree(snap_dir, top, symlinks=True, dirs_exist_ok=True)

    def _clear_except(self, directory: Path, keep: set[Path]) -> None:
        for entry in list(directory.iterdir()):
            if entry in keep:
                continue
            if any(c.is_relative_to(entry) for c in keep) and entry.is_dir():
                self._clear_except(entry, keep)
            elif entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()

    def rollback(self, snap: str) -> None:
        with self.batch() as st:
            self._need(st, snap)
            fs = snap.split("@", 1)[0]
            later = [s for s in self._snapshots_of(st, fs)
                     if st["snapshots"][s]["createtxg"] > st["snapshots"][snap]["createtxg"]]
            for s in later:
                self._remove_snapshot(st, s)
            self._restore(st, fs, self.state_dir / "snapshots" / f"{st['snapshots'][snap]['guid']:016x}")
            st["snapshots"][snap]["fingerprint"] = self._fingerprint(st, fs)[0]
            self._changed()

    # -- send / receive ------------------------------------------------------------------
    def send(self, out, snap: str, from_snap: str | None = None, intermediates: bool = False,
             props: bool = False, verbose=None, dry_run: bool = False) -> None:
        """Write a stream for `snap` (full, or incremental from `from_snap`, -I with
        `intermediates`) to the binary file `out`; -v text goes to `verbose`."""
        with self.batch() as st:
            if snap not in st["snapshots"]:
                raise ZfsError(f"cannot open '{snap}': dataset does not exist")
            fs = snap.split("@", 1)[0]
            chain = self._snapshots_of(st, fs)
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
                    carried = [s for s in chain
                               if from_meta["createtxg"] < st["snapshots"][s]["createtxg"]
                               <= st["snapshots"][snap]["createtxg"]]
            size = sum(st["snapshots"][s]["referenced"] for s in carried)
            if verbose is not None:
                if from_snap:
                    verbose.write(f"send from @{from_snap.split('@', 1)[1]} to {snap} "
                                  f"estimated size is {nicenum(size)}\n")
                else:
                    verbose.write(f"full send of {snap} estimated size is {nicenum(size)}\n")
                verbose.write(f"total estimated size is {nicenum(size)}\n")
                if not dry_run:
                    verbose.write(f"TIME        SENT   SNAPSHOT {snap}\n")
                verbose.flush()
            if dry_run:
                return
            header = {"source": fs, "toname": snap,
                      "fromguid": from_meta["guid"] if from_meta else 0,
                      "fromname": from_snap,
                      "props": dict(st["datasets"][fs]["props"]) if props else None,
                      "snapshots": [{"name": s.split("@", 1)[1], "guid": st["snapshots"][s]["guid"],
                                     "creation": st["snapshots"][s]["creation"]} for s in carried]}
            out.write(STREAM_MAGIC + json.dumps(header).encode() + b"\n")
            with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                for i, s in enumerate(carried):
                    tar.add(self.state_dir / "snapshots" / f"{st['snapshots'][s]['guid']:016x}",
                            arcname=str(i))
            out.flush()
            if verbose is not None:
                verbose.write(f"{time.strftime('%H:%M:%S')}   {nicenum(size):>5}   {snap}\n")

    def receive(self, stream, target: str, force: bool = False, no_mount: bool = False) -> None:
        """Apply a stream from `send` read from the binary file `stream` to `target`."""
        magic = stream.readline()
        if magic != STREAM_MAGIC:
            raise ZfsError("cannot receive: invalid stream (bad magic number)")
        header = json.loads(stream.readline())
        fs, _, target_snap = target.partition("@")
        full = header["fromguid"] == 0
        what = "new filesystem" if full else "incremental"
        where = f"cannot receive {what} stream"
        with self.batch() as st:
            if full:
                if fs in st["datasets"]:
                    if not force:
                        raise ZfsError(f"{where}: destination '{fs}' exists\n"
                                       "must specify -F to overwrite it")
                    existing = self._snapshots_of(st, fs)
                    if existing:
                        # The real one names the first its ZAP cursor meets; here the newest.
                        raise ZfsError(f"{where}: destination has snapshots (eg. {existing[-1]})\n"
                                       "must destroy them to overwrite it")
                else:
                    parent = _parent(fs)
                    if parent is None:
                        raise ZfsError(f"{where}: destination '{fs}' does not exist")
                    if parent not in st["datasets"]:
                        raise ZfsError(f"cannot open '{parent}': dataset does not exist\n"
                                       f"{where}: unable to restore to destination")
            else:
                if fs not in st["datasets"]:
                    raise ZfsError(f"{where}: destination '{fs}' does not exist")
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
            names = [s["name"] for s in header["snapshots"]]
            if target_snap:
                names[-1] = target_snap
            for name in names:
                if f"{fs}@{name}" in st["snapshots"]:
                    raise ZfsError(f"cannot restore to {fs}@{name}: destination already exists")
            incoming = self.state_dir / "incoming" / f"{os.getpid()}-{random.getrandbits(32):08x}"
            incoming.mkdir(parents=True)
            try:
                with tarfile.open(fileobj=stream, mode="r|") as tar:
                    for member in tar:
                        # Python 3.11.4+ warns without an extraction filter; older has none.
                        extra = {"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}
                        tar.extract(member, incoming, set_attrs=True, **extra)
                if full and fs not in st["datasets"]:
                    self._new_dataset(st, fs, {})
                if header.get("props"):
                    for prop, value in header["props"].items():
                        if prop in ("mountpoint", "canmount"):
                            self.set(fs, prop, value)
                        else:
                            st["datasets"][fs]["props"][prop] = value
                for i, (meta, name) in enumerate(zip(header["snapshots"], names, strict=True)):
                    self._restore(st, fs, incoming / str(i))
                    self._take_snapshot(st, fs, name, creation=meta["creation"],
                                        guid=meta["guid"], txg=self._next_txg(st))
                if no_mount:
                    st["datasets"][fs]["mounted"] = False
                self._changed()
            finally:
                shutil.rmtree(incoming, ignore_errors=True)

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
        opts, rest = _getopt(command, args, "cpLvnePi:I:")
        flags = {o for o, _ in opts}
        from_snap, intermediates = None, False
        for o, v in opts:
            if o in ("-i", "-I"):
                from_snap, intermediates = v, o == "-I"
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
        verbose = sys.stderr if "-v" in flags else None
        if "-n" in flags and verbose is not None:
            verbose = text_out
        z.send(stdout, snap, from_snap, intermediates, props="-p" in flags, verbose=verbose,
               dry_run="-n" in flags)
        return 0
    if command == "receive":
        opts, rest = _getopt(command, args, "vnFusdeo:x:")
        flags = {o for o, _ in opts}
        if not rest:
            raise UsageError("missing snapshot argument", command)
        if len(rest) > 1:
            raise UsageError("too many arguments", command)
        if os.isatty(stdin.fileno()):
            raise ZfsError("Error: Backup stream can not be read from a terminal.\n"
                           "You must redirect standard input.")
        z.receive(stdin, rest[0], force="-F" in flags, no_mount="-u" in flags)
        return 0
    raise UsageError(f"unrecognized command '{command}'", None)


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
    import signal

    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `zfs list | head` ends quietly, as real
    toolbox.main({"zfs": main, "zpool": zpool_main})
