"""Operators for the vpsAdmin v1.22 -> v2.0 upgrade steps that are more than one probe and
one change. Each keeps `execute` short: hooks do the I/O, plugins/vpsadmin/ the logic."""

from __future__ import annotations

import json
import shlex

from airflow.sdk import BaseOperator
from airflow.sdk.bases.skipmixin import SkipMixin
from airflow.sdk.exceptions import AirflowFailException

from airlift import sql
from airlift.connections import VPSADMIN_DB, VPSADMIN_SSH
from airlift.remote import NodeCommandError
from operators.steps import step_record
from vpsadmin import crontab, encoding, mounts
from vpsadmin.params import (
    ParamError,
    check_abs_path,
    check_db_name,
    check_hostname,
    check_node_names,
    check_upgrade,
    raise_if,
)

DB_VERSION = 15


def _run_label(context) -> str:
    """A file-name-safe label of the DAG run, so each run's files are its own."""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in context["run_id"])


class _VpsAdminOperator(BaseOperator):
    """Hooks are built on use, so parsing a DAG loads neither paramiko nor MySQLdb."""

    def __init__(self, *, mysql_conn_id: str = VPSADMIN_DB, ssh_conn_id: str = VPSADMIN_SSH, **kwargs):
        super().__init__(**kwargs)
        self.mysql_conn_id, self.ssh_conn_id = mysql_conn_id, ssh_conn_id

    def db(self):
        from hooks.vpsadmin_db import VpsAdminDbHook

        return VpsAdminDbHook(self.mysql_conn_id)

    def nodes(self):
        from hooks.node import NodeHook

        return NodeHook(self.ssh_conn_id)


class PreflightOperator(_VpsAdminOperator):
    """Checks the trigger parameters and that everything the run needs answers, before
    anything changes; returns the resolved settings the later steps use."""

    template_fields = ("api_host", "db_host", "backup_dir", "skip_nodes", "upgrade")

    def __init__(self, *, api_host: str, db_host: str, backup_dir: str, skip_nodes, upgrade=None, **kwargs):
        super().__init__(**kwargs)
        self.api_host, self.db_host, self.backup_dir, self.skip_nodes = api_host, db_host, backup_dir, skip_nodes
        self.upgrade = upgrade or {}

    def execute(self, context) -> dict:
        try:
            return self._preflight()
        except ParamError as exc:
            raise AirflowFailException(str(exc)) from exc

    def _preflight(self) -> dict:
        errors = check_abs_path("backup_dir", self.backup_dir) + check_node_names("skip_nodes", self.skip_nodes)
        for label, value in (("api_host", self.api_host), ("db_host", self.db_host)):
            if value:
                errors += check_hostname(label, value)
        db = self.db()
        errors += check_db_name("database of connection " + self.mysql_conn_id, db.database)
        raise_if(errors)

        version = db.named("inventory.sql", "schema_version")
        found = json.loads(version[0]["db_version"]) if version else None
        if str(found) != str(DB_VERSION):
            raise_if([f"database {db.database} is not vpsAdmin v1.22 (sysconfig db_version {found!r}, "
                      f"expected {DB_VERSION})"])
        servers = db.servers()
        names = {n for s in servers for n in (s["server_name"], s["server_name"].split(".")[0])}
        raise_if([f"skip_nodes: no server named {n!r} in the servers table" for n in self.skip_nodes
                  if n not in names] + check_upgrade(self.upgrade, [s["server_name"] for s in servers]))

        nodes = self.nodes()
        api_host = self.api_host or nodes.default_host
        db_host = self.db_host or db.host
        try:
            for label, address in (("api_host", api_host), ("db_host", db_host)):
                try:
                    nodes.run(address, "true", timeout=30)
                except Exception as exc:  # refused, unknown host key, auth: all end the run here
                    raise_if([f"cannot reach {label} {address} over SSH: {exc}"])
            found_dir = nodes.run(db_host, ["test", "-d", self.backup_dir], check=False, timeout=30)
            dump_tools = nodes.run(db_host, "command -v mysqldump mysql mysql_tzinfo_to_sql", check=False)
        finally:
            nodes.close()
        if not found_dir.ok:
            raise_if([f"backup_dir {self.backup_dir} does not exist on the DB host {db_host}"])
        if not dump_tools.ok or len(dump_tools.stdout.split()) < 3:
            raise_if([f"the DB host {db_host} lacks the MySQL client tools (mysqldump, mysql, "
                      "mysql_tzinfo_to_sql)"])
        subnets = self.upgrade.get("sharenfs_subnets") or sorted(
            {".".join(s["server_ip4"].split(".")[:3]) + ".0/24" for s in servers})
        settings = {"api_host": api_host, "db_host": db_host, "database": db.database,
                    "backup_dir": self.backup_dir.rstrip("/") or "/", "subnets": subnets}
        self.log.info("preflight ok: %s", settings)
        return settings


