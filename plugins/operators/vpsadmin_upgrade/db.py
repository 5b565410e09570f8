"""Database (runbook: "Database"): stray VPSes and vps_ip fixes (SqlStepOperator), vpsAdmind
stopped (NodeScriptOperator), InnoDB, the encoding fix in five steps, the time zone tables."""

from __future__ import annotations

from collections.abc import Sequence

from airflow.sdk.bases.skipmixin import SkipMixin

from airlift.errors import StepError
from airlift.sql import identifiers
from operators.runbook_step import Plan, RunbookStepOperator
from operators.vpsadmin_upgrade.common import VpsAdminStepOperator
from vpsadmin import encoding


class InnoDbOperator(VpsAdminStepOperator):
    """`log`, `node_pubkey` and `transactions` to InnoDB, only those still on another engine.
    Refuses while any vpsAdmind runs: 1.22 watches the MyISAM UPDATE_TIME of `transactions`,
    which the conversion takes away."""

    template_fields: Sequence[str] = (*RunbookStepOperator.template_fields, "inventory")
    uses_step_sql = True
    TABLES = ("log", "node_pubkey", "transactions")

    def __init__(self, *, inventory, **kwargs):
        super().__init__(**kwargs)
        self.inventory = inventory

    def probe(self, context) -> Plan:
        engines = self.db.table_engines(list(self.TABLES))
        todo = [t for t in self.TABLES if engines.get(t, "").lower() != "innodb"]
        return Plan([identifiers(self.statements["convert"], table=t) for t in todo])

    def apply(self, context, plan: Plan) -> None:
        running = [n["server_name"] for n in self.inventory
                   if self.nodes.run(n["address"], "service vpsadmind status", check=False).ok]
        if running:
            raise StepError(f"vpsadmind still runs on {', '.join(running)}; stop every daemon before the "
                            "InnoDB conversion")
        for statement in plan.changes:
            self.db.run(statement, autocommit=True)


FOUR_BYTE_REFUSAL = ("text that repairs to a 4-byte character (e.g. an emoji), which the utf8 tables cannot hold "
                     "(see plugins/vpsadmin/encoding.py): replace it by hand first, in\n- ")


def four_byte_text(db, database: str) -> list[str]:
    """Where the encoding fix would meet a 4-byte character: `<table> <key>=<value>: <columns>`."""
    found = []
    for table in encoding.TABLES:
        key, columns = db.text_columns(table)
        found += [f"{table} {', '.join(f'{k}={row[k]}' for k in key)}: "
                  + ", ".join(c for i, c in enumerate(columns) if row[f"c{i}"])
                  for row in db.rows(encoding.four_byte(database, table, key, columns))]
    return found


