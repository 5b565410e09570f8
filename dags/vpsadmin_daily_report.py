"""
### vpsAdmin 2.0: the daily report (replaces daily_report.rb)

Once a day, `rake vpsadmin:mail_daily_report` on the API host sends the report (template
`daily_report`, to its recipients). The report's figures (new, suspended and deleted users and
VPSes, payments, chains and transactions done and failed) are in the task's XCom and on the
run's note. A second run the same day sends nothing again. Plan mode counts the figures and
sends nothing. Paused until the upgrade (vpsadmin_upgrade_v2) unpauses it.
Schedule: daily at `[airlift] daily_report_hour` (UTC).

Connections: `vpsadmin_db`, `vpsadmin_ssh` (host: the API host, unless `api_host` is given),
`airflow_api` (optional: Airflow's REST API, to set the run's note).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Param

from airlift.connections import VPSADMIN_DB, VPSADMIN_SSH
from airlift.params import HOST_OR_EMPTY, OPTIONAL_TEXT
from airlift.settings import daily_at
from airlift.sql import template_searchpath
from operators.vpsadmin_scheduled.report import DailyReportOperator

with DAG(
    dag_id="vpsadmin_daily_report",
    description="vpsAdmin 2.0 daily report (daily_report.rb)",
    doc_md=__doc__,
    schedule=daily_at("daily_report_hour", 7),
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=True,
    render_template_as_native_obj=True,
    template_searchpath=template_searchpath("vpsadmin"),
    tags=["vpsadmin", "scheduled", "runbook"],
    default_args={
        "retries": 2,
        "execution_timeout": timedelta(hours=1),
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "mysql_conn_id": VPSADMIN_DB,
        "ssh_conn_id": VPSADMIN_SSH,
    },
    params={
        "dry_run": Param(False, type="boolean", title="Plan mode", description="Count the figures; send nothing."),
        "api_host": Param("", type=OPTIONAL_TEXT, pattern=HOST_OR_EMPTY, title="API host",
                          description="SSH address of the API host; empty: the host of vpsadmin_ssh."),
    },
) as dag:
    DailyReportOperator(step="report.daily", api_host="{{ params.api_host or '' }}")
