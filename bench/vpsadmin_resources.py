"""Cluster resources and environment configs at ~100k VPSes / ~20k users: our steps against
what the runbook's Ruby scripts do, on two identical copies of one migrated world.

The world: seed_database (database only, no node files) at scale 3850 (~100k VPSes), the
runbook's stray-VPS deletion, time zone tables loaded, then the lab's `rake db:migrate
VERSION=20150630072821` run from the host in a temp dir with config/database.yml and
db/migrate; environments' servers set (as api.populate-servers does); then copied table by
table into a second database.

- baseline (copy A): what assign_cluster_resources.rb does, statement for statement, over one
  MySQLdb connection in one transaction: per user and environment six INSERTs of
  user_cluster_resources, a query for the user's VPSes there, per VPS a query for its configs,
  a DELETE per matched config, two IP counts, an INSERT per use (and an UPDATE of the refquota),
  a query for the NAS datasets, an INSERT per NAS use, an UPDATE per user_cluster_resource. Then
  the environment-config script: an INSERT per user and environment.
- ours (copy B): vpsadmin.cluster_resources.assign_cluster_resources and create_environment_configs,
  the operators' core functions (reads, plan, write, verify by re-planning).

Both copies must end with the same user_cluster_resources, cluster_resource_uses,
vps_has_config, refquotas and environment_user_configs (compared row by row, ids aside).
Exit 0 also over target (a measurement); 1 if the copies differ or a side failed.

    .venv/bin/python -m bench vpsadmin_resources [--scale N]
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import closing
from pathlib import Path

from lab.core.airflow_env import airflow_env

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))  # the operators' code, as Airflow's plugins folder has it
SCALE = 3850  # 26 * 3850 = 100,100 VPSes before the stray ones are deleted
TARGET_RATIO = 50.0
TARGET_S = 30.0
# The Ruby script's per-VPS refquota UPDATE scans dataset_properties (no index on
# dataset_in_pool_id at this schema version): hours at 100k VPSes. It runs this long, then
# its time for every user is extrapolated from the users it finished.
BASELINE_BUDGET_S = 300.0
W = 44  # report column width
VERSION = "20150630072821"

RESOURCES = ("memory", "swap", "cpu", "diskspace", "ipv4", "ipv6")
MINIMUM = {"memory": 4096, "swap": 0, "cpu": 8, "diskspace": 60 * 1024, "ipv4": 1, "ipv6": 32}
# The script's regexes (with the `c` the runbook text lacks).
RUBY_RULES = ((re.compile(r"\Aram-vswap-(\d+)g-swap-0g\Z"), "memory", 1024),
              (re.compile(r"\Aswap-(\d+)g\Z"), "swap", 1024),
              (re.compile(r"\Acpu-(\d+)c-\d+\Z"), "cpu", 1),
              (re.compile(r"\Ahdd-(\d+)g\Z"), "diskspace", 1024))


def connect(kwargs: dict, db: str):
    import MySQLdb

    return MySQLdb.connect(db=db, charset="utf8mb4", **kwargs)


# -- the world -------------------------------------------------------------------------------
def build_world(kwargs: dict, db: str, scale: int, workdir: Path, attempts: int = 3) -> None:
    """Seed, delete stray VPSes, load the time zones, migrate; the server-wide time zone tables
    are emptied by lab tests running in parallel on the same server (their worlds are v1.22),
    so a migration that fails for want of them is retried on a fresh seed."""
    from lab.core import mysql
    from lab.core.topology import HOSTS
    from lab.vpsadmin.v1_22.seed import seed_database

    for attempt in range(1, attempts + 1):
        t0 = time.monotonic()
        seed_database(kwargs, db, [h.server for h in HOSTS if h.server], scale=scale)
        print(f"  seeded {db} (scale {scale}) in {time.monotonic() - t0:.1f} s", flush=True)
        with closing(connect(kwargs, db)) as conn, closing(conn.cursor()) as cur:
            cur.execute("DELETE vps FROM vps LEFT JOIN servers ON vps_server = server_id WHERE server_id IS NULL")
            conn.commit()
        mysql.load_timezones(kwargs)
        t0 = time.monotonic()
        try:
            rake_migrate(kwargs, db, workdir)
            break
        except RuntimeError as exc:
            if attempt == attempts or "created_at" not in str(exc):
                raise
            print(f"  migration failed (time zone tables emptied meanwhile?), again: {str(exc)[-300:]}", flush=True)
    print(f"  migrated to {VERSION} in {time.monotonic() - t0:.1f} s", flush=True)
    with closing(connect(kwargs, db)) as conn, closing(conn.cursor()) as cur:
        # What api.populate-servers does before these steps: every server in the environment.
        cur.execute("UPDATE servers SET environment_id = (SELECT MIN(id) FROM environments)")
        conn.commit()


def rake_migrate(kwargs: dict, db: str, workdir: Path, version: str = VERSION) -> str:
    """The lab's rake (lab/vpsadmin/tools/rake.py), run from the host in a directory laid out as
    the API checkout (Rakefile, config/database.yml, db/migrate); its output. Raises on failure."""
    from lab.vpsadmin.checkouts import MIGRATIONS_DIR

    api = workdir / f"api-{db}"
    (api / "config").mkdir(parents=True, exist_ok=True)
    (api / "Rakefile").write_text("require 'sinatra/activerecord/rake'\n")
    (api / "config" / "database.yml").write_text(
        "production:\n  adapter: mysql2\n"
        f"  host: {kwargs['host']}\n  port: {kwargs['port']}\n  username: {kwargs['user']}\n"
        f"  password: '{kwargs['passwd']}'\n  database: {db}\n  encoding: utf8\n")
    shutil.copytree(MIGRATIONS_DIR, api / "db" / "migrate", dirs_exist_ok=True)
    # As a module of the project (it imports the simulators' toolbox as lab.core.tools.toolbox).
    result = subprocess.run([sys.executable, "-m", "lab.vpsadmin.tools.rake", "db:migrate", f"VERSION={version}"],
                            cwd=api, capture_output=True, text=True,
                            env={**os.environ, "RACK_ENV": "production", "PYTHONPATH": str(ROOT)})
    if result.returncode:
        raise RuntimeError(f"rake db:migrate exited {result.returncode}:\n{result.stdout[-2000:]}{result.stderr[-3000:]}")
    return result.stdout


def copy_database(kwargs: dict, source: str, target: str) -> None:
    with closing(connect(kwargs, source)) as conn, closing(conn.cursor()) as cur:
        cur.execute(f"CREATE DATABASE `{target}` CHARACTER SET utf8 COLLATE utf8_general_ci")
        cur.execute("SELECT TABLE_NAME FROM information_schema.tables WHERE TABLE_SCHEMA = %s AND "
                    "TABLE_TYPE = 'BASE TABLE'", (source,))
        for (table,) in cur.fetchall():
            cur.execute(f"CREATE TABLE `{target}`.`{table}` LIKE `{source}`.`{table}`")
            cur.execute(f"INSERT INTO `{target}`.`{table}` SELECT * FROM `{source}`.`{table}`")
        conn.commit()


def world_size(kwargs: dict, db: str) -> str:
    with closing(connect(kwargs, db)) as conn, closing(conn.cursor()) as cur:
        counts = []
        for table in ("vps", "members", "vps_has_config", "vps_ip", "dataset_in_pools", "environments"):
            cur.execute(f"SELECT COUNT(*) FROM `{table}`")
            counts.append(f"{cur.fetchone()[0]} {table}")
        return ", ".join(counts)


# -- baseline: the Ruby scripts, statement for statement --------------------------------------
def ruby_assign(conn, budget_s: float) -> dict:
    """assign_cluster_resources.rb. Stops after the user during whom `budget_s` ran out and
    commits what it did (the script would go on), so the time for all users is extrapolated
    from the users done. {statements, users_done, users, last_user}."""
    cur = conn.cursor()
    sent = 0
    started = time.monotonic()
    cur.execute("SELECT COUNT(*) FROM members WHERE object_state <> 3")
    total_users = cur.fetchone()[0]
    done = 0

    def q(statement, params=None):
        nonlocal sent
        sent += 1
        cur.execute(statement, params)
        return cur

    resource_ids = dict(q("SELECT name, id FROM cluster_resources").fetchall())
    last = 0
    while True:  # User.all.find_each (batches of 1000 by primary key)
        users = [r[0] for r in q("SELECT m_id FROM members WHERE object_state <> 3 AND m_id > %s "
                                 "ORDER BY m_id LIMIT 1000", (last,)).fetchall()]
        if not users:
            break
        last = users[-1]
        for user_id in users:
            for (env_id,) in q("SELECT id FROM environments").fetchall():  # Environment.all.each
                ucr, totals = {}, dict.fromkeys(RESOURCES, 0)
                for r in RESOURCES:
                    q("INSERT INTO user_cluster_resources (user_id, cluster_resource_id, environment_id, value) "
                      "VALUES (%s, %s, %s, 0)", (user_id, resource_ids[r], env_id))
                    ucr[r] = cur.lastrowid
                vpses = q("SELECT v.vps_id, v.dataset_in_pool_id FROM vps v INNER JOIN servers s ON "
                          "s.server_id = v.vps_server WHERE v.object_state <> 3 AND v.m_id = %s AND "
                          "s.environment_id = %s", (user_id, env_id)).fetchall()
                for vps_id, dip_id in vpses:
                    found = {}
                    configs = q("SELECT vhc.id, c.name FROM config c INNER JOIN vps_has_config vhc ON "
                                "c.id = vhc.config_id WHERE vhc.vps_id = %s ORDER BY `order`", (vps_id,)).fetchall()
                    for vhc_id, name in configs:
                        for pattern, resource, unit in RUBY_RULES:
                            m = pattern.match(name)
                            if m:
                                found[resource] = int(m[1]) * unit
                                q("DELETE FROM vps_has_config WHERE id = %s", (vhc_id,))
                                break
                    for v in (4, 6):
                        found[f"ipv{v}"] = q("SELECT COUNT(*) FROM vps_ip WHERE vps_id = %s AND ip_v = %s",
                                             (vps_id, v)).fetchone()[0]
                    for resource, value in found.items():
                        if resource == "diskspace":
                            obj = ("DatasetInPool", "dataset_in_pools", dip_id)
                            q("UPDATE dataset_properties SET value = %s, updated_at = UTC_TIMESTAMP() "
                              "WHERE dataset_in_pool_id = %s AND name = 'refquota'", (f"--- {value}\n...\n", dip_id))
                        else:
                            obj = ("Vps", "vps", vps_id)
                        q("INSERT INTO cluster_resource_uses (class_name, table_name, row_id, "
                          "user_cluster_resource_id, value, confirmed) VALUES (%s, %s, %s, %s, %s, 1)",
                          (*obj, ucr[resource], value))
                        totals[resource] += value
                nas = q("SELECT dip.id, d.ancestry, q.value FROM dataset_in_pools dip "
                        "INNER JOIN datasets d ON d.id = dip.dataset_id INNER JOIN pools p ON p.id = dip.pool_id "
                        "INNER JOIN servers s ON s.server_id = p.node_id LEFT JOIN dataset_properties q "
                        "ON q.dataset_in_pool_id = dip.id AND q.name = 'quota' "
                        "WHERE d.user_id = %s AND p.role = 1 AND s.environment_id = %s", (user_id, env_id)).fetchall()
                for dip_id, ancestry, quota_text in nas:
                    if ancestry:
                        continue
                    quota = int(str(quota_text).removeprefix("---").split("\n...")[0].strip() or 0)
                    q("INSERT INTO cluster_resource_uses (class_name, table_name, row_id, "
                      "user_cluster_resource_id, value, confirmed) VALUES ('DatasetInPool', 'dataset_in_pools', "
                      "%s, %s, %s, 1)", (dip_id, ucr["diskspace"], quota))
                    totals["diskspace"] += quota
                for r in RESOURCES:
                    q("UPDATE user_cluster_resources SET value = %s WHERE id = %s", (max(totals[r], MINIMUM[r]), ucr[r]))
            done += 1
            if time.monotonic() - started > budget_s:
                conn.commit()
                return {"statements": sent, "users_done": done, "users": total_users, "last_user": user_id}
    conn.commit()
    return {"statements": sent, "users_done": done, "users": total_users, "last_user": None}


def ruby_environment_configs(conn) -> int:
    """The runbook's inline environment-config script (PLAYGROUND_ENABLE = [])."""
    cur = conn.cursor()
    cur.execute("SELECT id, can_create_vps, can_destroy_vps, vps_lifetime, max_vps_count FROM environments")
    envs = cur.fetchall()
    cur.execute("SELECT m_id FROM members WHERE object_state <> 3")
    users = [r[0] for r in cur.fetchall()]
    sent = 2
    for user_id in users:
        for env_id, create, destroy, lifetime, max_count in envs:
            cur.execute("INSERT INTO environment_user_configs (environment_id, user_id, can_create_vps, "
                        "can_destroy_vps, vps_lifetime, max_vps_count, `default`) VALUES (%s, %s, %s, %s, %s, %s, 1)",
                        (env_id, user_id, create, destroy, lifetime, max_count))
            sent += 1
    conn.commit()
    return sent


