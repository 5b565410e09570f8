"""
### Synnefo v0.12 -> v0.13 upgrade

The upgrade runbook of Synnefo 0.13 (seed 004) as a DAG, one task per step, grouped by the
runbook's parts. Trigger it in plan mode first (`dry_run`, the default): every probe runs,
every change is only logged, nothing is asked. A real run backs up both service databases
(pg_dump, verified) before the first change and after each phase, and stops at an approval
before anything is deleted or merged.

1. **preflight** checks the form, reaches every host and both databases;
   **stop**: the web services down on every host (the databases keep running), the backup.
2. **users**: every account of Astakos, Cyclades and Pithos in one pandas frame, grouped by
   lower-cased email; a decision for every group (who survives and why, what is deleted,
   reassigned, merged), shown in the approval and kept as a CSV report; then the Astakos
   duplicates deleted with the runbook's script, and checked again.

3. **packages**: the 0.13 packages of each host's role, then the services their
   installation started stopped again; **migrate**: snf_apps dumped, `syncdb` and `migrate`
   on the Astakos and Cyclades hosts (a failure offers, behind an approval, the restore of
   the dump); **settings**: the quotaholder URL and one shared token everywhere, Astakos,
   Cyclades and Pithos settings (files edited in place, valid Python, tokens masked).
4. **astakos**: Astakos's gunicorn started, its web server still down (no public access);
   the resources loaded (part 5).
6. **uuids**: what is merged and deleted, approved first; Cyclades validated and migrated to
   uuids, Pithos duplicates merged, snf_pithos dumped and `pithos-migrate`d (with its restore
   path), then Pithos's quotaholder switched on.
7. **quotas**: the exports of Pithos and Cyclades reconciled with pandas, approved, imported;
   `QuotaSyncOperator` verifies, syncs and verifies again; then the usage resets (after the
   sync, parts 8 and 9).
11. **start**: every web service started again.

Part 10 (expired projects) is the scheduled DAG `synnefo_project_control`.
A group's code is `plugins/operators/synnefo_upgrade/<group>.py`; a task's step id
(`Runbook step:` in its doc) names its SQL (`include/sql/synnefo/<part>/<step>.sql`).

Connections: `synnefo_ssh` (root over SSH on every host; host keys from its `known_hosts`
extra), `synnefo_apps_db` and `synnefo_pithos_db` (the two PostgreSQL databases; `schema`
names each; a dump on the DB host reaches the same server, its password in that host's
~/.pgpass).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Param, TaskGroup, task

from airlift.connections import SYNNEFO_SSH
from airlift.params import HOST_OR_EMPTY, HOST_PATTERN, OPTIONAL_TEXT
from airlift.sql import template_searchpath
from operators.runbook_step import (
    ApprovalGateOperator,
    NodeScriptOperator,
    RunReportOperator,
    SectionReportOperator,
)
from operators.synnefo_upgrade.astakos import LoadResourcesOperator, StartAstakosOperator
from operators.synnefo_upgrade.common import PgDumpOperator, ServicesOperator
from operators.synnefo_upgrade.migrate import DjangoMigrateOperator, PithosMigrateOperator, migration_with_restore
from operators.synnefo_upgrade.preflight import PreflightOperator
from operators.synnefo_upgrade.quotas import APPROVAL_TABLE as QUOTA_TABLE
from operators.synnefo_upgrade.quotas import (
    QuotaImportOperator,
    QuotaPlanOperator,
    QuotaSyncOperator,
    UsageResetOperator,
)
from operators.synnefo_upgrade.settings import (
    AstakosSettingsOperator,
    CycladesSettingsOperator,
    PithosQuotaholderOnOperator,
    PithosSettingsOperator,
    QuotaSettingsOperator,
)
from operators.synnefo_upgrade.users import (
    APPROVAL_TABLE,
    DeleteDuplicatesOperator,
    FindDuplicatesOperator,
    RecheckDuplicatesOperator,
)
from operators.synnefo_upgrade.uuids import (
    CycladesMigrateUsersOperator,
    CycladesValidateOperator,
    IdsPlanOperator,
    PithosDuplicatesOperator,
)
from synnefo.params import DEFAULT_SERVICES, package_hosts, service_hosts

# What the packages are upgraded to: 0.13.0 (a point release of it counts too). Written in full:
# "0.13" would reach the script as the float 0.13 (the DAG renders templates as native objects).
RELEASE = "0.13.0"

with DAG(
    dag_id="synnefo_upgrade_v013",
    description="Synnefo v0.12 -> v0.13 upgrade: users, packages, migrations, quotas (runbook as a DAG)",
    doc_md=__doc__,
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    render_template_as_native_obj=True,
    template_searchpath=template_searchpath("synnefo"),
    tags=["synnefo", "upgrade", "runbook"],
    default_args={
        "retries": 2,
        "execution_timeout": timedelta(hours=2),
        "retry_delay": timedelta(seconds=20),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=5),
        "ssh_conn_id": SYNNEFO_SSH,
    },
    params={
        "dry_run": Param(True, type="boolean", title="Plan mode", description="Probe and report; change nothing."),
        "astakos_host": Param("", type="string", pattern=HOST_PATTERN, title="Astakos host", description="Its SSH address."),
        "cyclades_host": Param("", type="string", pattern=HOST_PATTERN, title="Cyclades host", description="Its SSH address."),
        "pithos_host": Param("", type="string", pattern=HOST_PATTERN, title="Pithos host", description="Its SSH address."),
        "ganeti_nodes": Param([], type="array", items={"type": "string", "pattern": HOST_PATTERN}, title="Ganeti nodes",
                              description="Their SSH addresses (they get the new snf-cyclades-gtools)."),
        "db_host": Param("", type=OPTIONAL_TEXT, pattern=HOST_OR_EMPTY, title="DB host",
                         description="Where pg_dump runs (PostgreSQL client tools, the backup directory); "
                                     "empty: the Astakos host."),
        "backup_dir": Param("/var/backups/synnefo", type="string", title="Backup directory",
                            description="Existing directory on the DB host for the dumps and reports."),
        "services": Param(DEFAULT_SERVICES, type="object", title="Web services per host",
                          description='{"astakos": [...], "cyclades": [...], "pithos": [...]}: stopped first, '
                                      "started last."),
        "astakos_url": Param("", type=OPTIONAL_TEXT, title="Astakos URL",
                             description="Its public base URL (https://accounts.example.org); empty: https://<astakos "
                                         "host>. The quotaholder and the user catalogs are under it."),
        "cyclades_url": Param("", type=OPTIONAL_TEXT, title="Cyclades URL",
                              description="Its public base URL, exactly (VMAPI_BASE_URL); empty: https://<cyclades host>."),
        "server_email": Param("", type=OPTIONAL_TEXT, title="SERVER_EMAIL",
                              description="Astakos's sender address; empty: the old ASTAKOS_DEFAULT_FROM_EMAIL."),
        "admins": Param([], type="array", title="ADMINS", description='[["Name", "email"], ...]; empty: the old '
                                                                        "ASTAKOS_DEFAULT_ADMIN_EMAIL."),
    },
) as dag:
    with TaskGroup("stop", tooltip="runbook part 1: services down, databases backed up"):
        preflight = PreflightOperator(task_id="preflight", retries=0)
        settings = preflight.output
        hosts = task(task_id="service_hosts", doc_md="The hosts whose web services stop first and start last.",
                     retries=0)(service_hosts)(settings)
        package_hosts_of = task(task_id="package_hosts", retries=0,
                                doc_md="Every host the new packages go to, with its role.")(package_hosts)
        stop = ServicesOperator.partial(step="s1.stop-services", action="stop", settings=settings).expand(node=hosts)
        backups = [PgDumpOperator(step="s1.backup-databases", database=name, label="before-upgrade", settings=settings,
                                  execution_timeout=timedelta(hours=6))
                   for name in ("snf_apps", "snf_pithos")]
        preflight >> stop >> backups >> SectionReportOperator(section="Stop")

    with TaskGroup("users", tooltip="runbook part 2: duplicate users (pandas), deleted after approval"):
        find = FindDuplicatesOperator(step="s2.find-duplicates", settings=settings)
        approve = ApprovalGateOperator(
            task_id="approve_deletion", step="s2.delete-duplicates", plan=find.output, ask_when_empty=False,
            subject="Delete the duplicate Astakos users?",
            body="Users whose emails differ only in case become one user in 0.13. The table is the decision for "
                 "each email (the full list is written as a CSV report before anything is deleted):\n\n"
                 f"{{{{ ti.xcom_pull(task_ids='users.s2_find_duplicates', key='{APPROVAL_TABLE}') }}}}\n\n"
                 "**Approve** deletes the Astakos users listed below (with their related rows); their VMs, "
                 "networks and files stay and move to the survivor in part 6. **Reject** deletes nothing and stops "
                 "the run here.",
            ignore_downstream_trigger_rules=True, doc_md="The approval before the deletion.")
        delete = DeleteDuplicatesOperator(step="s2.delete-duplicates", settings=settings, approved=find.output)
        recheck = RecheckDuplicatesOperator(step="s2.recheck-duplicates", settings=settings)
        find >> approve >> delete >> recheck >> SectionReportOperator(section="Users")
        backups >> find

    with TaskGroup("packages", tooltip="runbook part 3: the 0.13 packages, the services they started stopped"):
        install = NodeScriptOperator.partial(step="s3.install-packages", args=["{role}", RELEASE],
                                             max_active_tis_per_dagrun=3).expand(node=package_hosts_of(settings))
        stop_started = ServicesOperator.partial(step="s3.stop-started-services", action="stop",
                                                settings=settings).expand(node=hosts)
        recheck >> install >> stop_started >> SectionReportOperator(section="Packages")

    with TaskGroup("migrate", tooltip="runbook part 3.2: syncdb and migrate, with the restore of the dump"):
        migrations = [DjangoMigrateOperator(task_id=f"s3_migrate_{role}", step="s3.migrate-databases", role=role,
                                            settings=settings) for role in ("astakos", "cyclades")]
        apps_backup, _ = migration_with_restore(step="s3.migrate-databases", settings=settings, database="snf_apps",
                                                label="before-migrate", migrations=migrations)
        migrations[-1] >> SectionReportOperator(section="Migrate")
        stop_started >> apps_backup

    with TaskGroup("settings", tooltip="runbook parts 3.3-3.6: quotaholder, Astakos, Cyclades, Pithos settings"):
        settings_steps = [QuotaSettingsOperator(step="s3.quota-settings", settings=settings),
                          AstakosSettingsOperator(step="s3.astakos-settings", settings=settings),
                          CycladesSettingsOperator(step="s3.cyclades-settings", settings=settings),
                          PithosSettingsOperator(step="s3.pithos-settings", settings=settings)]
        migrations[-1] >> settings_steps[0]
        for earlier, later in zip(settings_steps, settings_steps[1:], strict=False):
            earlier >> later
        settings_steps[-1] >> SectionReportOperator(section="Settings")

    with TaskGroup("astakos", tooltip="runbook parts 4-5: Astakos up (no public access), resources loaded"):
        start_astakos = StartAstakosOperator(step="s4.start-astakos", settings=settings)
        resources = LoadResourcesOperator(step="s5.load-resources", settings=settings)
        settings_steps[-1] >> start_astakos >> resources >> SectionReportOperator(section="Astakos")

    with TaskGroup("uuids", tooltip="runbook part 6: merges approved, users and accounts to uuids"):
        ids_plan = IdsPlanOperator(task_id="plan_merges", step="s6.cyclades-validate",
                                   also_steps=["s6.pithos-duplicates"], settings=settings, plan_only=True,
                                   doc_md="What part 6 merges and deletes, for the approval (changes nothing).")
        approve_merges = ApprovalGateOperator(
            task_id="approve_merges", step="s6.cyclades-validate", also_steps=["s6.pithos-duplicates"],
            plan=ids_plan.output, ask_when_empty=False, subject="Merge and delete duplicate Cyclades and Pithos users?",
            body="Before the user ids become uuids, each email's spellings become one: Cyclades ids merged into the "
                 "lower-case email (their VMs, networks and keys follow), ids no Astakos user has deleted with their "
                 "VMs, networks and keys (nothing happens in Ganeti), Pithos accounts merged into one and the merged "
                 "ones deleted. **Approve** does exactly the changes below; **Reject** changes nothing and stops here.",
            ignore_downstream_trigger_rules=True, doc_md="The approval before the merges and deletions.")
        validate = CycladesValidateOperator(step="s6.cyclades-validate", settings=settings, approved=ids_plan.output)
        pithos_duplicates = PithosDuplicatesOperator(step="s6.pithos-duplicates", settings=settings,
                                                     approved=ids_plan.output)
        migrate_users = CycladesMigrateUsersOperator(step="s6.cyclades-migrate-users", settings=settings)
        pithos_migrate = PithosMigrateOperator(step="s6.pithos-migrate", settings=settings)
        pithos_backup, _ = migration_with_restore(step="s6.pithos-migrate", settings=settings, database="snf_pithos",
                                                  label="before-pithos-migrate", migrations=[pithos_migrate])
        quotaholder_on = PithosQuotaholderOnOperator(task_id="s6_pithos_use_quotaholder", step="s6.pithos-migrate",
                                                     settings=settings)
        resources >> ids_plan >> approve_merges >> validate >> pithos_duplicates >> migrate_users >> pithos_backup
        pithos_migrate >> quotaholder_on >> SectionReportOperator(section="UUIDs")

    with TaskGroup("quotas", tooltip="runbook parts 7-9: quotas imported (approved), synced, usages reset"):
        quota_plan = QuotaPlanOperator(task_id="plan_quotas", step="s7.pithos-quota", also_steps=["s7.cyclades-quota"],
                                       settings=settings, doc_md=QuotaPlanOperator.__doc__)
        approve_quotas = ApprovalGateOperator(
            task_id="approve_quota_import", step="s7.pithos-quota", also_steps=["s7.cyclades-quota"],
            plan=quota_plan.output, ask_when_empty=False, subject="Import the per-user quotas into Astakos?",
            body="The per-user limits of Pithos and Cyclades, as Astakos 0.13 will hold them (0 in Pithos meant "
                 "unlimited and becomes a limit too large to reach):\n\n"
                 f"{{{{ ti.xcom_pull(task_ids='quotas.plan_quotas', key='{QUOTA_TABLE}') }}}}\n\n"
                 "**Approve** imports exactly this plan; **Reject** imports nothing and stops here.",
            ignore_downstream_trigger_rules=True, doc_md="The approval before the quota import.")
        quota_import = QuotaImportOperator(task_id="import_quotas", step="s7.pithos-quota",
                                           also_steps=["s7.cyclades-quota"], settings=settings,
                                           approved=quota_plan.output)
        sync = QuotaSyncOperator(step="s8.quota-verify-sync", settings=settings)
        usages = [UsageResetOperator(step="s9.pithos-usage", role="pithos", settings=settings),
                  UsageResetOperator(step="s9.cyclades-usage", role="cyclades", settings=settings)]
        quotaholder_on >> quota_plan >> approve_quotas >> quota_import >> sync >> usages
        usages >> SectionReportOperator(section="Quotas")

    with TaskGroup("start", tooltip="runbook part 11: every service started"):
        start = ServicesOperator.partial(step="s11.restart-services", action="start", settings=settings).expand(
            node=hosts)
        usages >> start >> SectionReportOperator(section="Start")

    start >> RunReportOperator()
