"""Transfers of many small containers into one vpsAdminOS node, bounded by its pool, under the
real scheduler (`airflow standalone`, LocalExecutor): how close the makespan comes to the ideal.

One lab (vz1, os1). On vz1, --containers ZFS datasets vz/bench/<i> of --size bytes each, one
snapshot each. A bench DAG (written to its own dags folder) maps one transfer task over them,
shaped like openvz_to_vpsadminos's transfers: the project's NodeScriptOperator (probe with
`--check`, a detached remote job on vz1, verify), declaring the same per-node pool
(`per_node("openvz-transfers", "destination_node", "transfers_at_once")`), so the cluster policy
puts every instance in `openvz-transfers:<os1>` with --at-once slots. Each job streams its
dataset with `zfs send | ssh os1 zfs recv`, every send held to --rate MiB/s (the zfs
simulator's send rate), as a link shared by --at-once streams would.

Figures: the makespan (first transfer's start to the last one's end, as Airflow records them),
the summed work (each transfer task's own duration: its check, its stream and its verify), the
ideal (summed work / --at-once), the ratio (target: within 1.2x), and how many ran at once at
most (must not exceed --at-once). The same ratio for the streams alone (the jobs on the node)
shows what the per-task overhead costs on top.

    .venv/bin/python -m bench openvz_pool [--containers 200] [--at-once 10] [--size BYTES] [--rate MIB]
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench.vpsadmin_database import set_airflow_env
from lab.core.config import free_port

DAG_ID = "bench_openvz_pool"
DAG_FILE = '''
from datetime import datetime

from airflow.sdk import DAG, Param

from airlift.connections import OPENVZ_SSH
from airlift.pools import per_node
from operators.runbook_step import NodeScriptOperator

# --check: exit 0 when the dataset is on the destination, else 10 and the change; then the stream.
SCRIPT = r"""
set -uo pipefail
check=no
[ "$1" = --check ] && { check=yes; shift; }
ds=$1 dst=$2 port=$3 target=$4
there() { ssh -p "$port" -o BatchMode=yes -l root "$dst" zfs list -H -o name "$target@bench" > /dev/null 2>&1; }
if [ $check = yes ]; then
    there && exit 0
    echo "zfs send $ds@bench | ssh $dst zfs recv $target"
    exit 10
fi
there && exit 0
start=$(date +%s.%N)
zfs send -p "$ds@bench" | ssh -p "$port" -o BatchMode=yes -l root "$dst" zfs recv -u "$target" || exit 1
echo "bench: stream $start $(date +%s.%N)"
"""

with DAG(dag_id="@DAG_ID@", schedule=None, start_date=datetime(2025, 1, 1), catchup=False,
         params={"dry_run": Param(False, type="boolean"), "source_node": Param("", type="string"),
                 "destination_node": Param("", type="string"), "transfers_at_once": Param(1, type="integer"),
                 "count": Param(1, type="integer")}) as dag:
    NodeScriptOperator.partial(
        task_id="transfer", script=SCRIPT, ssh_conn_id=OPENVZ_SSH, retries=0,
        args=["vz/{filesystem}", "@DEST@", "@PORT@", "tank/{filesystem}"],
        pool=per_node("openvz-transfers", "destination_node", "transfers_at_once"),
    ).expand(node=[{"server_name": f"ct{i}", "address": "@SOURCE@", "filesystem": f"bench/{i}"}
                   for i in range(1, @COUNT@ + 1)])
'''


def sh(lab, node: str, command: str, timeout: float = 3600) -> str:
    from lab.core.nodes import run_in_node

    result = run_in_node(lab.node_root(node), command, timeout=timeout)
    if result.returncode:
        raise RuntimeError(f"{node}: {command[:200]}: {result.stderr.decode()}")
    return result.stdout.decode()


def seed(lab, count: int, size: int) -> None:
    """vz1: vz/bench/<i> with one file of `size` bytes and the snapshot @bench; os1: tank/bench."""
    sh(lab, "vz1", f"""set -e
zfs create vz/bench
for i in $(seq 1 {count}); do
    zfs create vz/bench/$i
    head -c {size} /dev/urandom > "$(zfs get -H -o value mountpoint vz/bench/$i)/data"
    zfs snapshot vz/bench/$i@bench
