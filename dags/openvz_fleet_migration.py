"""
### OpenVZ Legacy -> vpsAdminOS: the whole cluster, node after node

Seed 002's phase 5: the OpenVZ nodes in the order given, each through its own run of
`openvz_to_vpsadminos` (its review, its maintenance window, its verify), one node at a time.
This run waits for each node's run deferred and starts the next when it ends; with
`stop_on_failed_node` a failed node ends the fleet and the later nodes stay untouched.

`nodes`: `[{"source": OPENVZ_NODE, "destination": VPSADMINOS_NODE, "containers": "all" | [ids]}, ...]`.
The other params go to every node's run as they are (see `openvz_to_vpsadminos`); every
vpsAdminOS node of the list counts for each run's interconnect networks. Each node's run asks
its own review (in the Airflow UI, under that run). The report (per node: moved with each
container's downtime, refused, failed) is this run's note and XCom.

Plan mode (`dry_run`, the default) runs every node's run in plan mode: nothing changes,
nobody is asked.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Param

from airlift.params import OPTIONAL_TEXT
from operators.openvz.fleet import FleetMigrationOperator
from operators.runbook_step import RunReportOperator

with DAG(
    dag_id="openvz_fleet_migration",
    description="Move every OpenVZ Legacy node of a cluster onto vpsAdminOS, one node after another",
    doc_md=__doc__,
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["openvz", "vpsadminos", "runbook", "fleet"],
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},
    params={
        "dry_run": Param(True, type="boolean", title="Plan mode",
                         description="Every node's run in plan mode; nothing changes."),
        "nodes": Param([], type="array", title="Nodes, in order",
                       description='[{"source": "vz1...", "destination": "os1...", "containers": "all"}, ...]'),
        "stop_on_failed_node": Param(True, type="boolean", title="Stop at a failed node",
                                     description="Later nodes are not started when a node's run fails."),
        "path": Param("live", enum=["live", "offline"], title="Path"),
        "destination_pool": Param("tank", type="string", title="Destination pool"),
        "owners": Param({}, type="object", title="Owners", description="Container id -> owner (osctl user)."),
        "delete_source": Param(False, type="boolean", title="Delete the sources after verified moves"),
        "window_start": Param("", type=OPTIONAL_TEXT, title="Maintenance window start (HH:MM)"),
        "window_end": Param("", type=OPTIONAL_TEXT, title="Maintenance window end (HH:MM)"),
        "window_timezone": Param("Europe/Prague", type="string", title="Window time zone"),
        "transfer_rate_mib": Param(100, type="integer", minimum=1, title="Transfer rate (MiB/s)",
                                   description="A transfer starts only when the window has the time it needs at this rate."),
        "transfers_at_once": Param(1, type="integer", minimum=1, maximum=32, title="Transfers at once per node",
                                   description="Streams into each vpsAdminOS node at once: the size of its pool "
                                               "openvz-transfers:<node> (Admin > Pools)."),
    },
) as dag:
    FleetMigrationOperator(task_id="migrate_nodes", step="fleet.node-by-node",
                           execution_timeout=None) >> RunReportOperator()
