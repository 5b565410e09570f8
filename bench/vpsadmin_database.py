"""The runbook's Database section at ~100k VPSes / ~300k IPs: the DAG against the wiki by hand.

Two identical, freshly seeded lab worlds (scale 4200, time zone tables empty), one after the
other (the time zone tables are server-wide):

- baseline: what the wiki page says, typed by an administrator on the DB host (over the lab's
  SSH, the `mysql` client with the host's ~/.my.cnf): the three SQL statements, `service
  vpsadmind stop` on every vpsAdmin node, the three ALTER TABLE, the encoding fix exactly as
  written (latin1 mysqldump of the four tables, DROP, utf8 reload), mysql_tzinfo_to_sql;
- DAG: vpsadmin_upgrade_v2 with dry_run=false, gates off ([airlift] approval_gates), run in-process with
  dag.test(). The Prerequisites section is marked success instead of run: at this scale it
  queues ~40k mount transactions that the lab's daemons take hours to execute, and the
  Database section does not depend on what it changes. Preflight runs (its full backup is
  reported separately). The Database section's time is read from the task instances in the
  metadata DB: first `db.*` start to last `db.*` end.

Both worlds are checked afterwards (stray VPSes, vps_ip, engines, known UTF-8 names, time
zones), so each side is timed doing the whole job. Task logs of the DAG run go to
bench/results/. Exit 0 also over target (a measurement); 1 if a side failed.

    .venv/bin/python -m bench vpsadmin_database [--scale N]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

from lab.core.airflow_env import airflow_env
from lab.core.config import free_port

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DAG_ID = "vpsadmin_upgrade_v2"
SCALE = 4200
TARGET_S = 60.0
W = 50  # report column width
ENCODING_TABLES = "members members_changes sysconfig vps"

# The wiki's Database section, in order: (label, where, command). "db" is the DB host;
# "nodes" is every vpsAdmin node. {db} is the vpsAdmin database.
RUNBOOK = [
    ("remove stray VPSes", "db",
     'mysql {db} -e "DELETE vps FROM vps LEFT JOIN servers ON vps_server = server_id '
     'WHERE server_id IS NULL;"'),
    ("vps_ip 0 -> NULL", "db", 'mysql {db} -e "UPDATE vps_ip SET vps_id = NULL WHERE vps_id = 0;"'),
    ("free orphan IPs", "db",
     'mysql {db} -e "UPDATE vps_ip ip LEFT JOIN vps v ON ip.vps_id = v.vps_id SET ip.vps_id = NULL '
     'WHERE ip.vps_id > 0 AND v.vps_id IS NULL;"'),
    ("stop vpsAdmind", "nodes", "service vpsadmind stop"),
    ("InnoDB", "db",
     'mysql {db} -e "ALTER TABLE \\`log\\` ENGINE = InnoDB; ALTER TABLE \\`node_pubkey\\` ENGINE = InnoDB; '
     'ALTER TABLE \\`transactions\\` ENGINE = InnoDB;"'),
    ("encoding: dump", "db",
     "mysqldump --opt --quote-names --skip-set-charset --default-character-set=latin1 {db} "
     f"{ENCODING_TABLES} > /root/vpsadmin_enc.sql"),
    ("encoding: drop", "db",
     'mysql {db} -e "DROP TABLE members; DROP TABLE members_changes; DROP TABLE sysconfig; DROP TABLE vps;"'),
    ("encoding: reload", "db", "mysql --default-character-set=utf8 {db} < /root/vpsadmin_enc.sql"),
    ("timezones", "db", "mysql_tzinfo_to_sql /usr/share/zoneinfo 2>/dev/null | mysql mysql"),
]


def set_airflow_env(home: Path) -> None:
    """A throw-away Airflow home, as for the tests; set before airflow is imported."""
    os.environ.update(airflow_env(home))
    os.environ["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] = "False"


@contextlib.contextmanager
def fresh_world(workdir: Path, name: str, scale: int):
    """A seeded, started lab with its seeded transaction queue drained; destroyed after."""
    from lab import Lab
    from lab.core import mysql
    from tests.helpers import wait_for_empty_queue

    lab = Lab.create(workdir / name, ssh_port=free_port(),
                     vpsadmin_db=f"airlift_bench_{uuid.uuid4().hex[:10]}", scale=scale)
    try:
        started = time.monotonic()
        lab.info = lab.seed(reset_timezones=True, pools=False)  # the Database section reads no ZFS
        lab.start()
        wait_for_empty_queue(lab, timeout=300)
        print(f"  {name}: world {lab.cfg.vpsadmin_db} seeded and started in "
              f"{time.monotonic() - started:.1f} s: {world_size(lab)}", flush=True)
        yield lab
    finally:
        started = time.monotonic()
        lab.destroy()
        for scratch in ("_airlift_enc", "_airlift_enc_old"):
            mysql.drop_database(lab.cfg.mysql_kwargs(), lab.cfg.vpsadmin_db + scratch)
        print(f"  {name}: world destroyed in {time.monotonic() - started:.1f} s", flush=True)


def clear_timezones(lab) -> None:
    """Empty the server-wide mysql.time_zone* again right before a side is measured: a test
    run in parallel on the same server may have loaded them since the seed."""
    from lab.core import mysql

    mysql.clear_timezones(lab.cfg.mysql_kwargs())


def world_size(lab) -> str:
    from tests.helpers import scalar

    return (f"{scalar(lab, 'SELECT COUNT(*) FROM vps')} VPSes, "
            f"{scalar(lab, 'SELECT COUNT(*) FROM vps_ip')} IPs, "
            f"{scalar(lab, 'SELECT COUNT(*) FROM members')} members")


def check_world(lab) -> list[str]:
    """What the Database section must have achieved; [] when it did."""
    from lab.vpsadmin.v1_22.seed import KNOWN_TEXT
    from tests.helpers import query, scalar

    checks = {
        "stray VPSes left": "SELECT COUNT(*) FROM vps LEFT JOIN servers ON vps_server = server_id "
                            "WHERE server_id IS NULL",
        "vps_ip.vps_id = 0 left": "SELECT COUNT(*) FROM vps_ip WHERE vps_id = 0",
        "orphan IPs left": "SELECT COUNT(*) FROM vps_ip ip LEFT JOIN vps v ON ip.vps_id = v.vps_id "
                           "WHERE ip.vps_id > 0 AND v.vps_id IS NULL",
    }
    problems = [f"{label}: {n}" for label, sql in checks.items() if (n := scalar(lab, sql))]
    engines = dict(query(lab, "SELECT TABLE_NAME, ENGINE FROM information_schema.tables WHERE TABLE_SCHEMA = %s "
                              "AND TABLE_NAME IN ('log', 'node_pubkey', 'transactions')", (lab.cfg.vpsadmin_db,)))
    problems += [f"{t} is {e}" for t, e in engines.items() if e != "InnoDB"]
    for table, column, key_column, key, text in KNOWN_TEXT:
        got = scalar(lab, f"SELECT `{column}` FROM `{table}` WHERE `{key_column}` = %s", (key,))
        if got != text:
            problems.append(f"{table}.{column} of {key} reads {got!r}")
    if not scalar(lab, "SELECT COUNT(*) FROM mysql.time_zone_name"):
        problems.append("mysql.time_zone_name is empty")
    return problems


# -- baseline: the wiki by hand -------------------------------------------------------------
def ssh(lab, node: str, command: str) -> None:
    from lab.core.topology import host

    argv = ["ssh", "-p", str(lab.cfg.ssh_port), "-i", str(lab.cfg.client_key),
            "-o", f"UserKnownHostsFile={lab.cfg.known_hosts}", "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes", f"root@{host(node).address}", command]
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"{node}: `{command}` exited {result.returncode}:\n{result.stdout}{result.stderr}")


def run_baseline(lab) -> tuple[float, list[tuple[str, float]]]:
    from lab.core.topology import HOSTS

    steps, started = [], time.monotonic()
    for label, where, command in RUNBOOK:
        command = command.format(db=shlex.quote(lab.cfg.vpsadmin_db))
        t0 = time.monotonic()
        for node in [h.name for h in HOSTS if h.server] if where == "nodes" else ["db"]:
            ssh(lab, node, command)
        steps.append((label, time.monotonic() - t0))
    return time.monotonic() - started, steps


# -- the DAG ---------------------------------------------------------------------------------
@contextlib.contextmanager
def output_to(path: Path):
    """Send this process's stdout and stderr (file descriptors: the task logs) to `path`."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in zip((1, 2), saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)


