"""
### vpsAdmin v1.22 -> v2.0 upgrade

The upgrade runbook of vpsAdmin 2.0 as a DAG, one task per step, grouped by the runbook's
sections. Trigger it in plan mode first (`dry_run`, the default): every probe runs, every
change is only logged, and each section ends with a report of what would change. A real run
(`dry_run = false`) backs up the whole database before its first change and stops at an
approval gate before anything is dropped.

Sections so far: Preflight (parameters, inventory from `servers`, the full backup),
Prerequisites and Database. Connections: `vpsadmin_db` (the vpsAdmin MySQL database),
`vpsadmin_ssh` (SSH credentials; its host is the API/web host, the nodes' addresses come
from `servers.server_ip4`; host keys checked against its `known_hosts` extra).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Param, TaskGroup

from airlift.steps import step_doc
from operators.steps import GateOperator, NodeStepOperator, SectionReportOperator, SqlStepOperator
from operators.vpsadmin import (
    BackupMountsDeleteOperator,
    CrontabDisableOperator,
    EncodingProbeOperator,
    EncodingReloadOperator,
    EncodingSwapOperator,
    InnoDbOperator,
    InventoryOperator,
    MysqlDumpOperator,
    PreflightOperator,
    TimezonesOperator,
)
from sensors.transaction_queue import TransactionQueueSensor
from vpsadmin.encoding import TABLES as ENCODING_TABLES

DRY_RUN = "{{ params.dry_run }}"
NODE_LABEL = "{{ task.node['server_name'] }}"  # mapped per-node tasks are labelled by node
SETTINGS = "{{ ti.xcom_pull(task_ids='preflight.check_params') }}"
INVENTORY = "{{ ti.xcom_pull(task_ids='preflight.inventory') }}"

with DAG(
    dag_id="vpsadmin_upgrade_v2",
    description="vpsAdmin v1.22 -> v2.0 cluster upgrade (runbook as a DAG)",
    doc_md=__doc__,
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    render_template_as_native_obj=True,
    tags=["vpsadmin", "upgrade", "runbook"],
    default_args={
        "retries": 2,
        "retry_delay": timedelta(seconds=20),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=5),
    },
    params={
        "dry_run": Param(True, type="boolean", title="Plan mode",
                         description="Probe and report what would change; change nothing."),
        "require_approval": Param(True, type="boolean", title="Approval gates",
                                  description="Stop for a human before irreversible steps. "
                                              "Switch off only for unattended lab rehearsals."),
        "api_host": Param("", type="string", title="API/web host",
                          description="SSH address of the host running the API and web interface; "
                                      "empty: the host of connection vpsadmin_ssh."),
        "db_host": Param("", type="string", title="DB host",
                         description="SSH address of the database server (dumps run there); "
                                     "empty: the host of connection vpsadmin_db."),
        "backup_dir": Param("/var/backups/vpsadmin", type="string", title="Backup directory",
                            description="Existing directory on the DB host for the dumps."),
        "skip_nodes": Param([], type="array", items={"type": "string"}, title="Nodes to skip",
                            description="Server names (or short names) left out, e.g. dead nodes."),
        "encoding_known_names": Param({}, type="object", title="Known member names",
                                      description='{"<m_id>": "<correct name>"}: names the encoding '
                                                  "fix must read back exactly."),
    },
) as dag:
    with TaskGroup("preflight", tooltip="parameters, inventory, full backup") as preflight:
        check_params = PreflightOperator(
            task_id="check_params", retries=0,
            api_host="{{ params.api_host }}", db_host="{{ params.db_host }}",
            backup_dir="{{ params.backup_dir }}", skip_nodes="{{ params.skip_nodes }}",
            doc_md="Validates the trigger parameters and reaches the database, the API host and "
                   "the DB host (backup directory, MySQL client tools) before anything changes.",
        )
        inventory = InventoryOperator(
            task_id="inventory", skip_nodes="{{ params.skip_nodes }}",
            doc_md="The nodes of the cluster, from the `servers` table.",
        )
        backup = MysqlDumpOperator(
            task_id="backup_database", settings=SETTINGS, mode="full", label="before-v2-upgrade",
            step="db.backup", dry_run=DRY_RUN, execution_timeout=timedelta(hours=6),
            doc_md=step_doc("db.backup",
                            "A full, consistent dump of the vpsAdmin database on the DB host, verified "
                            "(gzip test, completion trailer, size, sha256 in XCom) before the first change. "
                            "The runbook leaves backups to the administrator; here nothing changes "
                            "before one exists. A retry of the same run keeps a dump that verifies."),
        )
        check_params >> inventory >> backup

    with TaskGroup("prerequisites", tooltip="runbook: Prerequisities, Nodes") as prerequisites:
        maintenance = SqlStepOperator(
            task_id="maintenance_mode", sql_file="maintenance_mode.sql", step="prereq.maintenance-mode",
            dry_run=DRY_RUN,
            doc_md=step_doc("prereq.maintenance-mode",
                            "sysconfig `maintenance_mode` = JSON `true`, as the 1.22 web interface "
                            "writes it: only admins can act from now on."),
        )
        no_transactions = TransactionQueueSensor(
            task_id="no_transactions",
            doc_md=step_doc("prereq.no-transactions",
                            "Waits until no transaction is queued or running (`t_done = 0`), logging "
                            "the queue per node as it drains; holds no worker slot while waiting."),
        )
        install_nc = NodeStepOperator.partial(
            task_id="install_nc", step="prereq.install-nc", check="rpm -q nc", apply="yum -y install nc",
            dry_run=DRY_RUN, max_active_tis_per_dagrun=4, map_index_template=NODE_LABEL,
            doc_md=step_doc("prereq.install-nc", "`yum install nc` on every node that lacks it."),
        ).expand(node=inventory.output)
        disable_cron = CrontabDisableOperator(
            task_id="disable_cron", settings=SETTINGS, step="prereq.disable-cron", dry_run=DRY_RUN,
            doc_md=step_doc("prereq.disable-cron",
                            "Comments out every job of the cluster crontab (root's crontab on the "
                            "API/web host) with a `#airlift-disabled#` prefix; the original is kept "
                            "in /root/crontab.v1.22."),
        )
        delete_backup_mounts = BackupMountsDeleteOperator(
            task_id="delete_backup_mounts", step="prereq.delete-backup-mounts", dry_run=DRY_RUN,
            doc_md=step_doc("prereq.delete-backup-mounts",
                            "Deletes the mounts of backup exports and queues what "
                            "`nas_mount_delete($id, true, true)` queued: 5303 umount for a mounted, "
                            "non-template mount of a running VPS, 5301 mount-script regeneration for "
                            "every non-template mount. No PHP web interface needed; already queued "
                            "transactions are not queued twice."),
        )
        wait_transactions = TransactionQueueSensor(
            task_id="wait_transactions",
            failed_since="{{ (ti.xcom_pull(task_ids='prerequisites.delete_backup_mounts') or {}).get('first_t_id') }}",
            doc_md=step_doc("prereq.wait-transactions",
                            "Waits for the daemons to finish everything queued, the unmounts included, "
                            "and fails naming each one if a transaction the mount deletion queued failed."),
        )
        prerequisites_report = SectionReportOperator(
            task_id="report", section="Prerequisites",
            task_ids=["preflight.backup_database", "prerequisites.maintenance_mode",
                      "prerequisites.install_nc",
                      "prerequisites.disable_cron", "prerequisites.delete_backup_mounts"],
        )
        maintenance >> no_transactions >> [install_nc, disable_cron, delete_backup_mounts]
        delete_backup_mounts >> wait_transactions
        [install_nc, disable_cron, wait_transactions] >> prerequisites_report

    with TaskGroup("database", tooltip="runbook: Database") as database:
        stray = SqlStepOperator(
            task_id="remove_stray_vps", sql_file="remove_stray_vps.sql", step="db.remove-stray-vps",
            dry_run=DRY_RUN,
            doc_md=step_doc("db.remove-stray-vps",
                            "Deletes VPSes whose node is gone (they crash the add_storage migration)."),
        )
        ip_null = SqlStepOperator(
            task_id="vps_ip_null", sql_file="vps_ip_null.sql", step="db.vps-ip-null", dry_run=DRY_RUN,
            doc_md=step_doc("db.vps-ip-null", "`vps_ip.vps_id` 0 becomes NULL."),
        )
        orphans = SqlStepOperator(
            task_id="free_orphan_ips", sql_file="free_orphan_ips.sql", step="db.vps-ip-free-orphans",
            dry_run=DRY_RUN,
            doc_md=step_doc("db.vps-ip-free-orphans",
                            "Frees addresses of VPSes that do not exist (including the stray VPSes "
                            "just removed)."),
        )
        stop_daemons = NodeStepOperator.partial(
            task_id="stop_daemons", step="db.stop-daemons",
            check="service vpsadmind status >/dev/null 2>&1; test $? -eq 3",
            apply="service vpsadmind stop", dry_run=DRY_RUN, max_active_tis_per_dagrun=4,
            map_index_template=NODE_LABEL,
            doc_md=step_doc("db.stop-daemons",
                            "Stops vpsAdmind on every node: 1.22 watches the MyISAM UPDATE_TIME of "
                            "`transactions`, which the InnoDB conversion takes away."),
        ).expand(node=inventory.output)
        innodb = InnoDbOperator(
            task_id="innodb", step="db.innodb", inventory=INVENTORY, dry_run=DRY_RUN,
            doc_md=step_doc("db.innodb",
                            "`log`, `node_pubkey` and `transactions` to InnoDB, only those still on "
                            "another engine; refuses while any vpsAdmind runs."),
        )
        encoding_doc = ("Encoding fix of members, members_changes, sysconfig and vps: probe, latin1 "
                        "dump (kept), utf8 reload into a scratch database with a row-by-row proof, "
                        "approval, then an atomic swap. Differs from the runbook, which drops the "
                        "tables before it knows the reload works.")
        encoding_probe = EncodingProbeOperator(
            task_id="encoding_probe", settings=SETTINGS, step="db.encoding", dry_run=DRY_RUN,
            doc_md=step_doc("db.encoding", encoding_doc + " This task counts double-encoded rows; "
                            "with none (or in plan mode) the rest of the fix is skipped."),
        )
        encoding_dump = MysqlDumpOperator(
            task_id="encoding_dump", settings=SETTINGS, mode="latin1", label="encoding-latin1",
            tables=ENCODING_TABLES, step="db.encoding", dry_run=DRY_RUN,
            doc_md=step_doc("db.encoding", encoding_doc + " This task writes the latin1 dump."),
        )
        encoding_reload = EncodingReloadOperator(
            task_id="encoding_reload", settings=SETTINGS, step="db.encoding",
            dump="{{ ti.xcom_pull(task_ids='database.encoding_dump') }}",
            known_names="{{ params.encoding_known_names }}",
            doc_md=step_doc("db.encoding", encoding_doc + " This task reloads and verifies."),
        )
        approve_encoding = GateOperator(
            task_id="approve_encoding_swap",
            subject="Replace members, members_changes, sysconfig and vps with their UTF-8 repair?",
            body="The repaired copies were verified row by row:\n\n"
                 "```\n{{ ti.xcom_pull(task_ids='database.encoding_reload') }}\n```\n\n"
                 "**Approve** swaps them in and drops the originals (the latin1 dump stays as their "
                 "backup). **Reject** leaves every table untouched and stops the run here (the "
                 "scratch copy stays for inspection; the next run replaces it).",
            ignore_downstream_trigger_rules=True,
            doc_md=step_doc("db.encoding", encoding_doc + " This is the approval gate before the drop."),
        )
        encoding_swap = EncodingSwapOperator(
            task_id="encoding_swap", settings=SETTINGS, step="db.encoding",
            reload="{{ ti.xcom_pull(task_ids='database.encoding_reload') }}",
            doc_md=step_doc("db.encoding", encoding_doc + " This task swaps and drops."),
        )
        timezones = TimezonesOperator(
            task_id="timezones", settings=SETTINGS, step="db.timezones", dry_run=DRY_RUN,
            trigger_rule="none_failed",
            doc_md=step_doc("db.timezones",
                            "`mysql_tzinfo_to_sql /usr/share/zoneinfo | mysql mysql` on the DB host "
                            "when the tables are empty; checks CONVERT_TZ('Europe/Prague' -> 'UTC')."),
        )
        database_report = SectionReportOperator(
            task_id="report", section="Database",
            task_ids=["database.remove_stray_vps", "database.vps_ip_null", "database.free_orphan_ips",
                      "database.stop_daemons", "database.innodb", "database.encoding_probe",
                      "database.encoding_swap", "database.timezones"],
        )
        stray >> ip_null >> orphans >> stop_daemons >> innodb >> encoding_probe
        encoding_probe >> encoding_dump >> encoding_reload >> approve_encoding >> encoding_swap
        encoding_swap >> timezones >> database_report

    preflight >> prerequisites >> database
