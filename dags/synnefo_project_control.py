"""
### Synnefo 0.13: expired projects (runbook part 10)

On its schedule (hourly unless `[airlift] project_control_schedule` says otherwise),
`snf-manage project-control --check-expired` on the Astakos host lists the projects whose
application ended and that are not terminated yet; when `terminate` is on (the default) they are
terminated with `--terminate-expired`, which mails their owners. The projects seen and those
terminated are in the task's XCom (`expired`, `terminated`). Plan mode only lists them.
Created paused: unpause it once the upgrade (synnefo_upgrade_v013) is done.

Connection: `synnefo_ssh` (root over SSH; the host is the `astakos_host` param).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Param

from airlift.connections import SYNNEFO_SSH
from airlift.params import HOST_OR_EMPTY, OPTIONAL_TEXT
from airlift.settings import project_control_schedule
from airlift.sql import template_searchpath
from operators.synnefo_scheduled.project_control import ProjectControlOperator

with DAG(
    dag_id="synnefo_project_control",
    description="Synnefo 0.13: expired projects checked and terminated (runbook part 10)",
    doc_md=__doc__,
    schedule=project_control_schedule(),
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=True,
    render_template_as_native_obj=True,
    template_searchpath=template_searchpath("synnefo"),
    tags=["synnefo", "scheduled", "runbook"],
    default_args={
        "retries": 3,
        "execution_timeout": timedelta(minutes=30),
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "ssh_conn_id": SYNNEFO_SSH,
    },
    params={
        "dry_run": Param(False, type="boolean", title="Plan mode", description="List the expired projects only."),
        "astakos_host": Param("", type=OPTIONAL_TEXT, pattern=HOST_OR_EMPTY, title="Astakos host",
                              description="SSH address of the Astakos host; empty: the host of synnefo_ssh."),
        "terminate": Param(True, type="boolean", title="Terminate expired projects",
                           description="Off: list them only."),
    },
) as dag:
    ProjectControlOperator(step="s10.project-control",
                           astakos_host="{{ params.astakos_host or conn.synnefo_ssh.host }}",
                           terminate="{{ params.terminate }}")