class InventoryOperator(_VpsAdminOperator):
    """The nodes to work on: every row of `servers`, except `skip_nodes`."""

    template_fields = ("skip_nodes",)

    def __init__(self, *, skip_nodes, **kwargs):
        super().__init__(**kwargs)
        self.skip_nodes = skip_nodes

    def execute(self, context) -> list[dict]:
        nodes, errors = [], []
        for s in self.db().servers():
            name = s["server_name"]
            if name in self.skip_nodes or name.split(".")[0] in self.skip_nodes:
                self.log.warning("skipping %s as asked (skip_nodes)", name)
                continue
            errors += check_hostname(f"servers.server_ip4 of {name}", s["server_ip4"])
            nodes.append({"server_id": s["server_id"], "server_name": name,
                          "server_type": s["server_type"], "address": s["server_ip4"]})
        if errors:
            raise AirflowFailException("the servers table holds addresses that cannot be used:\n" + "\n".join(errors))
        self.log.info("%d node(s): %s", len(nodes), ", ".join(n["server_name"] for n in nodes))
        return nodes


class MysqlDumpOperator(_VpsAdminOperator):
    """Dumps the database (or `tables` of it) on the DB host with include/scripts/mysql_dump.sh
    and verifies the file; returns its path, size and sha256."""

    template_fields = ("settings", "dry_run")
    SUFFIX = {"full": ".sql.gz", "latin1": ".sql"}

    def __init__(self, *, settings, step: str, mode: str, label: str, tables: tuple[str, ...] = (),
                 dry_run=True, **kwargs):
        super().__init__(**kwargs)
        self.settings, self.step, self.mode, self.file_label = settings, step, mode, label
        self.tables, self.dry_run = list(tables), dry_run

    def execute(self, context) -> dict:
        path = (f"{self.settings['backup_dir']}/{self.settings['database']}-{self.file_label}-"
                f"{_run_label(context)}{self.SUFFIX[self.mode]}")
        args = [self.mode, self.settings["database"], path, *self.tables]
        change = f"{self.settings['db_host']}: mysql_dump.sh {shlex.join(args)}"
        if self.dry_run:
            self.log.info("%s: plan: would dump with %s", self.step, change)
            return step_record(self.step, True, [change], False)
        nodes = self.nodes()
        try:
            result = nodes.run_script(self.settings["db_host"], "mysql_dump.sh", args, timeout=6 * 3600)
        except NodeCommandError as exc:
            raise AirflowFailException(f"{self.step}: the dump failed: {exc}") from exc
        finally:
            nodes.close()
        dump = json.loads(result.stdout.strip().splitlines()[-1])
        if not dump["size"]:
            raise AirflowFailException(f"{self.step}: {path} is empty")
        self.log.info("%s: %s, %d bytes, sha256 %s%s", self.step, dump["path"], dump["size"],
                      dump["sha256"], " (kept from an earlier try)" if dump["reused"] else "")
        return step_record(self.step, False, [change], True, **dump)


class CrontabDisableOperator(_VpsAdminOperator):
    """Disables every job of root's crontab on the API/web host (the cluster crontab),
    keeping the original in `saved_copy` (written once, never overwritten). Subclasses edit
    the crontab differently through `transform`."""

    template_fields = ("settings", "dry_run")

    def __init__(self, *, settings, step: str, saved_copy: str | None = "/root/crontab.v1.22", dry_run=True,
                 **kwargs):
        super().__init__(**kwargs)
        self.settings, self.step, self.saved_copy, self.dry_run = settings, step, saved_copy, dry_run

    def transform(self, text: str) -> tuple[str, list[str]]:
        """(new crontab, the changes); no changes when the crontab is as it should be."""
        new_text, disabled = crontab.disable_all(text)
        return new_text, [f"disable `{line}`" for line in disabled]

    def execute(self, context) -> dict:
        host = self.settings["api_host"]
        nodes = self.nodes()
        try:
            current = nodes.run(host, ["crontab", "-l"], check=False)
            if not current.ok:
                self.log.info("%s: %s has no crontab (%s)", self.step, host, current.tail(1))
                return step_record(self.step, self.dry_run, [], False)
            new_text, changes = self.transform(current.stdout)
            changes = [f"{host}: {change}" for change in changes]
            if not changes or self.dry_run:
                self.log.info("%s: %s", self.step, "plan:\n" + "\n".join(changes) if changes
                              else f"the crontab on {host} is as it should be")
                return step_record(self.step, self.dry_run, changes, False)
            if self.saved_copy and not nodes.run(host, ["test", "-e", self.saved_copy], check=False).ok:
                nodes.run(host, f"umask 077; cat > {shlex.quote(self.saved_copy)}", stdin=current.stdout)
            nodes.run(host, ["crontab", "-"], stdin=new_text)
            left = self.transform(nodes.run(host, ["crontab", "-l"]).stdout)[1]
            if left:
                raise AirflowFailException(f"{self.step}: still to change on {host} after installing the new "
                                           "crontab:\n" + "\n".join(left))
        except NodeCommandError as exc:
            raise AirflowFailException(f"{self.step}: {exc}") from exc
        finally:
            nodes.close()
        self.log.info("%s: %d change(s) on %s%s:\n%s", self.step, len(changes), host,
                      f"; original kept in {self.saved_copy}" if self.saved_copy else "", "\n".join(changes))
        return step_record(self.step, False, changes, True, saved_copy=self.saved_copy)