class EncodingProbeOperator(VpsAdminStepOperator, SkipMixin):
    """Counts double-encoded rows in members, members_changes, sysconfig and vps. The rest of
    the fix runs only when there is something to fix and this is a real run (otherwise it is
    skipped); refuses outright when, next to double-encoded text, the tables also hold correct
    non-ASCII text, which the runbook's latin1 dump would mangle. Once fixed, all text is
    correct UTF-8 and there is nothing to do."""

    template_fields: Sequence[str] = (*RunbookStepOperator.template_fields, "settings")
    inherits_from_skipmixin = True

    def __init__(self, *, settings, **kwargs):
        super().__init__(**kwargs)
        self.settings = settings

    def probe(self, context) -> Plan:
        found, unsafe = {}, {}
        for table in encoding.TABLES:
            counts = self.db.rows(encoding.probe(self.settings["database"], table, self.db.text_columns(table)[1]))[0]
            found[table] = int(counts["double_encoded"])
            if counts["unsafe"]:
                unsafe[table] = int(counts["unsafe"])
            self.log.info("%s: %s: %d of %d row(s) double-encoded", self.label, table, found[table],
                          counts["total_rows"])
        total = sum(found.values())
        if total and unsafe:
            raise StepError(f"rows with correct non-ASCII text next to double-encoded ones ({unsafe}); a latin1 "
                            "dump and utf8 reload would corrupt them. Fix those rows by hand first.")
        four_byte = four_byte_text(self.db, self.settings["database"]) if total else []
        if four_byte:
            problem = FOUR_BYTE_REFUSAL + "\n- ".join(four_byte)
            if not self.dry_run:
                raise StepError(problem)
            self.log.warning("refused (a real run stops here): %s", problem)
        database = self.settings["database"]
        changes = [] if not total else [
            f"mysqldump --skip-set-charset --default-character-set=latin1 {database} {' '.join(encoding.TABLES)}",
            f"mysql --default-character-set=utf8 {database}_airlift_enc < dump; verify every row",
            "after approval: swap the repaired tables in, drop the originals"]
        return Plan(changes, details={"double_encoded": found, "refused": four_byte})

    def apply(self, context, plan: Plan) -> None:
        """Nothing: the next tasks make the fix."""

    def verify(self, context, plan: Plan) -> Plan:
        return Plan()

    def execute(self, context) -> dict:
        record = super().execute(context)
        if not record["changes"] or record["dry_run"]:
            self.skip(ti=context["ti"], tasks=context["task"].get_direct_relatives(upstream=False))
        return record


def scratch_database(database: str) -> str:
    """Where the encoding fix reloads its dump: recomputed from the settings by every step that
    uses it, never taken from an XCom (the swap drops it)."""
    return f"{database}_airlift_enc"


class EncodingReloadOperator(VpsAdminStepOperator):
    """Reloads the latin1 dump as utf8 into a scratch database (`<database>_airlift_enc`) and
    proves the round trip: same rows, every text cell equal to its repaired original, the
    `known_names` right. Nothing is dropped here."""

    template_fields: Sequence[str] = (*RunbookStepOperator.template_fields, "settings", "dump", "known_names")
    uses_step_sql = True

    def __init__(self, *, settings, dump, known_names=None, **kwargs):
        kwargs.setdefault("script", "mysql/load.sh")
        super().__init__(**kwargs)
        self.settings, self.dump, self.known_names = settings, dump, known_names or {}

    @property
    def scratch(self) -> str:
        return scratch_database(self.settings["database"])

    def probe(self, context) -> Plan:
        return Plan([f"{self.settings['db_host']}: load.sh {self.dump['path']} {self.scratch}; verify every row"])

    def apply(self, context, plan: Plan) -> dict | None:
        # load.sh --replace empties the scratch database first, so a retry reloads it whole
        self.db.run(identifiers(self.statements["create_scratch"], database=self.scratch), autocommit=True)
        return self.remote_job(context, self.nodes, self.settings["db_host"], self.script,
                               [self.dump["path"], self.scratch, self.dump["sha256"], "--replace"], plan)

    def job_done(self, context, plan: Plan, result) -> dict:
        super().job_done(context, plan, result)
        return {"scratch": self.scratch, "verified": self._round_trip(), "dump": self.dump}

    def _round_trip(self) -> dict:
        database, st = self.settings["database"], self.statements
        verified, problems = {}, []
        for table in encoding.TABLES:
            key, columns = self.db.text_columns(table)
            check = self.db.rows(encoding.verify(database, self.scratch, table, key, columns))[0]
            reloaded = self.db.rows(identifiers(st["count_rows"], database=self.scratch, table=table))[0]["n"]
            verified[table] = {"rows": int(check["total_rows"]), "reloaded": int(reloaded),
                               "wrong": int(check["wrong"])}
            if check["missing"] or check["wrong"] or reloaded != check["total_rows"]:
                problems.append(f"{table}: {check['total_rows']} rows, {reloaded} reloaded, {check['missing']} "
                                f"missing, {check['wrong']} differ")
        for m_id, expected in self.known_names.items():
            got = self.db.rows(identifiers(st["member_name"], database=self.scratch), {"m_id": int(m_id)})
            if not got or got[0]["m_name"] != expected:
                problems.append(f"members.m_name of {m_id} reads {got[0]['m_name'] if got else None!r}, "
                                f"expected {expected!r}")
        if problems:
            raise StepError("the round trip does not hold; nothing was dropped:\n" + "\n".join(problems))
        return verified

    def verify(self, context, plan: Plan) -> Plan:
        return Plan()  # apply proved the round trip