# -- comparing the copies --------------------------------------------------------------------
OUTCOME = {  # {last} limits each to the users the baseline got to (owners of VPSes / datasets)
    "user_cluster_resources": "SELECT ucr.user_id, ucr.environment_id, cr.name, ucr.value FROM user_cluster_resources ucr "
                              "JOIN cluster_resources cr ON cr.id = ucr.cluster_resource_id WHERE ucr.user_id <= {last}",
    "cluster_resource_uses": "SELECT ucr.user_id, ucr.environment_id, cr.name, u.class_name, u.table_name, u.row_id, "
                             "u.value, u.confirmed FROM cluster_resource_uses u JOIN user_cluster_resources ucr "
                             "ON ucr.id = u.user_cluster_resource_id JOIN cluster_resources cr "
                             "ON cr.id = ucr.cluster_resource_id WHERE ucr.user_id <= {last}",
    "vps_has_config": "SELECT vhc.id, vhc.vps_id, vhc.config_id, vhc.`order`, vhc.confirmed FROM vps_has_config vhc "
                      "JOIN vps v ON v.vps_id = vhc.vps_id WHERE v.m_id <= {last}",
    "refquotas": "SELECT v.vps_id, q.value FROM vps v JOIN dataset_properties q ON q.name = 'refquota' AND "
                 "q.dataset_in_pool_id = v.dataset_in_pool_id WHERE v.m_id <= {last}",
    "environment_user_configs": "SELECT environment_id, user_id, can_create_vps, can_destroy_vps, vps_lifetime, "
                                "max_vps_count, `default` FROM environment_user_configs",
}


