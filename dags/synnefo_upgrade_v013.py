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
   installation started stopped again.

The later parts (migrations, settings, UUIDs, quotas) follow in the same shape.
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
from airlift.sql import template_searchpath
from operators.runbook_step import (
    ApprovalGateOperator,
    NodeScriptOperator,
    RunReportOperator,
    SectionReportOperator,
)
from operators.synnefo_upgrade.common import PgDumpOperator, ServicesOperator
from operators.synnefo_upgrade.preflight import PreflightOperator
from operators.synnefo_upgrade.users import (
    APPROVAL_TABLE,
    DeleteDuplicatesOperator,
    FindDuplicatesOperator,
    RecheckDuplicatesOperator,
)
from synnefo.params import DEFAULT_SERVICES, package_hosts, service_hosts

RELEASE = "0.13"  # what the packages are upgraded to

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
        "astakos_host": Param("", type="string", title="Astakos host", description="Its SSH address."),
        "cyclades_host": Param("", type="string", title="Cyclades host", description="Its SSH address."),
        "pithos_host": Param("", type="string", title="Pithos host", description="Its SSH address."),
        "ganeti_nodes": Param([], type="array", items={"type": "string"}, title="Ganeti nodes",
                              description="Their SSH addresses (they get the new snf-cyclades-gtools)."),
        "db_host": Param("", type="string", title="DB host",
                         description="Where pg_dump runs (PostgreSQL client tools, the backup directory); "
                                     "empty: the Astakos host."),
        "backup_dir": Param("/var/backups/synnefo", type="string", title="Backup directory",
                            description="Existing directory on the DB host for the dumps and reports."),
        "services": Param(DEFAULT_SERVICES, type="object", title="Web services per host",
                          description='{"astakos": [...], "cyclades": [...], "pithos": [...]}: stopped first, '
                                      "started last."),
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

    stop_started >> RunReportOperator()
