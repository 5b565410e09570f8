"""
### vpsAdmin v1.22 -> v2.0 upgrade

The upgrade runbook of vpsAdmin 2.0 as a DAG, one task per step, grouped by the runbook's
sections. Trigger it in plan mode first (`dry_run`, the default): every probe runs, every
change is only logged, and each section ends with a report of what would change. A real run
(`dry_run = false`) backs up the whole database before its first change and stops at an
approval gate before anything is dropped.

Sections: Preflight (parameters, inventory from `servers`, the full backup), Prerequisites,
Database, API (migrations up to 20150630072821 with an approval-gated restore if they fail,
the tables the runbook populates by hand), Nodes, Storage (backups into the tree/branch
layout), NAS, Web, Cluster (mail templates, IP owners, cluster resources, environment
configs, sharenfs) and Finalize (final migrations, NAS remount, integrity check, scheduler,
cron, downloads). Once the database is past the pinned migration, a run skips the v1.22
sections, so a second run of the whole DAG only confirms the v2.0 world.

Connections: `vpsadmin_db` (the vpsAdmin MySQL database), `vpsadmin_ssh` (SSH credentials;
its host is the API/web host, the nodes' addresses come from `servers.server_ip4`; host keys
checked against its `known_hosts` extra), `vpsadmin_api` (where the 2.0 API listens and an
admin's credentials).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Param, TaskGroup

from airlift.steps import step_doc
from operators.resources import ClusterResourcesOperator, EnvironmentConfigsOperator
from operators.steps import (
    GateOperator,
    NodeScriptOperator,
    NodeStepOperator,
    SectionReportOperator,
    SqlStepOperator,
)
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
from operators.vpsadmin_v2 import (
    PINNED_VERSION,
    CrontabReplaceOperator,
    DatabaseRestoreOperator,
    DefaultResourcesOperator,
    EnvironmentsOperator,
    IntegrityCheckOperator,
    MailTemplatesOperator,
    NasRemountOperator,
    NasUmountOperator,
    PoolInventoryOperator,
    RakeMigrateOperator,
    RegisterBackupsOperator,
    RenamePrivateOperator,
    RestoreGateOperator,
    ServersOperator,
    SharenfsOperator,
    StartApiOperator,
    SysconfigOperator,
    UpgradePhaseOperator,
    VpsadmindConfigOperator,
    WebConfigOperator,
    WebMountsOperator,
)
from sensors.transaction_queue import TransactionChainSensor, TransactionQueueSensor
from vpsadmin.encoding import TABLES as ENCODING_TABLES

DRY_RUN = "{{ params.dry_run }}"
NODE_LABEL = "{{ task.node['server_name'] }}"  # mapped per-node tasks are labelled by node
SETTINGS = "{{ ti.xcom_pull(task_ids='preflight.check_params') }}"
INVENTORY = "{{ ti.xcom_pull(task_ids='preflight.inventory') }}"
POOL_LABEL = "{{ task.node['server_name'] }}:{{ task.node['filesystem'] }}"
# The API/web host as a node dict for the one-host steps.
API_NODE = "{{ {'server_name': 'api', 'address': ti.xcom_pull(task_ids='preflight.check_params')['api_host']} }}"
WEB_NODE = ("{{ {'server_name': 'web', 'address': ti.xcom_pull(task_ids='preflight.check_params')['api_host'], "
            "'web_root': params.web_root} }}")

def git_update(path: str) -> tuple[str, str]:
    """(check, apply) of a runbook `git pull` + dependency install in a checkout."""
    # ls-remote reads the remote without moving origin/* (plan mode changes nothing)
    check = (f"cd {path} && test \"$(git rev-parse HEAD)\" = \"$(git ls-remote origin HEAD | cut -f1)\" "
             "&& bundle check >/dev/null")
    return check, f"cd {path} && git pull && bundler install"


DEFAULT_RESOURCES = {
    "Vps": {"memory": 4096, "swap": 0, "cpu": 8, "diskspace": 61440, "ipv4": 1, "ipv6": 32},
    "User": {"memory": 4096, "swap": 0, "cpu": 8, "diskspace": 61440, "ipv4": 1, "ipv6": 32},
}
ENVIRONMENTS = [
    {"label": "Production", "domain": "vpsfree.cz", "user_ip_ownership": True, "can_create_vps": False,
     "can_destroy_vps": False, "vps_lifetime": 0, "max_vps_count": 1, "nodes": ["vpsadmin", "node1", "node2"]},
    {"label": "Storage", "domain": "storage.vpsfree.cz", "nodes": ["storage1", "backup1"],
     "default_resources": {"Vps": {"cpu": 1, "memory": 1024}}},
]

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
        "environments": Param(ENVIRONMENTS, type="array", items={"type": "object"}, title="Environments",
                              description="The environments wanted after the upgrade (matched by label) and "
                                          "the nodes in each; every node must be in one. Keys: label, domain, "
                                          "user_ip_ownership, can_create_vps, can_destroy_vps, vps_lifetime, "
                                          "max_vps_count, nodes, default_resources (overrides)."),
        "default_resources": Param(DEFAULT_RESOURCES, type="object", title="Default object resources",
                                   description="default_object_cluster_resources of Vps and User, every resource."),
        "snapshot_download_base_url": Param("https://vpsadmin.vpsfree.cz/download", type="string",
                                            title="Snapshot download URL", description="sysconfig "
                                            "snapshot_download_base_url; where the download mountpoint is served."),
        "members_expiration": Param(False, type="boolean", title="Expiration = paid until",
                                    description="The runbook's optional step: members without an expiration "
                                                "date get paid_until."),
        "private_dataset_name": Param("private-data", type="string", title="New name of datasets named private",
                                      description="`private` is reserved in 2.0; such datasets get this name."),
        "backup_timezone": Param("Europe/Prague", type="string", title="Backup snapshot time zone",
                                 description="The zone vpsAdmind 1.22 named backup snapshots in (the nodes' "
                                             "local time)."),
        "resource_minimums": Param({"default": {"memory": 4096, "swap": 0, "cpu": 8, "diskspace": 61440,
                                                "ipv4": 1, "ipv6": 32}}, type="object",
                                   title="Minimum user resources",
                                   description='{"default": {...}, "<environment label>": {...}}: the least '
                                               "every user gets per environment."),
        "playground_environments": Param([], type="array", items={"type": "string"},
                                         title="Playground environments",
                                         description="Environment labels where users with m_playground_enable "
                                                     "may not create VPSes."),
        "sharenfs_subnets": Param([], type="array", items={"type": "string"}, title="NFS subnets",
                                  description="Networks every pool's sharenfs allows; empty: the /24 of every "
                                              "server's address."),
        "web_root": Param("/var/www/vpsadmin", type="string", title="Web interface checkout"),
        "production_environment": Param("Production", type="string", title="Production environment",
                                        description="Label of ENV_VPS_PRODUCTION_ID in config.php."),
        "api_url": Param("", type="string", title="API URL for the web interface",
                         description="API_URL in config.php; empty: the address of connection vpsadmin_api."),
        "mount_proxy_dir": Param("/srv/vpsadmin/mounts", type="string", title="Mount proxy directory",
                                 description="Where the web server mounts vpsadmin/mount of every pool."),
        "download_mountpoint": Param("/srv/vpsadmin/download", type="string", title="Download mountpoint",
                                     description="Where the download datasets of all pools are mounted."),
        "integrity_allow_high": Param(False, type="boolean", title="Continue on integrity problems",
                                      description="Finish the run even if the integrity check finds "
                                                  "high-severity false facts."),
    },
) as dag:
    with TaskGroup("preflight", tooltip="parameters, inventory, full backup") as preflight:
        check_params = PreflightOperator(
            task_id="check_params", retries=0,
            api_host="{{ params.api_host }}", db_host="{{ params.db_host }}",
            backup_dir="{{ params.backup_dir }}", skip_nodes="{{ params.skip_nodes }}",
            upgrade={key: "{{ params." + key + " }}" for key in (
                "environments", "default_resources", "snapshot_download_base_url", "private_dataset_name",
                "backup_timezone", "playground_environments", "sharenfs_subnets", "web_root",
                "production_environment", "mount_proxy_dir", "download_mountpoint", "api_url")},
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
        phase = UpgradePhaseOperator(
            task_id="upgrade_phase", v122_prefixes=("prerequisites.", "database.", "api.shutdown"),
            doc_md="Once the database is past migration 20150630072821 the v1.22 sections are done: "
                   "their tasks (and the API shutdown) are skipped, so a later run does not stop the "
                   "2.0 daemons or touch the v1.22 tables again.",
        )
        check_params >> inventory >> backup >> phase

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


    with TaskGroup("api", tooltip="runbook: Upgrading the API") as api:
        shutdown = NodeStepOperator.partial(
            task_id="shutdown", step="api.shutdown", dry_run=DRY_RUN, map_index_template=NODE_LABEL,
            check="for s in vpsadmind vpsadmin-api vpsadmin-console; do test -x /etc/init.d/$s || continue; "
                  "service $s status >/dev/null 2>&1; test $? -eq 3 || exit 1; done",
            apply="for s in vpsadmind vpsadmin-api vpsadmin-console; do test -x /etc/init.d/$s || continue; "
                  "service $s status >/dev/null 2>&1 && service $s stop; done; true",
            doc_md=step_doc("api.shutdown", "Stops the API, vpsAdmind and the console router wherever "
                            "they run (all daemons are already down after the Database section)."),
        ).expand(node=inventory.output)
        haveapi_check, haveapi_apply = git_update("/opt/haveapi")
        update_haveapi = NodeStepOperator(
            task_id="update_haveapi", step="api.update-haveapi", node=API_NODE, dry_run=DRY_RUN,
            check=haveapi_check, apply=haveapi_apply, trigger_rule="none_failed",  # shutdown: skipped once migrated
            doc_md=step_doc("api.update-haveapi", "`git pull` in /opt/haveapi (and its bundle)."),
        )
        api_check, api_apply = git_update("/opt/vpsadminapi")
        update_api = NodeStepOperator(
            task_id="update_api", step="api.update-api", node=API_NODE, dry_run=DRY_RUN,
            check=api_check, apply=api_apply,
            doc_md=step_doc("api.update-api", "`git pull` in /opt/vpsadminapi and `bundler install`."),
        )
        migrate_pinned = RakeMigrateOperator(
            task_id="migrate_pinned", settings=SETTINGS, version=PINNED_VERSION, step="api.migrate-pinned",
            dry_run=DRY_RUN, retries=0, execution_timeout=timedelta(hours=6),
            doc_md=step_doc("api.migrate-pinned",
                            f"`rake db:migrate VERSION={PINNED_VERSION}` on the API host. Stray VPSes and "
                            "missing timezone tables (both handled in the Database section) make it fail; a "
                            "failure is not retried: the next two tasks offer the restore."),
        )
        approve_restore = RestoreGateOperator(
            task_id="approve_restore", migrate_task_id="api.migrate_pinned",
            subject="The migration failed: restore the pre-upgrade backup?",
            body="`rake db:migrate` failed and left the schema half migrated (MySQL DDL is not "
                 "transactional). **Approve** drops every table of the database and loads the verified "
                 "backup of this run's preflight section:\n\n```\n"
                 "{{ ti.xcom_pull(task_ids='preflight.backup_database') }}\n```\n\n"
                 "Then fix the cause (see the log of api.migrate_pinned) and trigger the DAG again. "
                 "**Reject** leaves the database as the migration left it.",
            doc_md=step_doc("api.migrate-pinned", "Approval before restoring the backup after a failed migration."),
        )
        restore = DatabaseRestoreOperator(
            task_id="restore_database", settings=SETTINGS, step="api.migrate-pinned",
            dump="{{ ti.xcom_pull(task_ids='preflight.backup_database') }}",
            doc_md=step_doc("api.migrate-pinned", "Restores the preflight backup (checksum checked first)."),
        )
        envs = EnvironmentsOperator(
            task_id="environments", environments="{{ params.environments }}", step="api.environments",
            dry_run=DRY_RUN,
            doc_md=step_doc("api.environments",
                            "The environments of the `environments` param, matched by label with the one "
                            "'Production' the add_storage migration left (it replaced all others); "
                            "user_ip_ownership and the VPS limits are set explicitly (the migrations default "
                            "them to 0)."),
        )
        servers = ServersOperator(
            task_id="servers", environments="{{ params.environments }}", step="api.servers", dry_run=DRY_RUN,
            doc_md=step_doc("api.servers", "Every server in its environment (the migration left "
                            "environment_id 0) and named without its location domain "
                            "(SUBSTRING_INDEX(server_name, '.', 1)); ve_private from 1.22's `%veid%` to 2.0's "
                            "`%{veid}` placeholder (the runbook misses it: vpsAdmind 2.0 would look for "
                            "/vz/private/%veid%)."),
        )
        sysconfig = SysconfigOperator(
            task_id="sysconfig", name="snapshot_download_base_url", value="{{ params.snapshot_download_base_url }}",
            step="api.sysconfig", dry_run=DRY_RUN,
            doc_md=step_doc("api.sysconfig", "sysconfig snapshot_download_base_url, JSON-encoded as 2.0 reads it."),
        )
        default_resources = DefaultResourcesOperator(
            task_id="default_resources", environments="{{ params.environments }}",
            default_resources="{{ params.default_resources }}", step="api.default-resources", dry_run=DRY_RUN,
            doc_md=step_doc("api.default-resources", "default_object_cluster_resources: class Vps and User, "
                            "every environment, every cluster resource."),
        )
        expiration = SqlStepOperator(
            task_id="members_expiration", sql_file="members_expiration.sql", step="api.members-expiration",
            dry_run=DRY_RUN, enabled="{{ params.members_expiration }}",
            doc_md=step_doc("api.members-expiration", "Optional (param members_expiration): expiration_date = "
                            "paid_until, only where no expiration is set yet."),
        )
        confirmed = SqlStepOperator(
            task_id="vps_confirmed", sql_file="vps_confirmed.sql", step="api.vps-confirmed", dry_run=DRY_RUN,
            doc_md=step_doc("api.vps-confirmed", "Migrated VPSes (confirm_create) become confirmed."),
        )
        start_api = StartApiOperator(
            task_id="start_api", settings=SETTINGS, step="api.start", dry_run=DRY_RUN,
            doc_md=step_doc("api.start", "`thin ... start` in /opt/vpsadminapi on the API host, at the address "
                            "of connection vpsadmin_api, then waits until GET /v1/ answers."),
        )
        api_report = SectionReportOperator(
            task_id="report", section="API",
            task_ids=[f"api.{t}" for t in ("shutdown", "update_haveapi", "update_api", "migrate_pinned",
                                           "environments", "servers", "sysconfig", "default_resources",
                                           "members_expiration", "vps_confirmed", "start_api")],
        )
        shutdown >> update_haveapi >> update_api >> migrate_pinned >> approve_restore >> restore
        migrate_pinned >> envs >> servers >> default_resources >> [sysconfig, expiration, confirmed] >> start_api
        start_api >> api_report

    with TaskGroup("nodes", tooltip="runbook: Upgrading nodes, Pools") as nodes_group:
        pools = PoolInventoryOperator(task_id="pools", skip_nodes="{{ params.skip_nodes }}",
                                      doc_md="Every storage pool (v2.0 `pools`) with its node.")
        vpsadmind_check, vpsadmind_apply = git_update("/opt/vpsadmind")
        update_vpsadmind = NodeStepOperator.partial(
            task_id="update_vpsadmind", step="nodes.vpsadmind", check=vpsadmind_check, apply=vpsadmind_apply,
            dry_run=DRY_RUN, map_index_template=NODE_LABEL, max_active_tis_per_dagrun=4,
            doc_md=step_doc("nodes.vpsadmind", "`git pull` + `bundler install` in /opt/vpsadmind; the 2.0 "
                            "executable is bin/vpsadmind."),
        ).expand(node=inventory.output)
        ctl_check, ctl_apply = git_update("/opt/vpsadmindctl")
        update_vpsadmindctl = NodeStepOperator.partial(
            task_id="update_vpsadmindctl", step="nodes.vpsadmindctl", check=ctl_check, apply=ctl_apply,
            dry_run=DRY_RUN, map_index_template=NODE_LABEL, max_active_tis_per_dagrun=4,
            doc_md=step_doc("nodes.vpsadmindctl", "`git pull` + `bundler install` in /opt/vpsadmindctl."),
        ).expand(node=inventory.output)
        mounts_dir = NodeStepOperator.partial(
            task_id="mounts_dir", step="nodes.mounts-dir", check="test -d /var/vpsadmin/mounts",
            apply="mkdir -p /var/vpsadmin/mounts", dry_run=DRY_RUN, map_index_template=NODE_LABEL,
            doc_md=step_doc("nodes.mounts-dir", "`mkdir -p /var/vpsadmin/mounts` (2.0's mounts_dir)."),
        ).expand(node=inventory.output)
        daemon_config = VpsadmindConfigOperator.partial(
            task_id="vpsadmind_config", step="nodes.vpsadmind-config", dry_run=DRY_RUN,
            map_index_template=NODE_LABEL,
            doc_md=step_doc("nodes.vpsadmind-config",
                            "The runbook says only \"FIXME: revise /etc/vpsadmin/vpsadmind.yml\". 2.0 reads "
                            ":queues and :mounts_dir and no longer :threads, :handlers, :backuper: those are "
                            "replaced (1.22's thread count sizes the general queue); the 1.22 file is kept "
                            "as vpsadmind.yml.v1.22."),
        ).expand(node=inventory.output)
        start_daemons = NodeStepOperator.partial(
            task_id="start_vpsadmind", step="nodes.reinit-fw",
            check="service vpsadmind status >/dev/null 2>&1 && vpsadmindctl ping >/dev/null 2>&1",
            apply="service vpsadmind status >/dev/null 2>&1 || service vpsadmind start; "
                  "for i in $(seq 60); do vpsadmindctl ping >/dev/null 2>&1 && exit 0; sleep 1; done; "
                  "vpsadmindctl ping",
            dry_run=DRY_RUN, map_index_template=NODE_LABEL,
            doc_md="Starts vpsAdmind 2.0 (stopped since the Database section) and waits until "
                   "`vpsadmindctl ping` answers: `reinit fw` talks to it, and the NAS remount needs it. "
                   "Not a runbook line of its own.",
        ).expand(node=inventory.output)
        reinit_fw = NodeStepOperator.partial(
            task_id="reinit_fw", step="nodes.reinit-fw", check="test -e /var/vpsadmin/.fw-reinit-v2",
            apply="vpsadmindctl reinit fw && touch /var/vpsadmin/.fw-reinit-v2", dry_run=DRY_RUN,
            map_index_template=NODE_LABEL,
            doc_md=step_doc("nodes.reinit-fw", "`vpsadmindctl reinit fw` once after the upgrade (a marker in "
                            "/var/vpsadmin says it was done): only rules of active addresses stay."),
        ).expand(node=inventory.output)
        pool_datasets = NodeStepOperator.partial(
            task_id="pool_datasets", step="nodes.pool-datasets", dry_run=DRY_RUN, map_index_template=POOL_LABEL,
            check="zfs list -H -o name {filesystem}/vpsadmin/mount {filesystem}/vpsadmin/download",
            apply="zfs create -p {filesystem}/vpsadmin/mount && zfs create -p {filesystem}/vpsadmin/download",
            doc_md=step_doc("nodes.pool-datasets", "`zfs create -p $POOL/vpsadmin/{mount,download}` on every pool."),
        ).expand(node=pools.output)
        nodes_report = SectionReportOperator(
            task_id="report", section="Nodes",
            task_ids=[f"nodes.{t}" for t in ("update_vpsadmind", "update_vpsadmindctl", "mounts_dir",
                                             "vpsadmind_config", "start_vpsadmind", "reinit_fw", "pool_datasets")],
        )
        [update_vpsadmind, update_vpsadmindctl] >> mounts_dir >> daemon_config >> start_daemons >> reinit_fw
        pools >> pool_datasets
        [reinit_fw, pool_datasets] >> nodes_report

    with TaskGroup("storage", tooltip="runbook: Storage nodes, Backups") as storage:
        storage_pools = PoolInventoryOperator(task_id="storage_pools", roles=("primary", "backup"),
                                              skip_nodes="{{ params.skip_nodes }}",
                                              doc_md="The NAS (primary) and backup pools.")
        backup_pools = PoolInventoryOperator(task_id="backup_pools", roles=("backup",),
                                             skip_nodes="{{ params.skip_nodes }}", doc_md="The backup pools.")
        rename_private = RenamePrivateOperator.partial(
            task_id="rename_private", step="storage.rename-private", new_name="{{ params.private_dataset_name }}",
            dry_run=DRY_RUN, map_index_template=POOL_LABEL,
            doc_md=step_doc("storage.rename-private", "Datasets named `private` (reserved in 2.0) get the name "
                            "of param private_dataset_name, in ZFS and in `datasets` (name and full_name)."),
        ).expand(node=storage_pools.output)
        rename_snapshots = NodeScriptOperator.partial(
            task_id="rename_backup_snapshots", step="storage.backup-snapshots-rename",
            script="rename_backup_snapshots.sh", args=["{filesystem}"], dry_run=DRY_RUN,
            map_index_template=POOL_LABEL,
            doc_md=step_doc("storage.backup-snapshots-rename",
                            "`@backup-<ts>` -> `@<ts>` on every backup pool (include/scripts/"
                            "rename_backup_snapshots.sh). The published script tests with `[ =~ ]` and exits "
                            "at the first snapshot; this one checks every name first and renames only the "
                            "snapshot part."),
        ).expand(node=backup_pools.output)
        rearrange = NodeScriptOperator.partial(
            task_id="rearrange_backup_datasets", step="storage.backup-datasets-rearrange",
            script="rearrange_backup_datasets.sh", args=["{filesystem}"], dry_run=DRY_RUN,
            map_index_template=POOL_LABEL,
            doc_md=step_doc("storage.backup-datasets-rearrange",
                            "`<pool>/<vps>` -> `<pool>/<vps>/tree.0/branch-<oldest>.0` (include/scripts/"
                            "rearrange_backup_datasets.sh; the runbook links a script that was never published)."),
        ).expand(node=backup_pools.output)
        register_doc = ("Registers the old backups as trees, branches, snapshots and snapshot_in_pools "
                        "exactly once, in the backup pool found in the database (the published Ruby scripts "
                        "hard-code BACKUP_POOL = 14 and are two near-duplicates, one naming branches "
                        "`branch-branch-…`; this runs once, before the final migration drops vps_backups), "
                        "after checking every snapshot exists in ZFS.")
        register_backups = RegisterBackupsOperator(
            task_id="register_backups", timezone="{{ params.backup_timezone }}",
            step="storage.backup-snapshots-db", dry_run=DRY_RUN,
            doc_md=step_doc("storage.backup-snapshots-db", register_doc) + "Runbook step: backups.to-snapshots\n",
        )
        storage_report = SectionReportOperator(
            task_id="report", section="Storage",
            task_ids=[f"storage.{t}" for t in ("rename_private", "rename_backup_snapshots",
                                               "rearrange_backup_datasets", "register_backups")],
        )
        storage_pools >> rename_private
        backup_pools >> rename_snapshots >> rearrange >> register_backups
        [rename_private, register_backups] >> storage_report

    with TaskGroup("nas", tooltip="runbook: NAS") as nas:
        nas_pools = PoolInventoryOperator(task_id="nas_pools", roles=("primary",),
                                          skip_nodes="{{ params.skip_nodes }}", doc_md="The NAS (primary) pools.")
        nas_umount = NasUmountOperator.partial(
            task_id="umount", step="nas.umount", dry_run=DRY_RUN, map_index_template=NODE_LABEL,
            nas_pools=nas_pools.output,
            doc_md=step_doc("nas.umount", "`umount -f` of every mount of the node's VPSes that is mounted "
                            "(the runbook's script, without needing Ruby on the node), while some NAS data "
                            "is still to move: once it is in private/, a later run leaves the mounts alone."),
        ).expand(node=inventory.output)
        move_data = NodeScriptOperator.partial(
            task_id="move_data", step="nas.move-data", script="nas_move_data.sh", args=["{filesystem}"],
            dry_run=DRY_RUN, map_index_template=POOL_LABEL, timeout=6 * 3600,
            doc_md=step_doc("nas.move-data",
                            "All data of every NAS dataset into `private/` (include/scripts/nas_move_data.sh): "
                            "hidden files too (the published scripts leave them), names with spaces or "
                            "newlines, child datasets and vpsadmin/ left in place, every file's checksum "
                            "compared after the move."),
        ).expand(node=nas_pools.output)
        nas_report = SectionReportOperator(task_id="report", section="NAS",
                                           task_ids=["nas.umount", "nas.move_data"])
        nas_pools >> nas_umount >> move_data >> nas_report

    with TaskGroup("web", tooltip="runbook: Upgrading the web interface") as web:
        web_update = NodeStepOperator(
            task_id="update", step="web.update", node=WEB_NODE, dry_run=DRY_RUN,
            check="cd {web_root} && test \"$(git rev-parse HEAD)\" = \"$(git ls-remote origin HEAD | cut -f1)\" "
                  "&& test -e vendor/autoload.php",
            apply="cd {web_root} && git pull && php composer.phar install",
            doc_md=step_doc("web.update", "`git pull` and `php composer.phar install` in the web interface."),
        )
        web_config = WebConfigOperator(
            task_id="config", step="web.config", node=API_NODE, dry_run=DRY_RUN, api_url="{{ params.api_url }}",
            production_environment="{{ params.production_environment }}", web_root="{{ params.web_root }}",
            doc_md=step_doc("web.config", "API_URL and ENV_VPS_PRODUCTION_ID in config.php (replaced in place "
                            "when present; the 1.22 file is kept as config.php.v1.22)."),
        )
        download_proxy = WebMountsOperator(
            task_id="download_proxy", step="web.download-proxy", settings=SETTINGS, subdataset="mount",
            mountpoint="{{ params.mount_proxy_dir }}", pools=pools.output, dry_run=DRY_RUN,
            doc_md=step_doc("web.download-proxy", "vpsadmin/mount of every pool NFS-mounted on the web server "
                            "under mount_proxy_dir/<pool id> (and in its /etc/fstab)."),
        )
        web_report = SectionReportOperator(task_id="report", section="Web",
                                           task_ids=["web.update", "web.config", "web.download_proxy"])
        web_update >> web_config >> download_proxy >> web_report

    with TaskGroup("cluster", tooltip="runbook: Mail templates ... Ensure sharenfs") as cluster:
        mail_templates = MailTemplatesOperator(
            task_id="mail_templates", step="mail.templates", dry_run=DRY_RUN,
            doc_md=step_doc("mail.templates", "The templates the runbook lists plus vps_suspend, vps_resume and "
                            "expiration_vps_active, which 2.0 code sends (a missing template fails its chain); "
                            "existing templates are left alone. vps_config_change is unused by 2.0.0 code "
                            "but created as listed."),
        )
        ip_owners = SqlStepOperator(
            task_id="ip_owners", sql_file="ip_owners.sql", step="ip.owners", dry_run=DRY_RUN,
            doc_md=step_doc("ip.owners", "Used addresses in environments with user_ip_ownership belong to the "
                            "VPS owner (the runbook's UPDATE, only rows that differ)."),
        )
        resources = ClusterResourcesOperator(task_id="cluster_resources", dry_run=DRY_RUN,
                                             minimums="{{ params.resource_minimums }}")
        env_configs = EnvironmentConfigsOperator(task_id="environment_configs", dry_run=DRY_RUN,
                                                 playground_environments="{{ params.playground_environments }}")
        sharenfs = SharenfsOperator.partial(
            task_id="sharenfs", step="nodes.sharenfs", settings=SETTINGS, dry_run=DRY_RUN,
            map_index_template=POOL_LABEL,
            doc_md=step_doc("nodes.sharenfs", "sharenfs of every pool allows every node's subnet (param "
                            "sharenfs_subnets, else the /24 of every server), other options kept."),
        ).expand(node=pools.output)
        cluster_report = SectionReportOperator(
            task_id="report", section="Cluster",
            task_ids=[f"cluster.{t}" for t in ("mail_templates", "ip_owners", "cluster_resources",
                                               "environment_configs", "sharenfs")],
        )
        mail_templates >> ip_owners >> resources >> env_configs >> sharenfs >> cluster_report

    with TaskGroup("finalize", tooltip="runbook: Finalize migrations ... Archive downloads") as finalize:
        migrate_final = RakeMigrateOperator(
            task_id="migrate_final", settings=SETTINGS, step="api.migrate-final", dry_run=DRY_RUN, retries=0,
            execution_timeout=timedelta(hours=6),
            doc_md=step_doc("api.migrate-final", "The remaining migrations (`rake db:migrate`), after the old "
                            "backups are registered (20150715150147 drops vps_backups)."),
        )
        remount = NasRemountOperator(
            task_id="nas_remount", step="nas.remount", dry_run=DRY_RUN,
            doc_md=step_doc("nas.remount",
                            "The runbook's remount script as one transaction chain: per VPS (by node, id) "
                            "5301 Vps::Mounts, and 5302 Mount if it runs. Fired after the final migration: "
                            "2.0 code needs transactions.queue (research §8.8). Not fired twice: a chain "
                            "still open is waited for, and VPSes whose mount scripts are current are left out."),
        )
        remount_wait = TransactionChainSensor(
            task_id="nas_remount_wait",
            chain_id="{{ (ti.xcom_pull(task_ids='finalize.nas_remount') or {}).get('chain_id') }}",
            doc_md=step_doc("nas.remount", "Waits for the remount chain to finish; fails naming the failed "
                            "transactions."),
        )
        user_create = SqlStepOperator(
            task_id="nas_user_create", sql_file="nas_user_create.sql", step="known.nas-user-create",
            dry_run=DRY_RUN,
            doc_md=step_doc("known.nas-user-create", "Users may create NAS subdatasets: user_create = 1 on "
                            "their top-level NAS datasets (primary pools only, unlike the runbook's UPDATE)."),
        )
        integrity = IntegrityCheckOperator(
            task_id="integrity_check", step="integrity.check", dry_run=DRY_RUN,
            allow_high="{{ params.integrity_allow_high }}", execution_timeout=timedelta(hours=2),
            doc_md=step_doc("integrity.check", "POST integrity_check with storage and vps set (without them it "
                            "checks nothing), waits for it, logs broken objects and false facts, fails on a "
                            "false high-severity fact unless integrity_allow_high."),
        )
        scheduler = NodeStepOperator(
            task_id="scheduler", step="scheduler.start", node=API_NODE, dry_run=DRY_RUN,
            check="service vpsadmin-scheduler status >/dev/null 2>&1",
            apply="test -x /etc/init.d/vpsadmin-scheduler || printf '%s\\n' '#!/bin/sh' "
                  "'# vpsadmin-scheduler: repeatable tasks of the vpsAdmin API (cron based)' "
                  "'exec /opt/vpsadminapi/bin/vpsadmin-scheduler \"$@\"' > /etc/init.d/vpsadmin-scheduler "
                  "&& chmod 755 /etc/init.d/vpsadmin-scheduler; service vpsadmin-scheduler start",
            doc_md=step_doc("scheduler.start", "Installs an init script for /opt/vpsadminapi/bin/"
                            "vpsadmin-scheduler (the runbook leaves starting it to the administrator) and "
                            "starts it."),
        )
        cron = CrontabReplaceOperator(
            task_id="cron_replace", settings=SETTINGS, step="cron.replace", dry_run=DRY_RUN,
            doc_md=step_doc("cron.replace", "savetransfers.rb enabled again; backup.rb (scheduler), "
                            "cron_delete/cron_mailer (DAG vpsadmin_lifetimes), cron_nonpayers (deleted) and "
                            "daily_report.rb (DAG vpsadmin_daily_report) stay disabled, marked with what "
                            "replaces them."),
        )
        downloads = WebMountsOperator(
            task_id="download_mounter", step="downloads.mounter", settings=SETTINGS, subdataset="download",
            mountpoint="{{ params.download_mountpoint }}", pools=pools.output, dry_run=DRY_RUN,
            doc_md=step_doc("downloads.mounter", "What vpsadmin-download-mounter does: vpsadmin/download of "
                            "every pool NFS-mounted at download_mountpoint/<pool id> on the web server, "
                            "which serves it at snapshot_download_base_url."),
        )
        finalize_report = SectionReportOperator(
            task_id="report", section="Finalize",
            task_ids=[f"finalize.{t}" for t in ("migrate_final", "nas_remount", "nas_user_create",
                                                "integrity_check", "scheduler", "cron_replace", "download_mounter")],
        )
        migrate_final >> remount >> remount_wait >> user_create >> integrity
        integrity >> [scheduler, cron, downloads] >> finalize_report

    # Sections follow each other through their reports: the API section's restore branch is
    # skipped on success and must not hold back what follows.
    preflight >> prerequisites >> database >> api
    api_report >> nodes_group >> storage >> nas >> web >> cluster >> finalize
