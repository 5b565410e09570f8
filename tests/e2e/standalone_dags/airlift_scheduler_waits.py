"""The DAG tests/e2e/test_standalone_scheduler.py runs under a real scheduler (`airflow
standalone`): the project's queue wait (it defers) and approval gate, as vpsadmin_upgrade_v2
uses them, without the upgrade around them."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, Param

from operators.runbook_step import ApprovalGateOperator
from sensors.transaction_queue import TransactionQueueSensor

with DAG(dag_id="airlift_scheduler_waits", schedule=None, catchup=False, max_active_runs=1,
         params={"dry_run": Param(False, type="boolean")}, tags=["airlift-test"]):
    wait = TransactionQueueSensor(task_id="wait_transactions", step="prereq.wait-transactions", poll_interval=10)
    ApprovalGateOperator(task_id="approve", step="nas.move-data", plan=wait.output,
                         retries=2, retry_delay=timedelta(seconds=5),  # as vpsadmin_upgrade_v2's gates, sooner
                         subject="Go on now that the transaction queue has drained?",
                         body="The queue wait's record:")
