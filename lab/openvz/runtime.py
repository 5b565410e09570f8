"""The OpenVZ node's running containers write into their root filesystems.

A daemon thread of the lab process (`start`): every TICK seconds, for every container of an
OpenVZ node that vzctl says is running, it takes the container's lock (the one `vzctl start|stop` hold while
they change its state: lab/core/tools/vzctl.py) and, inside the container's files on the host
(VE_PRIVATE for simfs and for a ZFS dataset's private/, the tree inside a ploop image):

- writes a new log file var/log/lab-ct/<n>.log of LOG_BYTES (n increasing),
- replaces var/lib/lab-ct/counter (the tick count, in a temporary file renamed over it),
- removes the oldest log once there are more than KEEP_LOGS.

So a migration's second sync or a ZFS incremental stream has a real delta (files added,
changed and removed), and once `vzctl stop` has returned nothing changes any more. Every write
lands in a new inode (a file written beside and renamed into place), never in an existing file:
the zfs simulator's snapshots may share inodes with the live files. vpsAdminOS containers
(os1, os2) do not write.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from pathlib import Path

from lab.core.config import LabConfig
from lab.core.tools import vzctl

TICK = 0.3
LOG_BYTES = 3 * 1024
KEEP_LOGS = 200
LOG_DIR = "var/log/lab-ct"
COUNTER = "var/lib/lab-ct/counter"

log = logging.getLogger("lab.openvz.runtime")


def start(cfg: LabConfig, stopping: threading.Event) -> threading.Thread:
    """Start the writer thread for the lab's OpenVZ nodes; it ends once `stopping` is set."""
    from lab.core.topology import HOSTS

    roots = [cfg.node_root(h.name) for h in HOSTS if "openvz" in h.roles]
    thread = threading.Thread(target=_run, args=(roots, stopping), name="openvz-containers", daemon=True)
    thread.start()
    return thread


def _run(node_roots: list[Path], stopping: threading.Event) -> None:
    while not stopping.wait(TICK):
        try:
            for node_root in node_roots:
                tick(node_root)
        except Exception:  # a container destroyed under our feet, a full disk: try next tick
            log.exception("writing into the running containers failed")


def running_ctids(node_root: Path) -> list[int]:
    conf_dir = node_root / vzctl.VZ_CONF.lstrip("/")
    try:
        names = os.listdir(conf_dir)
    except FileNotFoundError:
        return []
    ctids = sorted(int(n[:-5]) for n in names if re.fullmatch(r"\d+\.conf", n) and n != "0.conf")
    return [c for c in ctids if vzctl.ve_state(c, str(node_root)) == "running"]


def tick(node_root: Path) -> int:
    """One round of writes; returns how many containers were written to."""
    written = 0
    for ctid in running_ctids(node_root):
        with vzctl.ct_lock(ctid, str(node_root)):
            # Under the lock: a `vzctl stop` that returned before we got it wins.
            if vzctl.ve_state(ctid, str(node_root)) != "running":
                continue
            conf = vzctl.ve_conf(ctid, str(node_root))
            if conf is None:
                continue
            tree = node_root / vzctl.tree(ctid, conf).lstrip("/")
            if tree.is_dir():
                write_once(tree, ctid)
                written += 1
    return written


def _replace(path: Path, data: bytes) -> None:
    """Write `data` as a new inode at `path` (a file beside it renamed over it)."""
    tmp = path.with_name(f".{path.name}.lab-tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def write_once(tree: Path, ctid: int) -> int:
    """The container's writes of one tick; returns the new log's number."""
    logs = tree / LOG_DIR
    logs.mkdir(parents=True, exist_ok=True)
    numbers = sorted(int(n[:-4]) for n in os.listdir(logs) if re.fullmatch(r"\d+\.log", n))
    n = numbers[-1] + 1 if numbers else 1
    line = f"ct {ctid} tick {n}: lab container at work ".encode()
    body = (line * (LOG_BYTES // len(line) + 1))[:LOG_BYTES - 1] + b"\n"
    _replace(logs / f"{n}.log", body)
    counter = tree / COUNTER
    counter.parent.mkdir(parents=True, exist_ok=True)
    _replace(counter, f"{n}\n".encode())
    numbers.append(n)
    for old in numbers[:max(0, len(numbers) - KEEP_LOGS)]:
        (logs / f"{old}.log").unlink(missing_ok=True)
    return n
