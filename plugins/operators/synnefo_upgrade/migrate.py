"""The schema migrations of the upgrade: Django's (syncdb and South's migrate, part 3) on
snf_apps and alembic's (pithos-migrate, part 6) on snf_pithos, each with its restore path: the
dump taken right before it, an approval asked only when the migration certainly failed, and
the restore of that dump (PgRestoreOperator)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from airflow.sdk.bases.skipmixin import SkipMixin
from airflow.sdk.exceptions import AirflowSkipException

from airlift.errors import StepError
from operators.runbook_step import ApprovalGateOperator, Plan
from operators.synnefo_upgrade.common import PgDumpOperator, PgRestoreOperator, SynnefoStepOperator

# What 0.13's migrations end with (shared research synnefo.md §1): South's last im and db
# migrations, the quotaholder tables syncdb creates; alembic's head.
SOUTH_TARGETS = {"im": "0024", "db": "0061"}
QUOTAHOLDER_TABLE = "quotaholder_app_holding"
ALEMBIC_BASE = "3dd56e750a3"   # 0.12.5's head: where an unstamped 0.12 database is
ALEMBIC_HEAD = "27381099d477"  # 0.13's head


def alembic_revision(db) -> str | None:
    """snf_pithos's alembic revision (None: never stamped). `db`: its SynnefoDbHook."""
    if not db.get_first("SELECT to_regclass('alembic_version')")[0]:
        return None
    return db.get_first("SELECT max(version_num) FROM alembic_version")[0]


class MigrationOperator(SynnefoStepOperator, SkipMixin):
    """A migration run on one host as a remote job (a retry after a lost connection or a killed
    worker attaches to it or takes its result, never starts a second copy), when the schema is
    behind. One that failed or died is not run again: its restore path decides. It records
    where it runs (XCom `STARTED`) for the restore gate. In plan mode with the schema behind,
    the later steps cannot probe what does not exist yet: they are skipped (reports still run).

    :param role: the host it runs on (astakos, cyclades, pithos). :param database: the one it
    migrates."""

    template_fields: Sequence[str] = (*SynnefoStepOperator.template_fields, "role")
    inherits_from_skipmixin = True
    restart_died_job = False
    STARTED = "migration_started"  # XCom key the restore gate reads: {host, job}
    what = "the migration"  # how plan lines name it

    def __init__(self, *, role: str, database: str, args: Sequence[str] = (), **kwargs):
        kwargs.setdefault("execution_timeout", timedelta(hours=6))
        super().__init__(**kwargs)
        self.role, self.database, self.args = role, database, list(args)

    @property
    def host(self) -> str:
        return self.settings["hosts"][self.role]

    def pending(self) -> list[str]:
        """What the schema still lacks, a line each (none: migrated)."""
        raise NotImplementedError

    def probe(self, context) -> Plan:
        pending = self.pending()
        if not pending:
            return Plan()
        return Plan([f"{self.role}: {self.what} ({', '.join(pending)})"])

    def execute(self, context) -> dict:
        record = super().execute(context)
        if record["dry_run"] and record["changes"]:
            later = [t for t in context["task"].get_flat_relatives(upstream=False)
                     if not t.task_id.endswith("report")]
            self.log.info("%s: the %d later step(s) need the migrated schema to plan: skipped", self.label, len(later))
            self.skip(ti=context["ti"], tasks=later)
        return record

    def apply(self, context, plan: Plan) -> dict | None:
        context["ti"].xcom_push(key=self.STARTED, value={"host": self.host, "job": self.job_key(context)})
        return self.remote_job(context, self.nodes, self.host, self.script, self.args, plan)

    def job_done(self, context, plan: Plan, result) -> dict:
        for line in result.stdout.splitlines():
            self.log.info("[%s] %s", self.role, line)
        if not result.ok:
            raise StepError(f"the migration on {self.role} failed (exit {result.exit_status}); {self.database} "
                            "stays as the failed migration left it. Approve the restore of the dump taken right "
                            "before it, fix the cause, then run again.\n" + result.tail(20))
        left = self.pending()
        if left:
            raise StepError(f"{self.database} still lacks {', '.join(left)} after the migration on {self.role}")
        return {"migrated": self.database}

    def verify(self, context, plan: Plan) -> Plan:
        return Plan()  # job_done probed the schema


