"""Steps resources.assign and users.environment-configs against the database (no Airflow).

Two core functions take a DB-API connection to the vpsAdmin database (MySQLdb) and the
step's named statements (include/sql/vpsadmin/resources/assign.sql,
include/sql/vpsadmin/users/environment-configs.sql: by default read from the file, from the
operators their rendered template field), so the tests and the bench run exactly what the
operators (operators/vpsadmin_upgrade/cluster.py) run:

- assign_cluster_resources(conn, minimums=..., dry_run=...): reads the few tables once into
  pandas frames, plans with vpsadmin.resources.plan_assignment, writes the plan through
  temporary tables with set-based statements in one transaction, then plans again from the
  database and fails unless nothing is left to do;
- create_environment_configs(conn, playground_environments=..., dry_run=...): one
  INSERT ... SELECT of the missing (environment, user) pairs.

Both return the details of a step record; plan mode (dry_run) reads and logs, writes nothing.
"""

from __future__ import annotations

import logging
import time

from airlift import sql

log = logging.getLogger(__name__)

RESOURCES_SQL = "vpsadmin/resources/assign.sql"
ENV_CONFIGS_SQL = "vpsadmin/users/environment-configs.sql"
INPUTS = ("users", "environments", "vpses", "vps_configs", "ip_counts", "nas_datasets", "user_resources", "uses")
# executemany() sends one multi-row INSERT per this many bytes (MySQLdb's default is 64 KiB).
MAX_STATEMENT_BYTES = 4 << 20

RESOURCES_DIFFERENCES = (
    "Differs from the runbook's assign_cluster_resources.rb: CPU configs matched as cpu-<N>c-<limit> "
    "(the runbook text's cpu-(\\d+)-\\d+ matches no config); re-runnable (objects that have uses are "
    "not translated again, missing user_cluster_resources rows are added, existing ones only raised); "
    "minimums per environment label from the `resource_minimums` param; no PaperTrail `versions` rows.")


def read_frame(cur, statement: str, parameters=None):
    import pandas as pd

    cur.execute(statement, parameters)
    columns = [d[0] for d in cur.description]
    return pd.DataFrame(list(cur.fetchall()), columns=columns)


def rows_of(frame, columns: list[str]) -> list[tuple]:
    """Plain Python values (the driver does not quote numpy scalars)."""
    return list(zip(*(frame[c].tolist() for c in columns), strict=True)) if len(frame) else []


def load_inputs(cur, statements: dict[str, str]) -> tuple[dict, dict[str, int]]:
    """The frames plan_assignment takes, and {resource name: cluster_resources.id}."""
    from vpsadmin.resources import property_int

    frames = {name: read_frame(cur, statements[name]) for name in INPUTS}
    properties = read_frame(cur, statements["properties"])
    properties["value"] = properties["value"].map(property_int)
    quotas = properties[properties["name"] == "quota"][["dataset_in_pool_id", "value"]]
    frames["nas_datasets"] = frames["nas_datasets"].merge(
        quotas.rename(columns={"value": "quota"}), on="dataset_in_pool_id", how="left")
    # id: the property row, so the write goes by primary key.
    frames["refquotas"] = properties[properties["name"] == "refquota"][["id", "dataset_in_pool_id", "value"]]
    resource_ids = dict(rows_of(read_frame(cur, statements["cluster_resources"]), ["name", "id"]))
    return frames, resource_ids


def write_plan(cur, plan, resource_ids: dict[str, int], st: dict[str, str],
               logger: logging.Logger = log) -> dict[str, int]:
    """The plan into the database (the caller commits); affected rows per statement."""
    from vpsadmin.resources import RESOURCES, ResourceError, property_text

    missing = [r for r in RESOURCES if r not in resource_ids]
    if missing:
        raise ResourceError(f"cluster_resources has no {', '.join(missing)}: is the schema at 20150630072821?")
    cur.max_stmt_length = MAX_STATEMENT_BYTES
    for name in ("create_tmp_ucr", "create_tmp_uses", "create_tmp_configs", "create_tmp_refquotas"):
        cur.execute(st[name])
    try:
        changed_ucr = plan.user_resources[plan.user_resources["current"].isna()
                                          | (plan.user_resources["current"].fillna(-1) < plan.user_resources["value"])]
        ucr = changed_ucr.assign(cluster_resource_id=changed_ucr["resource"].map(resource_ids))
        uses = plan.new_uses.assign(cluster_resource_id=plan.new_uses["resource"].map(resource_ids))
        refquotas = plan.refquotas.assign(text=plan.refquotas["value"].map(property_text))
        cur.executemany(st["fill_ucr"], rows_of(ucr, ["user_id", "environment_id", "cluster_resource_id", "value"]))
        cur.executemany(st["fill_uses"], rows_of(uses, ["user_id", "environment_id", "cluster_resource_id",
                                                        "class_name", "table_name", "row_id", "value"]))
        cur.executemany(st["fill_configs"], rows_of(plan.deleted_configs, ["id"]))
        cur.executemany(st["fill_refquotas"], rows_of(refquotas, ["id", "text"]))
        affected = {}
        for name in ("insert_user_resources", "raise_user_resources", "insert_uses", "delete_configs",
                     "set_refquotas"):
            t0 = time.monotonic()
            cur.execute(st[name])
            affected[name] = cur.rowcount
            logger.info("resources.assign: %s: %d row(s) in %.2f s", name, cur.rowcount, time.monotonic() - t0)
    finally:
        cur.execute(st["drop_temporary_tables"])
    expected = {"insert_uses": len(plan.new_uses), "delete_configs": len(plan.deleted_configs),
                "set_refquotas": len(plan.refquotas),
                "insert_user_resources": len(plan.missing_user_resources),
                "raise_user_resources": len(plan.raised_user_resources)}
    wrong = {k: (affected[k], v) for k, v in expected.items() if affected[k] != v}
    if wrong:
        raise ResourceError("rows written differ from the plan (written, planned): "
                            + ", ".join(f"{k} {a} != {p}" for k, (a, p) in wrong.items()))
    return affected