class BackupMountsDeleteOperator(_VpsAdminOperator):
    """Deletes the mounts of backup exports and queues the transactions v1.22's
    nas_mount_delete($id, true, true) queued (plugins/vpsadmin/mounts.py)."""

    template_fields = ("dry_run",)

    def __init__(self, *, step: str, dry_run=True, **kwargs):
        super().__init__(**kwargs)
        self.step, self.dry_run = step, dry_run

    def execute(self, context) -> dict:
        db = self.db()
        rows = db.named("delete_backup_mounts.sql", "mounts")
        backup_mounts = [r for r in rows if r["is_backup"]]
        if not backup_mounts:
            self.log.info("%s: no backup mounts left", self.step)
            return step_record(self.step, self.dry_run, [], False)
        plan = mounts.plan_deletions(backup_mounts, [r for r in rows if not r["default"]])
        changes = []
        for entry in plan:
            types = ", ".join(str(t.t_type) for t in entry["transactions"]) or "none (template)"
            changes.append(f"#{entry['vps_id']} mount {entry['mount_id']} '{entry['dst']}': delete; "
                           f"transactions {types}")
        self.log.info("%s: %s\n%s", self.step, "plan" if self.dry_run else "deleting", "\n".join(changes))
        if self.dry_run:
            return step_record(self.step, True, changes, False)
        first_t_id = db.named("transactions.sql", "next_id")[0]["next_id"]
        queue = sql.statement("vpsadmin/delete_backup_mounts.sql", "queue_transaction")
        delete = sql.statement("vpsadmin/delete_backup_mounts.sql", "delete_mount")
        for entry in plan:
            statements = [(queue, t.__dict__) for t in entry["transactions"]]
            statements.append((delete, {"id": entry["mount_id"]}))
            db.execute_in_transaction(statements)
        self.log.info("%s: deleted %d mount(s)", self.step, len(plan))
        return step_record(self.step, False, changes, True, first_t_id=first_t_id)


class InnoDbOperator(_VpsAdminOperator):
    """Converts the tables still on MyISAM; refuses while any vpsAdmind runs (1.22 watches
    the MyISAM UPDATE_TIME of `transactions`)."""

    template_fields = ("dry_run", "inventory")
    TABLES = ("log", "node_pubkey", "transactions")

    def __init__(self, *, step: str, inventory, dry_run=True, **kwargs):
        super().__init__(**kwargs)
        self.step, self.inventory, self.dry_run = step, inventory, dry_run

    def execute(self, context) -> dict:
        db = self.db()
        engines = db.table_engines(list(self.TABLES))
        todo = [t for t in self.TABLES if engines.get(t, "").lower() != "innodb"]
        changes = [f"ALTER TABLE `{t}` ENGINE = InnoDB" for t in todo]
        if not todo:
            self.log.info("%s: %s already InnoDB", self.step, ", ".join(self.TABLES))
            return step_record(self.step, self.dry_run, [], False)
        if self.dry_run:
            self.log.info("%s: plan:\n%s", self.step, "\n".join(changes))
            return step_record(self.step, True, changes, False)
        nodes = self.nodes()
        try:
            running = [n["server_name"] for n in self.inventory
                       if nodes.run(n["address"], "service vpsadmind status", check=False).ok]
        finally:
            nodes.close()
        if running:
            raise AirflowFailException(f"{self.step}: vpsadmind still runs on {', '.join(running)}; "
                                       "stop every daemon before the InnoDB conversion")
        for change in changes:
            db.run(change, autocommit=True)
        left = [t for t, e in db.table_engines(list(self.TABLES)).items() if e.lower() != "innodb"]
        if left:
            raise AirflowFailException(f"{self.step}: still not InnoDB: {', '.join(left)}")
        return step_record(self.step, False, changes, True)