def run_dag(lab, log_path: Path) -> tuple[str, list[dict]]:
    """One real run of the DAG with dag.test(); (run state, its task instances)."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    os.environ.update(lab.env())
    with output_to(log_path):
        dag = DagBag(dag_folder=str(ROOT / "dags")).get_dag(DAG_ID)
        dag = dag.partial_subset(task_ids=[t.task_id for t in dag.tasks
                                           if t.task_id.startswith(("preflight.", "prereq.", "db."))],
                                 include_upstream=True)
        os.environ["AIRFLOW__AIRLIFT__APPROVAL_GATES"] = "false"  # unattended: the deployment's setting
        run = dag.test(run_conf={"dry_run": False},
                       mark_success_pattern=r"prereq\..*")
    with create_session() as session:
        dr = session.get(DagRun, run.id)
        records = {(x.task_id, x.map_index): XComModel.deserialize_value(x) for x in
                   session.scalars(XComModel.get_many(run_id=dr.run_id, key="return_value", dag_ids=DAG_ID))}
        tis = []
        for ti in dr.get_task_instances(session=session):
            record = records.get((ti.task_id, ti.map_index))
            applied = record.get("applied") if isinstance(record, dict) else None
            tis.append({"task": ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.rendered_map_index or ti.map_index}]",
                        "state": str(ti.state), "start": ti.start_date, "end": ti.end_date,
                        "applied": {True: "changed", False: "no change", None: ""}[applied]})
        return str(dr.state), sorted(tis, key=lambda t: (t["start"] is None, t["start"] or 0))


def section_time(tis: list[dict], prefix: str) -> float | None:
    ran = [t for t in tis if t["task"].startswith(prefix) and t["start"] and t["end"]]
    if not ran:
        return None
    return (max(t["end"] for t in ran) - min(t["start"] for t in ran)).total_seconds()


def duration(ti: dict) -> float | None:
    return (ti["end"] - ti["start"]).total_seconds() if ti["start"] and ti["end"] else None


# -- the report ------------------------------------------------------------------------------
def fmt(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.2f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench vpsadmin_database", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=SCALE, help="world size (4200: ~109k VPSes)")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="airlift-bench-"))
    set_airflow_env(workdir / "airflow")
    RESULTS.mkdir(parents=True, exist_ok=True)
    log_path = RESULTS / f"vpsadmin_database-{datetime.now():%Y%m%d-%H%M%S}.log"
    try:
        subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True,
                       capture_output=True, env=os.environ.copy())

        print(f"baseline: the runbook's Database section by hand (scale {args.scale})", flush=True)
        with fresh_world(workdir, "baseline", args.scale) as lab:
            size = world_size(lab)
            clear_timezones(lab)
            baseline, baseline_steps = run_baseline(lab)
            baseline_problems = check_world(lab)

        print(f"DAG: {DAG_ID}, real run, task logs in {log_path.relative_to(ROOT)}", flush=True)
        with fresh_world(workdir, "dag", args.scale) as lab:
            clear_timezones(lab)
            wall = time.monotonic()
            state, tis = run_dag(lab, log_path)
            wall = time.monotonic() - wall
            dag_problems = check_world(lab)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"\nworld: {size} (scale {args.scale})\n")
    print("runbook by hand (baseline):")
    for label, seconds in baseline_steps:
        print(f"  {label:<{W}} {fmt(seconds):>10}")
    print(f"  {'total':<{W}} {fmt(baseline):>10}\n")

    print(f"DAG run ({state}, {wall:.1f} s in dag.test() in all):")
    print(f"  {'preflight.db_backup (full dump)':<{W}} "
          f"{fmt(next((duration(t) for t in tis if t['task'] == 'preflight.db_backup'), None)):>10}")
    for ti in tis:
        if ti["task"].startswith("db."):
            print(f"  {ti['task']:<{W}} {fmt(duration(ti)):>10}  {ti['state']:<8} {ti['applied']}")
    dag_time = section_time(tis, "db.")
    print(f"  {'database section (first start..last end)':<{W}} {fmt(dag_time):>10}\n")

    for side, problems in (("baseline", baseline_problems), ("DAG", dag_problems)):
        print(f"{side} world afterwards: " + ("as the runbook wants" if not problems else "; ".join(problems)))
    failed = state != "success" or dag_time is None or baseline_problems or dag_problems
    if dag_time is not None:
        verdict = "OK" if dag_time < TARGET_S else "OVER"
        print(f"\ndatabase section: DAG {dag_time:.1f} s, runbook by hand {baseline:.1f} s, "
              f"ratio {dag_time / baseline:.2f}x (target: DAG under {TARGET_S:.0f} s: {verdict})")
    return 1 if failed else 0