def assign_cluster_resources(conn, *, minimums: dict | None = None, dry_run: bool = True,
                             statements: dict[str, str] | None = None, logger: logging.Logger = log) -> dict:
    """resources.assign on an open connection (autocommit off). Raises ResourceError."""
    from vpsadmin.resources import ResourceError, plan_assignment

    statements = statements or sql.load(RESOURCES_SQL)

    started = time.monotonic()
    cur = conn.cursor()
    try:
        frames, resource_ids = load_inputs(cur, statements)
        plan = plan_assignment(**frames, minimums=minimums)
        summary = plan.summary()
        logger.info("resources.assign: %s", summary)
        for line in plan.sample():
            logger.info("resources.assign: %s %s", "plan:" if dry_run else "change:", line)
        if dry_run or not plan.changes:
            conn.rollback()
            return {"plan": summary, "written": {}, "seconds": round(time.monotonic() - started, 2)}
        try:
            written = write_plan(cur, plan, resource_ids, statements, logger)
            conn.commit()
        except Exception:
            conn.rollback()
            raise
        after = plan_assignment(**load_inputs(cur, statements)[0], minimums=minimums)
        conn.rollback()
        if after.changes:
            raise ResourceError(f"after writing, a new plan still has changes: {after.summary()}: "
                                + "; ".join(after.sample(3)))
        return {"plan": summary, "written": written, "seconds": round(time.monotonic() - started, 2)}
    finally:
        cur.close()


def create_environment_configs(conn, *, playground_environments=(), dry_run: bool = True,
                               statements: dict[str, str] | None = None, logger: logging.Logger = log) -> dict:
    """users.environment-configs on an open connection (autocommit off). Raises ResourceError."""
    from vpsadmin.resources import ResourceError

    st = statements or sql.load(ENV_CONFIGS_SQL)
    cur = conn.cursor()
    try:
        envs = read_frame(cur, st["environments"])
        labels = dict(zip(envs["label"], envs["id"], strict=True))
        if not isinstance(playground_environments, list | tuple) or not all(
                isinstance(label, str) for label in playground_environments):
            raise ResourceError(f"playground_environments must be a list of environment labels, "
                                f"got {playground_environments!r}")
        unknown = [label for label in playground_environments if label not in labels]
        if unknown:
            raise ResourceError(f"playground_environments: no environment labelled {', '.join(map(repr, unknown))} "
                                f"(known: {', '.join(map(repr, labels))})")
        params = {"playground_ids": ",".join(str(int(labels[label])) for label in playground_environments)}
        cur.execute(st["probe"])
        missing = int(cur.fetchone()[0])
        per_env = rows_of(read_frame(cur, st["sample"], params), ["environment", "missing", "playground_restricted"])
        for env, n, restricted in per_env:
            logger.info("users.environment-configs: %s: %s missing, %s of them playground-restricted",
                        env, n, int(restricted or 0))
        if dry_run or not missing:
            conn.rollback()
            return {"missing": missing, "inserted": 0}
        try:
            cur.execute(st["apply"], params)
            inserted = cur.rowcount
            conn.commit()
        except Exception:
            conn.rollback()
            raise
        cur.execute(st["probe"])
        left = int(cur.fetchone()[0])
        conn.rollback()
        if left:
            raise ResourceError(f"{left} (environment, user) pair(s) still have no config after the insert")
        return {"missing": missing, "inserted": inserted}
    finally:
        cur.close()