def outcome(kwargs: dict, db: str, last_user: int) -> dict[str, list]:
    with closing(connect(kwargs, db)) as conn, closing(conn.cursor()) as cur:
        result = {}
        for name, statement in OUTCOME.items():
            cur.execute(statement.format(last=int(last_user)))
            result[name] = sorted(cur.fetchall(), key=repr)  # NULLs do not compare with ints
        return result


def differences(a: dict, b: dict) -> list[str]:
    problems = []
    for name in OUTCOME:
        if a[name] != b[name]:
            only_a = len(set(a[name]) - set(b[name]))
            only_b = len(set(b[name]) - set(a[name]))
            problems.append(f"{name}: {len(a[name])} vs {len(b[name])} rows, {only_a} only in baseline, "
                            f"{only_b} only in ours")
    return problems


# -- the report ------------------------------------------------------------------------------
def timed(fn, *args, **kwargs):
    t0 = time.monotonic()
    result = fn(*args, **kwargs)
    return time.monotonic() - t0, result


def main(argv: list[str] | None = None) -> int:
    from lab.core import mysql

    parser = argparse.ArgumentParser(prog="python -m bench vpsadmin_resources", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=SCALE, help="world size (3850: ~100k VPSes, ~20k users)")
    parser.add_argument("--baseline-budget", type=float, default=BASELINE_BUDGET_S,
                        help="seconds the baseline may run before its time is extrapolated from the users done")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="airlift-bench-resources-"))
    os.environ.update(airflow_env(workdir / "airflow"))  # before the operators import airflow
    from vpsadmin.cluster_resources import assign_cluster_resources, create_environment_configs

    kwargs = mysql.resolve(workdir, os.environ.get("LAB_MYSQL_URL"))
    tag = uuid.uuid4().hex[:8]
    baseline_db, ours_db = f"airlift_bench_res_{tag}_a", f"airlift_bench_res_{tag}_b"
    quiet = logging.getLogger("bench.resources")
    quiet.setLevel(logging.WARNING)
    try:
        print(f"world: scale {args.scale}", flush=True)
        build_world(kwargs, baseline_db, args.scale, workdir)
        seconds, _ = timed(copy_database, kwargs, baseline_db, ours_db)
        print(f"  copied to a second database in {seconds:.1f} s", flush=True)
        size = world_size(kwargs, baseline_db)

        print("baseline: assign_cluster_resources.rb, statement for statement", flush=True)
        with closing(connect(kwargs, baseline_db)) as conn:
            base_measured, base_run = timed(ruby_assign, conn, args.baseline_budget)
        base_assign = base_measured * base_run["users"] / base_run["users_done"]
        last_user = base_run["last_user"] or 1 << 30
        with closing(connect(kwargs, baseline_db)) as conn:
            base_env, base_env_sent = timed(ruby_environment_configs, conn)

        print("ours: the operators' core functions", flush=True)
        with closing(connect(kwargs, ours_db)) as conn:
            ours_assign, assign_details = timed(assign_cluster_resources, conn, minimums=None, dry_run=False,
                                                logger=quiet)
        with closing(connect(kwargs, ours_db)) as conn:
            ours_env, env_details = timed(create_environment_configs, conn, playground_environments=[],
                                          dry_run=False, logger=quiet)
        with closing(connect(kwargs, ours_db)) as conn:
            rerun, rerun_details = timed(assign_cluster_resources, conn, dry_run=False, logger=quiet)

        problems = differences(outcome(kwargs, baseline_db, last_user), outcome(kwargs, ours_db, last_user))
    finally:
        for db in (baseline_db, ours_db):
            mysql.drop_database(kwargs, db)
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"\nworld: {size}\n")
    if base_run["last_user"] is None:
        print(f"  {'cluster resources, baseline':<{W}} {base_assign:>8.2f} s  ({base_run['statements']} statements)")
    else:
        print(f"  {'cluster resources, baseline (extrapolated)':<{W}} {base_assign:>8.1f} s  "
              f"({base_measured:.1f} s measured for {base_run['users_done']} of {base_run['users']} users, "
              f"{base_run['statements']} statements)")
    print(f"  {'cluster resources, ours':<{W}} {ours_assign:>8.2f} s  ({assign_details['plan']['uses_to_insert']} uses, "
          f"{assign_details['plan']['user_resources_to_insert']} user resources, "
          f"{assign_details['plan']['configs_to_delete']} configs deleted)")
    print(f"  {'cluster resources, ours again (no change)':<{W}} {rerun:>8.2f} s  "
          f"({'nothing written' if not rerun_details['written'] else rerun_details['written']})")
    print(f"  {'environment configs, baseline':<{W}} {base_env:>8.2f} s  ({base_env_sent} statements)")
    print(f"  {'environment configs, ours':<{W}} {ours_env:>8.2f} s  (1 INSERT ... SELECT, "
          f"{env_details['inserted']} rows)\n")
    scope = "" if base_run["last_user"] is None else f" for users up to {base_run['last_user']}"
    print(f"copies afterwards{scope}: " + ("identical (resources, uses, configs, refquotas, environment configs)"
                                          if not problems else "; ".join(problems)))
    ratio, env_ratio = base_assign / ours_assign, base_env / ours_env
    verdict = "OK" if ratio >= TARGET_RATIO and ours_assign < TARGET_S else "OVER"
    print(f"\ncluster resources: ours {ours_assign:.2f} s, baseline {base_assign:.1f} s, ratio {ratio:.0f}x "
          f"(target: >= {TARGET_RATIO:.0f}x and under {TARGET_S:.0f} s: {verdict})")
    print(f"environment configs: ours {ours_env:.2f} s, baseline {base_env:.1f} s, ratio {env_ratio:.0f}x")
    return 1 if problems or rerun_details["written"] else 0
