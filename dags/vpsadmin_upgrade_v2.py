"""
### vpsAdmin v1.22 -> v2.0 upgrade

The upgrade runbook of vpsAdmin 2.0 as a DAG, one task per step, grouped by the runbook's
sections. Trigger it in plan mode first (`dry_run`, the default): every probe runs, every
change is only logged, and each section ends with a report of what would change. A real run
(`dry_run = false`) backs up the whole database before its first change and stops at an
approval gate before anything is dropped.

Groups: preflight (params, inventory, full backup), prereq, db, api (the pinned migration with
an approval-gated restore), nodes, storage, nas, web, cluster, finalize. Once the database is
past the pinned migration, a run skips the v1.22 sections: a second run only confirms the
v2.0 world. A group's code is `plugins/operators/vpsadmin_upgrade/<group>.py`; a task's step
id (`Runbook step:` in its doc) names its SQL (`include/sql/vpsadmin/<section>/<step>.sql`) or
script (`include/scripts/vpsadmin/...`), shown in the Rendered Template tab.

Connections: `vpsadmin_db` (the database), `vpsadmin_ssh` (SSH credentials; host: the API/web
host; nodes from `servers.server_ip4`; host keys from its `known_hosts` extra), `vpsadmin_api`
(where the 2.0 API listens, an admin's login; https with the certificate checked, against the
CA bundle in its `verify` extra if given; plain http only with schema `http`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Param, TaskGroup

from airlift.connections import VPSADMIN_DB, VPSADMIN_SSH
from airlift.params import HOST_OR_EMPTY, HOST_PATTERN, OPTIONAL_TEXT
from airlift.sql import template_searchpath
from operators.runbook_step import (
    ApprovalGateOperator,
    NodeScriptOperator,
    RunReportOperator,
    SectionReportOperator,
    SqlStepOperator,
)
from operators.vpsadmin_upgrade import api, cluster, db, finalize, nas, nodes, preflight, prereq, storage, web
from operators.vpsadmin_upgrade.common import (
    CrontabDisableOperator,
    MysqlDumpOperator,
    PoolInventoryOperator,
    WebMountsOperator,
)
from sensors.transaction_queue import OpenChainsSensor, TransactionChainSensor, TransactionQueueSensor
from vpsadmin.encoding import TABLES as ENCODING_TABLES
from vpsadmin.environments import DEFAULT_ENVIRONMENTS, DEFAULT_MINIMUMS, DEFAULT_RESOURCES

SKIP_NODES = "{{ params.skip_nodes }}"

with DAG(
    dag_id="vpsadmin_upgrade_v2",
    description="vpsAdmin v1.22 -> v2.0 cluster upgrade (runbook as a DAG)",
    doc_md=__doc__,
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    render_template_as_native_obj=True,
    template_searchpath=template_searchpath("vpsadmin"),
    tags=["vpsadmin", "upgrade", "runbook"],
    default_args={
        "retries": 2,
        # A hung step fails (and is retried) instead of holding a worker slot forever; long
        # steps set their own. Deferred waits are bounded by their trigger's timeout instead.
        "execution_timeout": timedelta(hours=2),
        "retry_delay": timedelta(seconds=20),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=5),
        "conn_id": VPSADMIN_DB,
        "ssh_conn_id": VPSADMIN_SSH,
    },
    params={
        "dry_run": Param(True, type="boolean", title="Plan mode", description="Probe and report; change nothing."),
        "api_host": Param("", type=OPTIONAL_TEXT, pattern=HOST_OR_EMPTY, title="API/web host",
                          description="SSH address of the API/web host; empty: the host of vpsadmin_ssh."),
        "db_host": Param("", type=OPTIONAL_TEXT, pattern=HOST_OR_EMPTY, title="DB host",
                         description="SSH address of the database server (dumps run there); empty: vpsadmin_db's."),
        "backup_dir": Param("/var/backups/vpsadmin", type="string", title="Backup directory",
                            description="Existing directory on the DB host for the dumps."),
        "keep_dumps": Param(5, type="integer", minimum=1, title="Dumps kept",
                            description="Of each kind (full backup, encoding dump), the newest this many stay."),
        "skip_nodes": Param([], type="array", items={"type": "string", "pattern": HOST_PATTERN}, title="Nodes to skip",
                            description="Server names (or short names) left out, e.g. dead nodes."),
        "encoding_known_names": Param({}, type="object", title="Known member names",
                                      description='{"<m_id>": "<name>"}: the encoding fix must read them back.'),
        "environments": Param(DEFAULT_ENVIRONMENTS, type="array", items={"type": "object"}, title="Environments",
                              description="Wanted environments (by label) and their servers, by v1.22 server_types "
                                          "or by name (nodes); see plugins/vpsadmin/environments.py."),
        "default_resources": Param(DEFAULT_RESOURCES, type="object", title="Default object resources",
                                   description="default_object_cluster_resources of Vps and User, every resource."),
        "snapshot_download_base_url": Param("https://vpsadmin.vpsfree.cz/download", type="string",
                                            title="Snapshot download URL (sysconfig)"),
        "members_expiration": Param(False, type="boolean", title="Expiration = paid until",
                                    description="The runbook's optional step, where no expiration is set."),
        "private_dataset_name": Param("private-data", type="string", title="New name of datasets named private",
                                      description="`private` is reserved in 2.0."),
        "backup_timezone": Param("Europe/Prague", type="string", title="Backup snapshot time zone",
                                 description="The zone vpsAdmind 1.22 named backup snapshots in."),
        "resource_minimums": Param({"default": DEFAULT_MINIMUMS}, type="object", title="Minimum user resources",
                                   description='{"default": {...}, "<environment label>": {...}}'),
        "playground_environments": Param([], type="array", items={"type": "string"},
                                         title="Playground environments", description="Environment labels where "
                                         "users with m_playground_enable may not create VPSes."),
        "sharenfs_subnets": Param([], type="array", items={"type": "string"}, title="NFS subnets",
                                  description="IPv4 networks (a.b.c.d/n, /16 or narrower) the pools' sharenfs allows "
                                              "read-write, exactly these; required for a real run."),
        "sharenfs_hypervisor_pools": Param(False, type="boolean", title="sharenfs on hypervisor pools",
                                           description="Share the hypervisors' pools too (every VPS's data); "
                                                       "off: only NAS and backup pools."),
        "web_root": Param("/var/www/vpsadmin", type="string", title="Web interface checkout"),
        "production_environment": Param("Production", type="string", title="ENV_VPS_PRODUCTION_ID's label"),
        "api_url": Param("", type=OPTIONAL_TEXT, title="API_URL in config.php",
                         description="Empty: the address of connection vpsadmin_api."),
        "mount_proxy_dir": Param("/srv/vpsadmin/mounts", type="string", title="Mount proxy directory",
                                 description="Where the web server mounts vpsadmin/mount of every pool."),
        "download_mountpoint": Param("/srv/vpsadmin/download", type="string", title="Download mountpoint",
                                     description="Where the download datasets of all pools are mounted."),
        "scheduled_dags": Param(True, type="boolean", title="Airflow schedules lifetimes and the report",
                                description="DAGs vpsadmin_lifetimes and vpsadmin_daily_report replace cron_delete, "
                                            "cron_mailer and daily_report.rb (unpaused at the end); off: the "
                                            "runbook's rake jobs go into the cluster crontab instead."),
        "integrity_allow_high": Param(False, type="boolean", title="Continue on integrity problems",
                                      description="Finish even if the integrity check finds high-severity facts."),
    },
) as dag:
    with TaskGroup("preflight", tooltip="parameters, inventory, full backup (not in the runbook)"):
        check_params = preflight.PreflightOperator(task_id="check_params", retries=0)
        settings, api_node = check_params.output, check_params.output["api_node"]
        inventory = preflight.InventoryOperator(task_id="inventory", skip_nodes=SKIP_NODES)
        backup = MysqlDumpOperator(
            step="db.backup", settings=settings, mode="full", label="before-v2-upgrade",
            keep_dumps="{{ params.keep_dumps }}", execution_timeout=timedelta(hours=6),
            doc_md="A full, consistent dump of the database on the DB host, verified (read back whole: gzip check, "
                   "completion trailer, every table of the database in it; sha256 in XCom) before the first change; "
                   "the runbook leaves it to the admin. Older ones beyond keep_dumps are deleted.")
        phase = preflight.UpgradePhaseOperator(task_id="upgrade_phase",
                                               v1_22_prefixes=("prereq.", "db.", "api.shutdown"))
        check_params >> inventory >> backup >> phase >> SectionReportOperator(section="Preflight")

    with TaskGroup("prereq", tooltip="runbook: Prerequisities, Nodes") as prereq_group:
        maintenance = SqlStepOperator(step="prereq.maintenance-mode")
        no_transactions = TransactionQueueSensor(step="prereq.no-transactions", settings=settings)
        install_nc = NodeScriptOperator.partial(step="prereq.install-nc",
                                                max_active_tis_per_dagrun=4).expand(node=inventory.output)
        disable_cron = CrontabDisableOperator(step="prereq.disable-cron", settings=settings)
        delete_mounts = prereq.BackupMountsDeleteOperator(step="prereq.delete-backup-mounts", settings=settings)
        wait_transactions = TransactionQueueSensor(step="prereq.wait-transactions", settings=settings,
                                                   queued_by=[delete_mounts.output])
        maintenance >> no_transactions >> [install_nc, disable_cron, delete_mounts]
        delete_mounts >> wait_transactions
        [install_nc, disable_cron, wait_transactions] >> SectionReportOperator(section="Prerequisites")

    with TaskGroup("db", tooltip="runbook: Database") as db_group:
        stray = SqlStepOperator(step="db.remove-stray-vps", doc_md="Deletes VPSes whose node is gone (they crash "
                                                                   "the add_storage migration).")
        ip_null = SqlStepOperator(step="db.vps-ip-null")
        orphans = SqlStepOperator(step="db.vps-ip-free-orphans")
        stop_daemons = NodeScriptOperator.partial(step="db.stop-daemons",
                                                  max_active_tis_per_dagrun=4).expand(node=inventory.output)
        innodb = db.InnoDbOperator(step="db.innodb", inventory=inventory.output)
        encoding_probe = db.EncodingProbeOperator(task_id="encoding_probe", step="db.encoding", settings=settings)
        encoding_dump = MysqlDumpOperator(
            task_id="encoding_dump", step="db.encoding", settings=settings, mode="latin1", label="encoding-latin1",
            tables=ENCODING_TABLES, keep_dumps="{{ params.keep_dumps }}",
            doc_md="The encoding fix's latin1 dump of the four tables (kept as their backup).")
        encoding_reload = db.EncodingReloadOperator(
            task_id="encoding_reload", step="db.encoding", settings=settings, dump=encoding_dump.output,
            known_names="{{ params.encoding_known_names }}")
        approve_swap = ApprovalGateOperator(
            task_id="approve_encoding_swap", step="db.encoding", plan=encoding_reload.output,
            subject="Replace members, members_changes, sysconfig and vps with their UTF-8 repair?",
            body="The repaired copies were verified row by row. **Approve** swaps them in and drops the "
                 "originals (the latin1 dump stays as their backup). **Reject** leaves every table untouched "
                 "and stops the run here (the scratch copy stays for inspection; the next run replaces it).",
            ignore_downstream_trigger_rules=True, doc_md="The encoding fix's approval gate before the drop.")
        encoding_swap = db.EncodingSwapOperator(task_id="encoding_swap", step="db.encoding", settings=settings,
                                                reload=encoding_reload.output)
        timezones = db.TimezonesOperator(step="db.timezones", settings=settings, trigger_rule="none_failed")
        stray >> ip_null >> orphans >> stop_daemons >> innodb >> encoding_probe >> encoding_dump
        encoding_dump >> encoding_reload >> approve_swap >> encoding_swap >> timezones
        timezones >> SectionReportOperator(section="Database")

    with TaskGroup("api", tooltip="runbook: Upgrading the API") as api_group:
        shutdown = NodeScriptOperator.partial(step="api.shutdown").expand(node=inventory.output)
        update_haveapi = NodeScriptOperator(step="api.update-haveapi", node=api_node, script="git-pull.sh",
                                            args=["/opt/haveapi", "bundler"],
                                            trigger_rule="none_failed")  # shutdown: skipped once migrated
        update_api = NodeScriptOperator(step="api.update-api", node=api_node, script="git-pull.sh",
                                        args=["/opt/vpsadminapi", "bundler"])
        pinned_backup, migrate_pinned, _ = api.migration_with_restore(
            step="api.migrate-pinned", settings=settings, version=preflight.PINNED_VERSION,
            label="before-migrate-pinned", keep_dumps="{{ params.keep_dumps }}",
            doc_md=f"`rake db:migrate VERSION={preflight.PINNED_VERSION}` on the API host (stray VPSes and empty "
                   "time zone tables make it fail). A retry attaches to the rake already running; a rake that "
                   "failed is not run again: the next two tasks offer the restore of the dump before it.")
        envs = api.EnvironmentsOperator(step="api.environments", environments="{{ params.environments }}")
        servers = api.ServersOperator(step="api.servers", environments="{{ params.environments }}")
        sysconfig = api.SysconfigOperator(step="api.sysconfig", name="snapshot_download_base_url",
                                          value="{{ params.snapshot_download_base_url }}")
        default_resources = api.DefaultResourcesOperator(step="api.default-resources",
                                                         environments="{{ params.environments }}",
                                                         default_resources="{{ params.default_resources }}")
        expiration = SqlStepOperator(step="api.members-expiration", enabled="{{ params.members_expiration }}")
        confirmed = SqlStepOperator(step="api.vps-confirmed")
        start_api = api.StartApiOperator(step="api.start", settings=settings)
        shutdown >> update_haveapi >> update_api >> pinned_backup
        migrate_pinned >> envs >> servers >> default_resources >> [sysconfig, expiration, confirmed] >> start_api
        api_report = start_api >> SectionReportOperator(section="API")

    with TaskGroup("nodes", tooltip="runbook: Upgrading nodes, Pools, Ensure sharenfs") as nodes_group:
        pools = PoolInventoryOperator(task_id="pools", skip_nodes=SKIP_NODES)
        update_vpsadmind = NodeScriptOperator.partial(
            task_id="update_vpsadmind", step="nodes.vpsadmind", script="git-pull.sh",
            args=["/opt/vpsadmind", "bundler"], max_active_tis_per_dagrun=4).expand(node=inventory.output)
        update_ctl = NodeScriptOperator.partial(
            task_id="update_vpsadmindctl", step="nodes.vpsadmindctl", script="git-pull.sh",
            args=["/opt/vpsadmindctl", "bundler"], max_active_tis_per_dagrun=4).expand(node=inventory.output)
        mounts_dir = NodeScriptOperator.partial(step="nodes.mounts-dir").expand(node=inventory.output)
        daemon_config = nodes.VpsadmindConfigOperator.partial(step="nodes.vpsadmind-config").expand(
            node=inventory.output)
        start_daemons = NodeScriptOperator.partial(
            task_id="start_vpsadmind", script="nodes/start-vpsadmind.sh",
            doc_md="Starts vpsAdmind 2.0 and waits until `vpsadmindctl ping` answers (`reinit fw` and the NAS "
                   "remount need it). Not a runbook line of its own.").expand(node=inventory.output)
        reinit_fw = NodeScriptOperator.partial(step="nodes.reinit-fw").expand(node=inventory.output)
        pool_datasets = NodeScriptOperator.partial(step="nodes.pool-datasets", args=["{filesystem}"]).expand(
            node=pools.output)
        sharenfs = nodes.SharenfsOperator.partial(step="nodes.sharenfs", settings=settings).expand(node=pools.output)
        [update_vpsadmind, update_ctl] >> mounts_dir >> daemon_config >> start_daemons >> reinit_fw
        pools >> pool_datasets >> sharenfs
        [reinit_fw, sharenfs] >> SectionReportOperator(section="Nodes")

    with TaskGroup("storage", tooltip="runbook: Storage nodes, Backups") as storage_group:
        storage_pools = PoolInventoryOperator(task_id="storage_pools", roles=("primary", "backup"),
                                              skip_nodes=SKIP_NODES)
        backup_pools = PoolInventoryOperator(task_id="backup_pools", roles=("backup",), skip_nodes=SKIP_NODES)
        rename_private = storage.RenamePrivateOperator.partial(
            step="storage.rename-private", new_name="{{ params.private_dataset_name }}").expand(
            node=storage_pools.output)
        rename_snapshots = NodeScriptOperator.partial(
            step="storage.backup-snapshots-rename", args=["{filesystem}"],
            doc_md="`@backup-<ts>` -> `@<ts>` on every backup pool. The published script exits at the first "
                   "snapshot (`[ =~ ]`); this one checks every name first.").expand(node=backup_pools.output)
        rearrange = NodeScriptOperator.partial(
            step="storage.backup-datasets-rearrange", args=["{filesystem}"],
            doc_md="`<pool>/<vps>` -> `<pool>/<vps>/tree.0/branch-<oldest>.0` (the runbook links a script that "
                   "was never published).").expand(node=backup_pools.output)
        register = storage.RegisterBackupsOperator(step="storage.backup-snapshots-db", also_steps=[
            "backups.to-snapshots"], timezone="{{ params.backup_timezone }}")
        stray_backups = storage.StrayBackupsOperator.partial(
            task_id="stray_backups", step="db.remove-stray-vps").expand(node=backup_pools.output)
        storage_pools >> rename_private
        backup_pools >> rename_snapshots >> rearrange >> register >> stray_backups
        [rename_private, stray_backups] >> SectionReportOperator(section="Storage")

    with TaskGroup("nas", tooltip="runbook: NAS") as nas_group:
        nas_pools = PoolInventoryOperator(task_id="nas_pools", roles=("primary",), skip_nodes=SKIP_NODES)
        umount = nas.NasUmountOperator.partial(step="nas.umount", nas_pools=nas_pools.output).expand(
            node=inventory.output)
        move_plan = NodeScriptOperator.partial(
            task_id="move_plan", step="nas.move-data", args=["{filesystem}"], plan_only=True,
            doc_md="What the move will do, for the approval: a name already under `private/` is a refusal here, "
                   "before anything moves.").expand(node=nas_pools.output)
        approve_move = ApprovalGateOperator(
            task_id="approve_move", step="nas.move-data", plan=move_plan.output, ask_when_empty=False,
            subject="Move the data of every NAS dataset into private/?",
            body="Members' NAS data moves into each dataset's `private/` (below, per pool). Nothing is overwritten "
                 "(a name already under `private/` was refused in the plan), every file's checksum is compared "
                 "after the move, and each pool gets a recursive snapshot `@airlift-before-nas-move` first, "
                 "kept until the NAS is remounted. **Reject** moves nothing and stops the run here.",
            doc_md="Approval before the NAS data moves (asked only when there is something to move).")
        move_data = NodeScriptOperator.partial(
            step="nas.move-data", args=["{filesystem}"], timeout=6 * 3600,
            doc_md="All data of every NAS dataset into `private/`: hidden files too (the published scripts leave "
                   "them), any names, child datasets left in place, every file's checksum compared after the move; "
                   "a recursive snapshot of the pool first.",
        ).expand(node=nas_pools.output)
        nas_pools >> umount >> move_plan >> approve_move >> move_data >> SectionReportOperator(section="NAS")

    with TaskGroup("web", tooltip="runbook: Upgrading the web interface") as web_group:
        web_update = NodeScriptOperator(step="web.update", node=api_node, script="git-pull.sh",
                                        args=["{{ params.web_root }}", "composer"])
        web_config = web.WebConfigOperator(step="web.config", node=api_node, api_url="{{ params.api_url or '' }}",
                                           production_environment="{{ params.production_environment }}",
                                           web_root="{{ params.web_root }}")
        download_proxy = WebMountsOperator(step="web.download-proxy", settings=settings, subdataset="mount",
                                           pools=pools.output, mountpoint="{{ params.mount_proxy_dir }}")
        web_update >> web_config >> download_proxy >> SectionReportOperator(section="Web")

    with TaskGroup("cluster", tooltip="runbook: Mail templates ... User environment configs") as cluster_group:
        mail_templates = cluster.MailTemplatesOperator(step="mail.templates")
        ip_owners = SqlStepOperator(step="ip.owners")
        resources = cluster.ClusterResourcesOperator(step="resources.assign",
                                                     minimums="{{ params.resource_minimums }}")
        env_configs = cluster.EnvironmentConfigsOperator(
            step="users.environment-configs", playground_environments="{{ params.playground_environments }}")
        mail_templates >> ip_owners >> resources >> env_configs >> SectionReportOperator(section="Cluster")

    with TaskGroup("finalize", tooltip="runbook: Finalize migrations ... Known issues") as finalize_group:
        quiet = OpenChainsSensor(task_id="no_open_chains", step="api.migrate-final", doc_md=(
            "Waits until no transaction chain is open: nothing changes the database while it is dumped and "
            "migrated (vpsadmin-scheduler starts only after the migration)."))
        final_backup, migrate_final, _ = api.migration_with_restore(
            step="api.migrate-final", settings=settings, label="before-migrate-final",
            keep_dumps="{{ params.keep_dumps }}",
            doc_md="The remaining migrations, after the old backups are registered (one drops vps_backups).")
        quiet >> final_backup
        remount = finalize.NasRemountOperator(step="nas.remount", settings=settings)
        remount_wait = TransactionChainSensor(task_id="nas_remount_wait", step="nas.remount", fired_by=remount.output)
        user_create = SqlStepOperator(step="known.nas-user-create", doc_md=(
            "user_create = 1 on users' top-level NAS datasets (primary pools only, unlike the runbook's UPDATE)."))
        integrity = finalize.IntegrityCheckOperator(step="integrity.check", execution_timeout=timedelta(hours=2),
                                                    allow_high="{{ params.integrity_allow_high }}")
        scheduler = NodeScriptOperator(step="scheduler.start", node=api_node, doc_md=(
            "Installs an init script for vpsadmin-scheduler (the runbook leaves starting it to the admin), starts it."))
        cron = finalize.CrontabReplaceOperator(step="cron.replace", settings=settings,
                                               scheduled_dags="{{ params.scheduled_dags }}")
        unpause = finalize.UnpauseScheduledOperator(task_id="unpause_scheduled", step="cron.replace",
                                                    scheduled_dags="{{ params.scheduled_dags }}")
        downloads = WebMountsOperator(
            step="downloads.mounter", settings=settings, subdataset="download", pools=pools.output,
            mountpoint="{{ params.download_mountpoint }}",
            doc_md="What vpsadmin-download-mounter does: vpsadmin/download of every pool NFS-mounted at "
                   "download_mountpoint/<pool id> on the web server.")
        release_snapshot = NodeScriptOperator.partial(
            task_id="nas_snapshot_release", script="nas/snapshot-release.sh", args=["{filesystem}"],
            doc_md="The NAS pools' snapshot from before the move, destroyed now that the NAS is remounted.",
        ).expand(node=nas_pools.output)
        migrate_final >> remount >> remount_wait >> release_snapshot >> user_create >> integrity
        integrity >> [scheduler, cron, downloads]
        cron >> unpause
        [scheduler, unpause, downloads] >> SectionReportOperator(section="Finalize")

    # Sections follow each other through their reports; the API section's restore branch is
    # skipped on success and must not hold back what follows.
    phase >> prereq_group >> db_group >> api_group
    api_report >> nodes_group >> storage_group >> nas_group >> web_group >> cluster_group >> finalize_group

    # The last word, after everything: what was done and, after a failure, what is left.
    run_report = RunReportOperator()
    run_report.set_upstream([task for task in dag.leaves if task is not run_report])