done""")
    sh(lab, "os1", "zfs create tank/bench")
    key = sh(lab, "vz1", "cat /root/.ssh/id_ed25519.pub").strip()
    sh(lab, "os1", f"mkdir -p /etc/ssh/authorized_keys.d && echo '{key}' >> /etc/ssh/authorized_keys.d/root")


def seconds(stamp: str) -> float:
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def most_at_once(spans: list[tuple[float, float]]) -> int:
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def report(name: str, spans: list[tuple[float, float]], at_once: int) -> float:
    makespan = max(e for _, e in spans) - min(s for s, _ in spans)
    work = sum(e - s for s, e in spans)
    ideal = work / at_once
    ratio = makespan / ideal
    print(f"  {name}: makespan {makespan:.1f} s, summed work {work:.1f} s, ideal {ideal:.1f} s, "
          f"ratio {ratio:.2f}x, at most {most_at_once(spans)} at once", flush=True)
    return ratio


def main(argv: list[str] | None = None) -> int:
    from lab import Lab
    from lab.core.topology import host
    from lab.demo import Standalone, open_api, wait_for

    parser = argparse.ArgumentParser(prog="python -m bench openvz_pool")
    parser.add_argument("--containers", type=int, default=200)
    parser.add_argument("--at-once", type=int, default=10)
    parser.add_argument("--size", type=int, default=4 << 20, help="bytes of each container (4 MiB)")
    parser.add_argument("--rate", type=int, default=1, help="MiB/s of each stream (1)")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="airlift-bench-"))
    home = workdir / "airflow"
    set_airflow_env(home)
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    dags = workdir / "dags"
    dags.mkdir()
    source, dest = host("vz1").address, host("os1").address
    lab = Lab.create(workdir / "lab", ssh_port=free_port(), vpsadmin_db=f"airlift_bench_{uuid.uuid4().hex[:10]}")
    standalone, ok = None, False
    try:
        started = time.monotonic()
        lab.seed(world="openvz", containers=[101])
        lab.start()
        seed(lab, args.containers, args.size)
        rate = lab.node_root("vz1") / "etc/lab/zfs-send-rate"
        rate.parent.mkdir(parents=True, exist_ok=True)
        rate.write_text(f"{args.rate << 20}\n")
        print(f"  world: {args.containers} datasets of {args.size >> 10} KiB on vz1 in "
              f"{time.monotonic() - started:.0f} s; each stream held to {args.rate} MiB/s", flush=True)
        text = DAG_FILE
        for mark, value in (("@DAG_ID@", DAG_ID), ("@SOURCE@", source), ("@DEST@", dest),
                            ("@PORT@", lab.cfg.ssh_port), ("@COUNT@", args.containers)):
            text = text.replace(mark, str(value))
        (dags / f"{DAG_ID}.py").write_text(text)
        standalone, port = Standalone(home), free_port()
        proc = standalone.start(port, lab, {"AIRFLOW__CORE__DAGS_FOLDER": str(dags),
                                            "AIRFLOW__CORE__PARALLELISM": str(args.at_once + 4),
                                            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(args.at_once * 4)})
        api = open_api(standalone, proc, port, [DAG_ID])
        run_id = api.ok("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"logical_date": None, "conf": {
            "source_node": source, "destination_node": dest, "transfers_at_once": args.at_once}})["dag_run_id"]
        base = f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}"
        state = wait_for("the run to end", lambda: api.ok("GET", base)["state"] in ("success", "failed")
                         and api.ok("GET", base)["state"], proc, 7200, interval=5, standalone=standalone)
        tis = []  # the API pages at 100 ([api] maximum_page_limit)
        while len(tis) < args.containers:
            page = api.ok("GET", f"{base}/taskInstances?limit=100&offset={len(tis)}")["task_instances"]
            if not page:
                break
            tis += page
        if state != "success":
            print(f"  run {state}: {sorted({t['state'] for t in tis})}; logs under {home / 'logs'}")
            return 1
        pool = api.ok("GET", f"/api/v2/pools/openvz-transfers:{dest}")
        print(f"  pool {pool['name']}: {pool['slots']} slots, deferred counted: {pool['include_deferred']}")
        tasks = [(seconds(t["start_date"]), seconds(t["end_date"])) for t in tis]
        if len(tasks) != args.containers:
            print(f"  the run has {len(tasks)} transfer tasks, expected {args.containers}")
            return 1
        streams = []
        jobs = lab.node_root("vz1") / "var/lib/airlift/jobs"
        for output in jobs.glob(f"{DAG_ID}.transfer.*/output"):
            found = re.search(r"^bench: stream ([\d.]+) ([\d.]+)$", output.read_text(), re.MULTILINE)
            if found:
                streams.append((float(found.group(1)), float(found.group(2))))
        ratio = report("transfer tasks", tasks, args.at_once)
        report(f"streams on the node ({len(streams)})", streams, args.at_once)
        print(f"  target: tasks within 1.2x of the ideal: {'met' if ratio <= 1.2 else 'NOT met'}")
        ok = most_at_once(tasks) <= args.at_once
        return 0 if ok else 1
    finally:
        if standalone is not None:
            standalone.stop()
        lab.destroy()
        if ok:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