class EncodingProbeOperator(_VpsAdminOperator, SkipMixin):
    """Counts double-encoded rows in the four tables. Lets the fix go on only when there is
    something to fix and this is a real run; refuses outright when, next to double-encoded
    text, the tables also hold correct non-ASCII text, which the runbook's latin1 dump would
    mangle. Once fixed, all text is correct UTF-8 and there is nothing to do."""

    template_fields = ("settings", "dry_run")
    inherits_from_skipmixin = True

    def __init__(self, *, settings, step: str, dry_run=True, **kwargs):
        super().__init__(**kwargs)
        self.settings, self.step, self.dry_run = settings, step, dry_run

    def execute(self, context) -> dict:
        db, database = self.db(), self.settings["database"]
        found, unsafe = {}, {}
        for table in encoding.TABLES:
            _, columns = db.text_columns(table)
            statement = encoding.probe(database, table, columns)
            counts = db.rows(statement)[0]
            double, other, rows = counts["double_encoded"], counts["unsafe"], counts["total_rows"]
            found[table] = int(double)
            if other:
                unsafe[table] = int(other)
            self.log.info("%s: %s: %d of %d row(s) double-encoded", self.step, table, double, rows)
        total = sum(found.values())
        if total and unsafe:
            raise AirflowFailException(
                f"{self.step}: rows with correct non-ASCII text next to double-encoded ones ({unsafe}); "
                "a latin1 dump and utf8 reload would corrupt them. Fix those rows by hand first.")
        changes = [] if not total else [
            f"mysqldump --skip-set-charset --default-character-set=latin1 {database} {' '.join(encoding.TABLES)}",
            f"mysql --default-character-set=utf8 {database}_airlift_enc < dump; verify every row",
            "after approval: swap the repaired tables in, drop the originals",
        ]
        if total and self.dry_run:
            self.log.info("%s: plan (%d rows):\n%s", self.step, total, "\n".join(changes))
        if not total or self.dry_run:
            self.skip(ti=context["ti"], tasks=context["task"].get_direct_relatives(upstream=False))
        return step_record(self.step, self.dry_run, changes, False, double_encoded=found)


class EncodingReloadOperator(_VpsAdminOperator):
    """Reloads the latin1 dump as utf8 into a scratch database and proves the round trip:
    same rows, every text cell equal to its repaired original, the known names right."""

    template_fields = ("settings", "dump", "known_names")

    def __init__(self, *, settings, dump, step: str, known_names=None, **kwargs):
        super().__init__(**kwargs)
        self.settings, self.dump, self.step, self.known_names = settings, dump, step, known_names or {}

    def execute(self, context) -> dict:
        db, database = self.db(), self.settings["database"]
        scratch = f"{database}_airlift_enc"
        db.run(f"DROP DATABASE IF EXISTS {encoding.q(scratch)}", autocommit=True)
        db.run(f"CREATE DATABASE {encoding.q(scratch)} CHARACTER SET utf8", autocommit=True)
        nodes = self.nodes()
        try:
            nodes.run_script(self.settings["db_host"], "mysql_load.sh",
                             [self.dump["path"], scratch, self.dump["sha256"]], timeout=6 * 3600)
        except NodeCommandError as exc:
            raise AirflowFailException(f"{self.step}: reloading the dump failed: {exc}") from exc
        finally:
            nodes.close()
        verified, problems = {}, []
        for table in encoding.TABLES:
            key, columns = db.text_columns(table)
            check = db.rows(encoding.verify(database, scratch, table, key, columns))[0]
            rows, missing, wrong = check["total_rows"], check["missing"], check["wrong"]
            reloaded = db.rows(f"SELECT COUNT(*) AS n FROM {encoding.q(scratch)}.{encoding.q(table)}")[0]["n"]
            verified[table] = {"rows": int(rows), "reloaded": int(reloaded), "wrong": int(wrong)}
            if missing or wrong or reloaded != rows:
                problems.append(f"{table}: {rows} rows, {reloaded} reloaded, {missing} missing, {wrong} differ")
        for m_id, expected in self.known_names.items():
            got = db.rows(f"SELECT m_name FROM {encoding.q(scratch)}.members WHERE m_id = %s", (int(m_id),))
            if not got or got[0]["m_name"] != expected:
                problems.append(f"members.m_name of {m_id} reads {got[0]['m_name'] if got else None!r}, "
                                f"expected {expected!r}")
        if problems:
            raise AirflowFailException(f"{self.step}: the round trip does not hold; nothing was dropped:\n"
                                       + "\n".join(problems))
        self.log.info("%s: round trip verified in %s: %s", self.step, scratch, verified)
        return {"scratch": scratch, "verified": verified, "dump": self.dump}