class EncodingSwapOperator(VpsAdminStepOperator):
    """After approval: swaps the verified utf8 tables in (one atomic RENAME) and drops the
    originals; the latin1 dump stays as their backup. Safe to retry at any point: a swap that
    happened is not repeated, originals left by an interrupted run are dropped."""

    template_fields: Sequence[str] = (*RunbookStepOperator.template_fields, "settings", "reload")
    uses_step_sql = True

    def __init__(self, *, settings, reload, **kwargs):
        super().__init__(**kwargs)
        self.settings, self.reload = settings, reload

    def _names(self) -> tuple[str, str, str]:
        """(the database, the scratch copy, where the originals go): from the settings alone,
        which must name the connection's database."""
        database = self.settings["database"]
        if database != self.db.database:
            raise StepError(f"the settings name database {database!r}, connection {self.mysql_conn_id} "
                            f"{self.db.database!r}; nothing is swapped or dropped")
        return database, scratch_database(database), f"{scratch_database(database)}_old"

    def probe(self, context) -> Plan:
        database, scratch, old = self._names()
        changes = []
        if self.db.tables(scratch, list(encoding.TABLES)) == set(encoding.TABLES):
            changes.append(encoding.swap(database, scratch, old))
        changes += [identifiers(self.statements["drop_table"], database=old, table=table)
                    for table in sorted(self.db.tables(old, list(encoding.TABLES)))]
        return Plan(changes, details={"latin1_dump": self.reload["dump"]})

    def apply(self, context, plan: Plan) -> None:
        database, scratch, old = self._names()
        for table in encoding.TABLES if plan.changes[0].startswith("RENAME") else ():
            key, columns = self.db.text_columns(table)
            check = self.db.rows(encoding.verify(database, scratch, table, key, columns))[0]
            if check["missing"] or check["wrong"]:
                raise StepError(f"{table} changed since it was verified; run again")
        self.db.run(identifiers(self.statements["create_old"], database=old), autocommit=True)
        for statement in plan.changes:  # the RENAME, then the originals dropped
            self.db.run(statement, autocommit=True)
        self.db.run(identifiers(self.statements["drop_database"], database=old), autocommit=True)
        self.db.run(identifiers(self.statements["drop_database"], database=scratch), autocommit=True)


class TimezonesOperator(VpsAdminStepOperator):
    """`mysql_tzinfo_to_sql /usr/share/zoneinfo | mysql mysql` on the DB host when the time
    zone tables are empty, then CONVERT_TZ('Europe/Prague' -> 'UTC') must work (the 2.0
    migrations depend on it)."""

    template_fields: Sequence[str] = (*RunbookStepOperator.template_fields, "settings")
    uses_step_sql = True
    uses_step_script = True

    def __init__(self, *, settings, **kwargs):
        super().__init__(**kwargs)
        self.settings = settings

    def probe(self, context) -> Plan:
        check = self.db.rows(self.statements["check"])[0]
        if check["zones"] > 0 and str(check["utc"]) == "2015-06-30 10:00:00":
            return Plan()
        return Plan([f"{self.settings['db_host']}: mysql_tzinfo_to_sql /usr/share/zoneinfo | mysql mysql"],
                     details={"found": {k: str(v) for k, v in check.items()}})

    def apply(self, context, plan: Plan) -> dict | None:
        return self.remote_job(context, self.nodes, self.settings["db_host"], self.script, [], plan)
