"""
### vpsAdmin 2.0: object lifetimes (replaces cron_delete.php and cron_mailer.php)

The runbook's lifetimes cron jobs as one daily DAG, a task per job in the runbook's order:
mail owners of users and VPSes about to expire, suspend users whose expiration passed more
than `user_grace_days` ago, advance suspended and soft-deleted users, VPSes, datasets and
snapshot downloads. Each runs `rake vpsadmin:lifetimes:...` on the API host, waits (deferred)
for the transaction chains it fires and checks that exactly the planned objects moved to the
planned state and expiration. The runbook's `progress` lines lack `EXECUTE=yes` (as written
they change nothing); these tasks set it, except in plan mode (`dry_run`), where they list
what a run would do. An object another chain holds is left for the next day's run.

A run stopping at one task does not stop the later ones (they were independent cron jobs);
the run report names what failed. Paused until the upgrade (vpsadmin_upgrade_v2) unpauses it.
Schedule: daily at `[airlift] lifetimes_hour` (UTC). Mailing is once a day (a second run that
day sends no mail again). `max_changes` caps what one task may move in one run.

Connections: `vpsadmin_db`, `vpsadmin_ssh` (host: the API host, unless `api_host` is given).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Param, TaskGroup

from airlift.connections import VPSADMIN_DB, VPSADMIN_SSH
from airlift.params import HOST_OR_EMPTY, OPTIONAL_TEXT
from airlift.settings import daily_at
from airlift.sql import template_searchpath
from operators.runbook_step import RunReportOperator, SectionReportOperator
from operators.vpsadmin_scheduled.lifetimes import MailOperator, ProgressOperator

DAY = 24 * 60 * 60

with DAG(
    dag_id="vpsadmin_lifetimes",
    description="vpsAdmin 2.0 object lifetimes: expiration mails and state progress (cron_delete, cron_mailer)",
    doc_md=__doc__,
    schedule=daily_at("lifetimes_hour", 3),
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=True,
    render_template_as_native_obj=True,
    template_searchpath=template_searchpath("vpsadmin"),
    tags=["vpsadmin", "scheduled", "runbook"],
    default_args={
        "retries": 2,
        "execution_timeout": timedelta(hours=2),
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
        "mysql_conn_id": VPSADMIN_DB,
        "ssh_conn_id": VPSADMIN_SSH,
        "api_host": "{{ params.api_host or '' }}",
        "max_changes": "{{ params.max_changes }}",
        "trigger_rule": "all_done",
    },
    params={
        "dry_run": Param(False, type="boolean", title="Plan mode",
                         description="List what each task would mail or move; change nothing."),
        "api_host": Param("", type=OPTIONAL_TEXT, pattern=HOST_OR_EMPTY, title="API host",
                          description="SSH address of the API host; empty: the host of vpsadmin_ssh."),
        "mail_days": Param(7, type="integer", minimum=0, maximum=365, title="Mail days ahead",
                           description="Owners are mailed this many days before expiration."),
        "user_grace_days": Param(14, type="integer", minimum=0, title="User grace (days)",
                                 description="Expired users are suspended this many days after expiration."),
        "user_new_expiration_days": Param(14, type="integer", minimum=0, title="Suspended users expire in (days)"),
        "vps_new_expiration_days": Param(7, type="integer", minimum=0, title="VPS next expiration (days)"),
        "suspend_reason": Param("Your account has expired.", type="string", maxLength=255,
                                title="Reason given to suspended users"),
        "max_changes": Param(500, type="integer", minimum=1, title="Most objects one task may change",
                             description="A task that would mail or move more refuses before it changes anything."),
    },
) as dag:
    with TaskGroup("lifetimes", tooltip="runbook: Cron jobs (lifetimes rake tasks)"):
        steps = [
            MailOperator(step="lifetimes.mail-users", model="User", states=["active"], days="{{ params.mail_days }}"),
            MailOperator(step="lifetimes.mail-vps", model="Vps", states=["active"], days="{{ params.mail_days }}"),
            ProgressOperator(step="lifetimes.suspend-users", objects=["User"], states=["active"],
                             grace=f"{{{{ params.user_grace_days * {DAY} }}}}",
                             new_expiration=f"{{{{ params.user_new_expiration_days * {DAY} }}}}",
                             reason="{{ params.suspend_reason }}"),
            ProgressOperator(step="lifetimes.delete-users", objects=["User"], states=["suspended", "soft_delete"]),
            ProgressOperator(step="lifetimes.progress-vps", objects=["Vps"],
                             new_expiration=f"{{{{ params.vps_new_expiration_days * {DAY} }}}}"),
            ProgressOperator(step="lifetimes.progress-other", objects=["Dataset", "SnapshotDownload"]),
        ]
        for earlier, later in zip(steps, steps[1:], strict=False):
            earlier >> later
        steps[-1] >> SectionReportOperator(section="Lifetimes")

    run_report = RunReportOperator()
    run_report.set_upstream([task for task in dag.leaves if task is not run_report])