class EncodingSwapOperator(_VpsAdminOperator):
    """After approval: swaps the verified utf8 tables in (one atomic RENAME) and drops the
    originals; the latin1 dump stays as their backup. Safe to retry at any point."""

    template_fields = ("settings", "reload")

    def __init__(self, *, settings, reload, step: str, **kwargs):
        super().__init__(**kwargs)
        self.settings, self.reload, self.step = settings, reload, step

    def _tables(self, db, database: str) -> set[str]:
        rows = db.rows("SELECT TABLE_NAME FROM information_schema.tables WHERE TABLE_SCHEMA = %s "
                       "AND TABLE_NAME IN %s", (database, list(encoding.TABLES)))
        return {r["TABLE_NAME"] for r in rows}

    def execute(self, context) -> dict:
        db, database = self.db(), self.settings["database"]
        scratch, old = self.reload["scratch"], f"{database}_airlift_enc_old"
        q = encoding.q
        changes = []
        if self._tables(db, scratch) == set(encoding.TABLES):
            for table in encoding.TABLES:
                key, columns = db.text_columns(table)
                check = db.rows(encoding.verify(database, scratch, table, key, columns))[0]
                if check["missing"] or check["wrong"]:
                    raise AirflowFailException(f"{self.step}: {table} changed since it was verified; run again")
            db.run(f"CREATE DATABASE IF NOT EXISTS {q(old)}", autocommit=True)
            rename = "RENAME TABLE " + ", ".join(
                f"{q(database)}.{q(t)} TO {q(old)}.{q(t)}, {q(scratch)}.{q(t)} TO {q(database)}.{q(t)}"
                for t in encoding.TABLES)
            db.run(rename, autocommit=True)
            changes.append(rename)
        for table in sorted(self._tables(db, old)):
            db.run(f"DROP TABLE {q(old)}.{q(table)}", autocommit=True)
            changes.append(f"DROP TABLE {old}.{table}")
        for name in (old, scratch):
            db.run(f"DROP DATABASE IF EXISTS {q(name)}", autocommit=True)
        self.log.info("%s: %s", self.step, "\n".join(changes) or "already swapped")
        return step_record(self.step, False, changes, bool(changes), latin1_dump=self.reload["dump"])


class TimezonesOperator(_VpsAdminOperator):
    """Loads mysql.time_zone* from the DB host's zoneinfo when they are empty, and checks that
    CONVERT_TZ with a named zone works (the 2.0 migrations depend on it)."""

    template_fields = ("settings", "dry_run")
    # The server caches zones it has looked up, so CONVERT_TZ alone can succeed with empty
    # tables; both are checked.
    CHECK = ("SELECT CONVERT_TZ('2015-06-30 12:00:00', 'Europe/Prague', 'UTC') AS utc, "
             "(SELECT COUNT(*) FROM mysql.time_zone_name) AS zones")

    def __init__(self, *, settings, step: str, dry_run=True, **kwargs):
        super().__init__(**kwargs)
        self.settings, self.step, self.dry_run = settings, step, dry_run

    def execute(self, context) -> dict:
        db = self.db()
        if self._loaded(db):
            self.log.info("%s: time zone tables already loaded", self.step)
            return step_record(self.step, self.dry_run, [], False)
        change = f"{self.settings['db_host']}: mysql_tzinfo_to_sql /usr/share/zoneinfo | mysql mysql"
        if self.dry_run:
            self.log.info("%s: plan: %s", self.step, change)
            return step_record(self.step, True, [change], False)
        nodes = self.nodes()
        try:
            nodes.run_script(self.settings["db_host"], "mysql_timezones.sh", [], timeout=1800)
        except NodeCommandError as exc:
            raise AirflowFailException(f"{self.step}: {exc}") from exc
        finally:
            nodes.close()
        if not self._loaded(db):
            raise AirflowFailException(f"{self.step}: after loading, {db.rows(self.CHECK)[0]}")
        return step_record(self.step, False, [change], True)

    def _loaded(self, db) -> bool:
        check = db.rows(self.CHECK)[0]
        return check["zones"] > 0 and str(check["utc"]) == "2015-06-30 10:00:00"
