"""DAG vpsadmin_lifetimes at ~100k VPSes / ~20k users against the runbook's cron jobs.

Two identical, freshly seeded lab worlds (scale 3850, no ZFS pools), one after the other, each
brought to vpsAdmin 2.0 the short way (stray VPSes deleted, time zones loaded, `git pull` and
every migration in the API checkout, `git pull` of vpsAdmind on every server: the 2.0 daemons
run), the mail templates installed and --fraction of the users and VPSes put at the points of
their lifetime the tests use (lab/vpsadmin/lifetimes.py seed_lifetimes_at_scale), the clock
moved two days forward. Without pools nothing can be hard-deleted (Vps::Destroy destroys ZFS
datasets), so the soft-deleted objects get no expiration there.

- baseline: the runbook's six lifetimes jobs as cron runs them (with EXECUTE=yes, which the
  runbook's lines lack), one after another over SSH on the API host, then the wait until
  vpsAdmind has run every chain they fired (the transaction queue empty);
- DAG: vpsadmin_lifetimes with its default params (max_changes raised), run in-process with
  dag.test(): each task plans (rake without EXECUTE and the database reads), runs rake as a
  remote job, waits for its chains and checks every object it moved.

Both worlds must end with the same state and expiration day for every user and VPS. The
lab's vpsAdmind runs one transaction at a time (0.2 s each): the chains' execution is most of
both sides' time. Task logs of the DAG run go to bench/results/. Exit 0 also over target (a
measurement); 1 if a side failed or the worlds differ.

    .venv/bin/python -m bench vpsadmin_lifetimes [--scale N] [--fraction F]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

from bench.vpsadmin_database import fresh_world, output_to, set_airflow_env, ssh

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DAG_ID = "vpsadmin_lifetimes"
SCALE = 3850
FRACTION = 0.002
TRAVEL_DAYS = 2
TARGET_S = 600.0
W = 44


def to_v2_0(lab, fraction: float) -> None:
    """The short way to 2.0 (tests/lab/v2_0_cluster.py without the API server), the mail
    templates, the lifetime cases, two days on."""
    from lab.core import mysql
    from lab.core.topology import HOSTS, host_with_role
    from lab.vpsadmin import lifetimes
    from tests.helpers import db_conn, query

    query(lab, "DELETE vps FROM vps LEFT JOIN servers ON vps_server = server_id WHERE server_id IS NULL")
    mysql.load_timezones(lab.cfg.mysql_kwargs())
    ssh(lab, host_with_role("api").name, "cd /opt/vpsadminapi && git pull -q && rake db:migrate > /dev/null")
    for host in HOSTS:
        if host.server:
            ssh(lab, host.name, "cd /opt/vpsadmind && git pull -q")
    lifetimes.finish_short_upgrade(lab)
    with closing(db_conn(lab)) as conn:
        lifetimes.install_mail_templates(conn)
        counts = lifetimes.seed_lifetimes_at_scale(conn, datetime.now(UTC).replace(tzinfo=None), fraction)
        with closing(conn.cursor()) as cur:  # nothing to hard-delete without pools
            cur.execute("UPDATE members SET expiration_date = NULL WHERE object_state = 2")
            cur.execute("UPDATE vps SET expiration_date = NULL WHERE object_state = 2")
        conn.commit()
        lifetimes.travel(conn, TRAVEL_DAYS)
    print(f"  cases: {', '.join(f'{k} {v}' for k, v in counts.items())}", flush=True)



def wait_for_chains(lab, timeout: float = 3600) -> None:
    from tests.helpers import scalar

    deadline = time.monotonic() + timeout
    while scalar(lab, "SELECT COUNT(*) FROM transaction_chains WHERE state NOT IN (2, 4, 5, 6)"):
        if time.monotonic() > deadline:
            raise RuntimeError("the chains did not finish")
        time.sleep(1)


def run_baseline(lab) -> tuple[float, float]:
    """(rake's time, the time until every chain finished)."""
    from lab.core.topology import host_with_role
    from vpsadmin.lifetimes import runbook_cron_lines

    started = time.monotonic()
    for line in runbook_cron_lines()[:-1]:  # the lifetimes jobs; the last line is the report
        ssh(lab, host_with_role("api").name, line.split(" ", 5)[5] + " > /dev/null")
    rake = time.monotonic() - started
    wait_for_chains(lab)
    return rake, time.monotonic() - started


def run_dag(lab, log_path: Path) -> tuple[str, list[tuple[str, str, float | None]]]:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    os.environ.update(lab.env())
    with output_to(log_path):
        dag = DagBag(dag_folder=str(ROOT / "dags")).get_dag(DAG_ID)
        for task in dag.tasks:
            task.poll_interval = 1.0
        run = dag.test(run_conf={"max_changes": 100_000})
    with create_session() as session:
        dr = session.get(DagRun, run.id)
        tis = sorted(dr.get_task_instances(session=session), key=lambda t: t.start_date or datetime.max.replace(
            tzinfo=UTC))
        return str(dr.state), [(ti.task_id, str(ti.state), (ti.end_date - ti.start_date).total_seconds()
                                if ti.start_date and ti.end_date else None) for ti in tis]


def outcome(lab) -> dict:
    """(class, id) -> (state, expiration day) of every user and VPS."""
    from tests.helpers import query

    rows = [("User", *r) for r in query(lab, "SELECT m_id, object_state, DATE(expiration_date) FROM members")]
    rows += [("Vps", *r) for r in query(lab, "SELECT vps_id, object_state, DATE(expiration_date) FROM vps")]
    return {(cls, i): (state, day) for cls, i, state, day in rows}


def main(argv: list[str] | None = None) -> int:
    from bench.vpsadmin_database import world_size

    parser = argparse.ArgumentParser(prog="python -m bench vpsadmin_lifetimes", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=SCALE, help="world size (3850: ~100k VPSes, ~20k users)")
    parser.add_argument("--fraction", type=float, default=FRACTION, help="share of users and VPSes in the cases")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "plugins"))

    workdir = Path(tempfile.mkdtemp(prefix="airlift-bench-"))
    set_airflow_env(workdir / "airflow")
    RESULTS.mkdir(parents=True, exist_ok=True)
    log_path = RESULTS / f"vpsadmin_lifetimes-{datetime.now():%Y%m%d-%H%M%S}.log"
    try:
        subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True,
                       env=os.environ.copy())
        print(f"baseline: the runbook's lifetimes cron jobs (scale {args.scale}, fraction {args.fraction})",
              flush=True)
        with fresh_world(workdir, "baseline", args.scale) as lab:
            to_v2_0(lab, args.fraction)
            size = world_size(lab)
            rake, baseline = run_baseline(lab)
            baseline_world = outcome(lab)
        print(f"DAG: {DAG_ID}, task logs in {log_path.relative_to(ROOT)}", flush=True)
        with fresh_world(workdir, "dag", args.scale) as lab:
            to_v2_0(lab, args.fraction)
            wall = time.monotonic()
            state, tis = run_dag(lab, log_path)
            wall = time.monotonic() - wall
            dag_world = outcome(lab)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"\nworld: {size} (scale {args.scale})\n")
    print(f"runbook's cron jobs (baseline): rake {rake:.1f} s, until every chain ran {baseline:.1f} s")
    print(f"DAG run ({state}, {wall:.1f} s in dag.test()):")
    for task_id, ti_state, seconds in tis:
        print(f"  {task_id:<{W}} {'-' if seconds is None else f'{seconds:.1f} s':>10}  {ti_state}")
    differ = sorted(k for k in baseline_world if baseline_world[k] != dag_world.get(k, baseline_world[k]))
    moved = sum(1 for k, v in dag_world.items() if v[0] != 0)
    print(f"\nworlds afterwards: {'the same' if not differ else f'{len(differ)} objects differ, e.g. {differ[:5]}'}"
          f" ({moved} users and VPSes not active)")
    verdict = "OK" if wall < TARGET_S else "OVER"
    print(f"lifetimes: DAG {wall:.1f} s, cron jobs {baseline:.1f} s, ratio {wall / baseline:.2f}x "
          f"(target: DAG under {TARGET_S:.0f} s: {verdict})")
    return 1 if state != "success" or differ else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