class DjangoMigrateOperator(MigrationOperator):
    """`snf-manage syncdb` (the stale content types question answered no, as the runbook says)
    and `snf-manage migrate` on the Astakos or Cyclades host
    (include/scripts/synnefo/s3/migrate-databases.sh), while snf_apps lacks 0.13's South
    migrations of the host's apps (Astakos: im up to 0024 and the quotaholder tables; Cyclades:
    db up to 0061)."""

    what = "snf-manage syncdb; snf-manage migrate"
    APPS = {"astakos": ("im",), "cyclades": ("db",)}

    def __init__(self, **kwargs):
        kwargs.setdefault("script", "synnefo/s3/migrate-databases.sh")
        super().__init__(database="snf_apps", **kwargs)

    def pending(self) -> list[str]:
        db = self.db("snf_apps")
        missing = [f"{app} up to {SOUTH_TARGETS[app]}" for app in self.APPS[self.role]
                   if not db.get_first("SELECT 1 FROM south_migrationhistory WHERE app_name = %s AND migration >= %s",
                                       (app, SOUTH_TARGETS[app]))]
        if self.role == "astakos" and not db.get_first("SELECT to_regclass(%s)", (QUOTAHOLDER_TABLE,))[0]:
            missing.append("the quotaholder tables")
        return missing


class PithosMigrateOperator(MigrationOperator):
    """`pithos-migrate` to alembic head on the Pithos host (include/scripts/synnefo/s6/
    pithos-migrate.sh: stamped at 0.12.5's head first when it has no revision), while
    snf_pithos is not at 0.13's head. Its account-to-uuid revision asks Astakos for every
    account (PITHOS_SERVICE_TOKEN): Astakos runs (part 4) and the duplicates are merged (6.2)."""

    what = "pithos-migrate upgrade head"

    def __init__(self, **kwargs):
        kwargs.setdefault("script", "synnefo/s6/pithos-migrate.sh")
        super().__init__(database="snf_pithos", role="pithos", args=[ALEMBIC_BASE], **kwargs)

    def pending(self) -> list[str]:
        current = alembic_revision(self.db("snf_pithos"))
        return [] if current == ALEMBIC_HEAD else [f"alembic {current or 'no revision'} -> {ALEMBIC_HEAD}"]


class RestoreGateOperator(ApprovalGateOperator, SynnefoStepOperator):
    """The approval before restoring a phase's dump: asks only when a migration of the phase
    started and failed. Skipped when they all succeeded or none started (something before
    them failed). Refuses, asking nothing, while a migration's job still runs on its host: a
    restore then would drop a live migration."""

    def __init__(self, *, migrate_task_ids: Sequence[str], **kwargs):
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)
        self.migrate_task_ids = list(migrate_task_ids)

    def execute(self, context):
        ti = context["ti"]
        failed = []
        for task_id in self.migrate_task_ids:
            started = ti.xcom_pull(task_ids=task_id, key=MigrationOperator.STARTED)
            if isinstance(started, dict) and ti.xcom_pull(task_ids=task_id) is None:
                failed.append(started)
        if not failed:
            raise AirflowSkipException("no migration failed: nothing to restore")
        with self.step_errors():
            for started in failed:
                job = self.nodes.job_status(started["host"], started["job"])
                if job.state == "running":
                    raise StepError(f"the migration still runs on {started['host']} (job {job.key}, process group "
                                    f"{job.pgid}): no restore while it runs. Clear the migration task: it waits for "
                                    "it and takes its result.")
        return super().execute(context)


def migration_with_restore(*, step: str, settings, database: str, label: str, migrations: list) -> tuple:
    """A migration phase in the current TaskGroup: the dump of `database` right before it,
    the `migrations` (in order), the approval of a restore (asked only when one failed) and
    the restore of that dump. Returns (backup, restore)."""
    backup = PgDumpOperator(step="s1.backup-databases", database=database, label=label, settings=settings,
                            execution_timeout=timedelta(hours=6),
                            doc_md="A verified dump right before the migration: what its restore loads.")
    gate = RestoreGateOperator(
        task_id="approve_restore", step=step, migrate_task_ids=[m.task_id for m in migrations], plan=backup.output,
        settings=settings,
        subject=f"The migration failed: restore {database} from the dump taken right before it?",
        body=f"A migration of {database} failed (see its log). **Approve** rebuilds the database from the verified "
             "dump taken right before it (one transaction; the file's sha256 is checked first); then fix the cause "
             "and trigger the DAG again. **Reject** leaves the database as the migration left it.",
        doc_md="Approval before restoring the dump taken right before the migration.")
    restore = PgRestoreOperator(task_id=f"restore_{database}", step=step, settings=settings, backup=backup.output)
    backup >> migrations[0]
    for earlier, later in zip(migrations, migrations[1:], strict=False):
        earlier >> later
    migrations >> gate >> restore
    return backup, restore
