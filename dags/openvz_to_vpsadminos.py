"""
### OpenVZ Legacy -> vpsAdminOS: the containers of one OpenVZ node

One run moves the containers of one OpenVZ node onto one vpsAdminOS node with the
converter's migration stages (seeds 002 and 003), the live path: the container keeps running
while its data is copied and is down only for the last delta.

1. **discover** checks the form and both nodes, lists the containers (layout, state, size,
   what can be converted) and refuses a destination pool without room; **converter** and
   **keys** prepare the node pair once.
2. **prepare**, per container (mapped, labelled by its id): preflight (refused containers are
   skipped and stay untouched), the config report, its interconnect networks, `vz6 migrate
   stage`, then its owner's user namespace and CPU limit on the staged copy. A failure after
   the stage cancels it.
3. **review**: one approval for the batch, with every container's converted configuration.
   Rejected: every staged container is cancelled.
4. **move**, per container: sync while it runs (rsync through the converter for simfs/ploop;
   resumable ZFS streams, pass after pass, for ZFS), wait for the maintenance window
   (deferred), transfer (the downtime, measured), verify (state, addresses, hostname,
   resolvers, memory, user namespace, every file), cleanup (the source is kept, stopped,
   unless `delete_source`). A failure undoes the container's move: it runs on the OpenVZ node
   again and nothing is left on the vpsAdminOS node.

Against today's osctld (discover reads its version: the receive protocol with tokens) no
converter can stage, so the DAG stages itself (its own skel, with the group /default, routed
via osrtr0), syncs and transfers simfs/ploop with the converter's rsync, and hands each over by
the token the destination keeps.

The offline path (`path: offline`), for stopped or awkward containers: nothing is staged
or synced; in the window each container is stopped, exported (`vz6 export`: ZFS streams or a
tar), the archive copied to the vpsAdminOS node with its checksum compared, imported (`osctl ct
import` with its owner's user), started, and verified and cleaned up as above. It is down from
the export to the start.

Plan mode (`dry_run`, the default) reads both nodes and lists every command; it changes
nothing. Connection: `openvz_ssh` (root on both nodes; their addresses are params).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Param, chain, task_group

from airlift.connections import OPENVZ_SSH
from airlift.params import HOST_PATTERN, OPTIONAL_TEXT
from airlift.pools import per_node
from airlift.sql import template_searchpath
from operators.openvz.container import (
    ConfigReportOperator,
    ConfigureOperator,
    NetworkOperator,
    PreflightOperator,
    ReviewPlanOperator,
)
from operators.openvz.move import CleanupOperator, RollbackOperator, VerifyOperator, WindowOperator
from operators.openvz.nodes import ConverterInstalledOperator, DiscoverOperator, SshKeysOperator
from operators.openvz.offline import CopyArchiveOperator, ExportOperator, ImportOperator
from operators.openvz.vz6_convert import Vz6ConvertOperator
from operators.openvz.zfs_send import ZfsSendOperator
from operators.runbook_step import ApprovalGateOperator, RunReportOperator

# Every stream into the destination node holds a slot of that node's pool
# (`openvz-transfers:<node>`, sized by transfers_at_once), across runs and source nodes; a
# container further along its move gets a freed slot first.
TRANSFER = {"pool": per_node("openvz-transfers", "destination_node", "transfers_at_once"), "weight_rule": "upstream"}

with DAG(
    dag_id="openvz_to_vpsadminos",
    description="Move the containers of one OpenVZ Legacy node onto a vpsAdminOS node (live or offline)",
    doc_md=__doc__,
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    render_template_as_native_obj=True,
    template_searchpath=template_searchpath("openvz"),
    tags=["openvz", "vpsadminos", "runbook"],
    default_args={
        "retries": 2,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=5),
        "execution_timeout": timedelta(hours=12),
        "ssh_conn_id": OPENVZ_SSH,
    },
    params={
        "dry_run": Param(True, type="boolean", title="Plan mode",
                         description="Read both nodes and list every command; change nothing."),
        "path": Param("live", enum=["live", "offline"], title="Path",
                      description="live: staged, synced while it runs, down for the last delta; offline: "
                                  "stopped, exported, copied and imported in the window."),
        "source_node": Param("", type="string", pattern=HOST_PATTERN, title="OpenVZ node", description="Its SSH address."),
        "destination_node": Param("", type="string", pattern=HOST_PATTERN, title="vpsAdminOS node", description="Its SSH address."),
        "destination_pool": Param("tank", type="string", title="Destination pool"),
        "containers": Param("all", type=["string", "array"], title="Containers",
                            description="'all', or a list of container ids."),
        "veth_type": Param("routed", enum=["routed", "bridge"], title="veth type"),
        "bridge_link": Param("lxcbr0", type="string", title="Bridge (bridged veth)"),
        "interconnect_pool_v4": Param("10.100.0.0/16", type="string", title="IPv4 interconnect pool",
                                      description="The /30 network of each routed veth is cut from it."),
        "interconnect_pool_v6": Param("fd00:100::/112", type="string", title="IPv6 interconnect pool",
                                      description="The /126 network of each routed veth is cut from it."),
        "interconnect_nodes": Param([], type="array", items={"type": "string", "pattern": HOST_PATTERN}, title="Other vpsAdminOS nodes",
                                    description="Nodes whose interconnect networks count as taken too."),
        "owners": Param({}, type="object", title="Owners",
                        description="Container id -> owner (osctl user, 524288 IDs, shared by the owner's "
                                    "containers); unnamed containers get ct<id>."),
        "delete_source": Param(False, type="boolean", title="Delete the source after a verified move"),
        "window_start": Param("", type=OPTIONAL_TEXT, title="Maintenance window start (HH:MM)",
                              description="Empty: transfer at once."),
        "window_end": Param("", type=OPTIONAL_TEXT, title="Maintenance window end (HH:MM)"),
        "window_timezone": Param("Europe/Prague", type="string", title="Window time zone"),
        "transfer_rate_mib": Param(100, type="integer", minimum=1, title="Transfer rate (MiB/s)",
                                   description="What the window assumes: a transfer starts only when the window "
                                               "still has the time it needs at this rate."),
        "transfers_at_once": Param(1, type="integer", minimum=1, maximum=32, title="Transfers at once",
                                   description="Syncs, transfers and archive copies into the vpsAdminOS node at "
                                               "once: the size of its pool openvz-transfers:<node> (Admin > Pools)."),
        "stop_on_first_error": Param(True, type="boolean", title="Stop on the first error"),
        "sync_delta_mib": Param(64, type="integer", minimum=1, title="Sync until a pass moves at most (MiB)"),
        "sync_passes": Param(5, type="integer", minimum=1, maximum=50, title="Most sync passes"),
    },
) as dag:
    discover = DiscoverOperator(task_id="discover", step="ct.discover")
    converter = ConverterInstalledOperator(task_id="converter", step="ct.converter-installed")
    keys = SshKeysOperator(task_id="keys", step="ct.ssh-keys")

    @task_group(group_id="prepare")
    def prepare(container):
        preflight = PreflightOperator(task_id="preflight", step="ct.preflight", container=container)
        report = ConfigReportOperator(task_id="config_report", step="ct.config-report", container=container)
        network = NetworkOperator(task_id="network", step="ct.network", container=container)
        stage = Vz6ConvertOperator(task_id="stage", step="ct.stage", subcommand="stage", container=container,
                                   network=network.output)
        configure = ConfigureOperator(task_id="configure", step="ct.config-report", container=container)
        cancel = RollbackOperator(task_id="cancel", step="ct.cancel", container=container, trigger_rule="one_failed")
        preflight >> report >> network >> stage >> configure
        [report, network, stage, configure] >> cancel

    prepared = prepare.expand(container=discover.output)
    review_plan = ReviewPlanOperator(task_id="review_plan", step="ct.review", stage_task="prepare.stage",
                                     report_task="prepare.config_report", network_task="prepare.network",
                                     trigger_rule="all_done")
    review = ApprovalGateOperator(
        task_id="review", step="ct.review", plan="{{ ti.xcom_pull(task_ids='review_plan', key='plan') }}",
        subject="Move these containers to vpsAdminOS?",
        body="Each container is staged on the vpsAdminOS node with the converted configuration below. "
             "**Approve** syncs them while they run and transfers them in the window (each is down for its "
             "last delta). **Reject** cancels every staged container; they keep running where they are.")

    @task_group(group_id="move")
    def move(container):
        sync = Vz6ConvertOperator(task_id="sync", step="ct.sync", subcommand="sync", layouts=("simfs", "ploop"),
                                  container=container, **TRANSFER)
        sync_zfs = ZfsSendOperator(task_id="sync_zfs", step="ct.sync", mode="sync", container=container, **TRANSFER)
        window = WindowOperator(task_id="window", step="fleet.downtime-window", container=container)
        transfer = Vz6ConvertOperator(task_id="transfer", step="ct.transfer", subcommand="transfer",
                                      layouts=("simfs", "ploop"), container=container, **TRANSFER)
        transfer_zfs = ZfsSendOperator(task_id="transfer_zfs", step="ct.transfer", mode="final", container=container,
                                       **TRANSFER)
        export = ExportOperator(task_id="export", step="ct.export", container=container, **TRANSFER)
        copy_archive = CopyArchiveOperator(task_id="copy_archive", step="ct.copy-archive", container=container,
                                           **TRANSFER)
        import_archive = ImportOperator(task_id="import", step="ct.import", container=container, **TRANSFER)
        verify = VerifyOperator(task_id="verify", step="ct.verify", container=container)
        cleanup = CleanupOperator(task_id="cleanup", step="ct.cleanup", container=container)
        undo = RollbackOperator(task_id="undo", step="ct.cancel", container=container, trigger_rule="one_failed")
        live = [sync, sync_zfs, window, transfer, transfer_zfs]
        offline = [export, copy_archive, import_archive]
        chain(*live, *offline, verify, cleanup)
        [*live, *offline, verify] >> undo

    moved = move.expand(container=review_plan.output)
    rejected = RollbackOperator.partial(task_id="cancel_rejected", step="ct.cancel", if_rejected="review",
                                        trigger_rule="all_done").expand(container=review_plan.output)

    discover >> converter >> keys >> prepared >> review_plan >> review >> moved >> rejected
    rejected >> RunReportOperator()
