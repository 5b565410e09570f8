"""Downtime of one ZFS container moved by openvz_to_vpsadminos against stop-and-copy.

One lab with only container 104 seeded on vz1 (ZFS, running, with a subdataset and older
snapshots), its root filesystem about --size bytes. The lab's nodes are directories on one
machine, so a `zfs send` between them runs at disk speed; --link (MiB/s, default 110: what a
1 Gbit/s link carries) caps every send on vz1 (the zfs simulator's /etc/lab/zfs-send-rate), the
same for both sides, as the network between two real nodes would; --link 0 leaves them at
disk speed.

- baseline, stop-and-copy: `vzctl stop`, a snapshot, a full `zfs send | ssh os2 zfs recv` of
  the dataset and of each descendant, `vzctl start`: the container is down for the whole copy;
- DAG: openvz_to_vpsadminos (dry_run off, gates off as on an unattended rehearsal) moving it
  to os1; while its first sync pass runs, --change bytes are written into the container (on
  top of what the lab's running containers write by themselves). Its downtime is what the
  transfer measures on the node, from `vzctl stop` to the start on os1 (the job's
  `airlift: downtime` line).

Prints both downtimes, the ratio (target: under 5%) and the DAG's sync passes. Exit 0 also
over target (a measurement); 1 if a side failed.

    .venv/bin/python -m bench openvz_downtime [--size BYTES] [--change BYTES]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from bench.vpsadmin_database import output_to, set_airflow_env
from lab.core.config import free_port

DAG_ID = "openvz_to_vpsadminos"
CTID = 104


def sh(lab, node: str, command: str) -> str:
    from lab.core.nodes import run_in_node

    result = run_in_node(lab.node_root(node), command, timeout=3600)
    if result.returncode:
        raise RuntimeError(f"{node}: {command}: {result.stderr.decode()}")
    return result.stdout.decode()


def stop_and_copy(lab) -> float:
    """Seconds the container is down when it is stopped, copied whole, and started."""
    key = sh(lab, "vz1", "cat /root/.ssh/id_ed25519.pub")
    sh(lab, "os2", f"mkdir -p /etc/ssh/authorized_keys.d && echo '{key.strip()}' >> /etc/ssh/authorized_keys.d/root")
    out = sh(lab, "vz1", "set -e; t0=$(date +%s.%N); vzctl stop 104 >/dev/null; zfs snapshot -r vz/private/104@stopcopy; "
                         "for ds in $(zfs list -H -o name -r vz/private/104); do zfs send $ds@stopcopy "
                         "| ssh -o BatchMode=yes 127.0.1.42 zfs recv -u tank/ct/104${ds#vz/private/104}; done; "
                         "vzctl start 104 >/dev/null; t1=$(date +%s.%N); echo \"$t0 $t1\"")
    start, end = map(float, out.split())
    sh(lab, "vz1", "zfs destroy -r vz/private/104@stopcopy")
    return end - start


def write_during_sync(lab, change: int, done: threading.Event) -> None:
    """Once the DAG's first sync pass runs, write `change` bytes into the container (new files)."""
    output = lab.node_root("vz1") / f"var/lib/airlift/jobs/{DAG_ID}.move_sync_zfs.{CTID}/output"
    while not done.is_set() and not (output.exists() and "full stream" in output.read_text()):
        time.sleep(0.2)
    target = lab.node_root("vz1") / "vz/private/104/private/var/lib/bench"
    target.mkdir(parents=True, exist_ok=True)
    chunk = 1 << 20
    for i in range(change // chunk):
        (target / f"written-{i}.tmp").write_bytes(bytes(chunk) if i % 2 else b"\x5a" * chunk)
        (target / f"written-{i}.tmp").rename(target / f"written-{i}")
        time.sleep(0.05)


def run_dag(lab, change: int, log: Path) -> str:
    import os

    from tests.helpers import run_dag as test_run

    os.environ.update(lab.env())
    os.environ["AIRFLOW__AIRLIFT__APPROVAL_GATES"] = "false"
    done = threading.Event()
    writer = threading.Thread(target=write_during_sync, args=(lab, change, done))
    writer.start()
    try:
        with output_to(log):
            state, tasks, _ = test_run(DAG_ID, {"source_node": "127.0.1.31", "destination_node": "127.0.1.41",
                                                "containers": [CTID], "dry_run": False})
    finally:
        done.set()
        writer.join()
    return state


def main(argv: list[str] | None = None) -> int:
    from lab import Lab

    parser = argparse.ArgumentParser(prog="python -m bench openvz_downtime")
    parser.add_argument("--size", type=int, default=1 << 30, help="the container's size in bytes (1 GiB)")
    parser.add_argument("--change", type=int, default=10 << 20, help="bytes written during the sync (10 MiB)")
    parser.add_argument("--link", type=int, default=110, help="MiB/s a send between the nodes may move "
                                                              "(110: a 1 Gbit/s link; 0: disk speed)")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="airlift-bench-"))
    set_airflow_env(workdir / "airflow")
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    lab = Lab.create(workdir / "lab", ssh_port=free_port(), vpsadmin_db=f"airlift_bench_{uuid.uuid4().hex[:10]}")
    try:
        started = time.monotonic()
        lab.seed(world="openvz", containers=[CTID], sizes={CTID: args.size})
        lab.start()
        print(f"  world: container {CTID} of {args.size / (1 << 30):.2f} GiB seeded in "
              f"{time.monotonic() - started:.1f} s", flush=True)
        if args.link:
            rate = lab.node_root("vz1") / "etc/lab/zfs-send-rate"
            rate.parent.mkdir(parents=True, exist_ok=True)
            rate.write_text(f"{args.link << 20}\n")
        print(f"  link between the nodes: {f'{args.link} MiB/s' if args.link else 'disk speed'}", flush=True)
        baseline = stop_and_copy(lab)
        print(f"  stop-and-copy: down {baseline:.2f} s", flush=True)
        log = Path(__file__).resolve().parent / "results" / "openvz_downtime.log"
        log.parent.mkdir(exist_ok=True)
        log.write_text("")
        state = run_dag(lab, args.change, log)
        jobs = lab.node_root("vz1") / "var/lib/airlift/jobs"
        final = (jobs / f"{DAG_ID}.move_transfer_zfs.{CTID}" / "output").read_text()
        passes = re.findall(r"moved (\d+) bytes", (jobs / f"{DAG_ID}.move_sync_zfs.{CTID}" / "output").read_text())
        found = re.search(r"^airlift: downtime ([\d.]+) s$", final, re.MULTILINE)
        if state != "success" or not found:
            print(f"  DAG run {state}; task logs in {log}")
            return 1
        downtime = float(found.group(1))
        parts = re.search(r"^airlift: downtime parts: (.*)$", final, re.MULTILINE)
        print(f"  DAG: {len(passes)} sync pass(es) moving {', '.join(f'{int(b) >> 20} MiB' for b in passes)} while "
              f"it ran, {args.change >> 20} MiB written meanwhile; down {downtime:.2f} s"
              f"{f' ({parts.group(1)})' if parts else ''}")
        ratio = downtime / baseline
        print(f"  ratio DAG / stop-and-copy: {ratio:.1%} (target under 5%): {'met' if ratio < 0.05 else 'NOT met'}")
        return 0
    finally:
        lab.destroy()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
