"""Waits for vpsAdmin's transactions: the v1.22 queue drained (steps prereq.no-transactions and
prereq.wait-transactions) and a 2.0 transaction chain finished (nas.remount). Both check once
and, while there is something to wait for, defer to a trigger (triggers/vpsadmin.py) that
polls and logs the queue as it drains: no worker slot is held while waiting. Deferring, not
reschedule mode: Airflow 3.3's scheduler can fail a rescheduled sensor on a stale executor
event (apache/airflow#71172)."""

from __future__ import annotations

from collections.abc import Sequence

from airlift.errors import StepError
from operators.runbook_step import Plan, RunbookStepOperator, plan_mode
from operators.vpsadmin_upgrade.common import VpsAdminStepOperator


def _failures(transactions: list[dict]) -> str:
    return "\n".join(f"t_id {t['t_id']} type {t['t_type']} on node {t['t_server']} VPS {t['t_vps']}: {t['t_output']}"
                     for t in transactions)


class TransactionQueueSensor(VpsAdminStepOperator):
    """Waits until no transaction is queued or running (`t_done = 0`, research/vpsadmin.md
    §1.3), on one node (`server_id`) or all, logging the queue per node as it drains.

    :param queued_by: the record of the step that queued transactions (its `first_t_id`): once
        drained, fails (not retried) naming every transaction from that id on that failed."""

    template_fields: Sequence[str] = (*RunbookStepOperator.template_fields, "server_id", "queued_by")
    ui_color = "#eaf7ea"

    def __init__(self, *, server_id: int | None = None, queued_by=None, poll_interval: float = 5,
                 timeout: float = 6 * 3600, **kwargs):
        super().__init__(**kwargs)
        self.server_id, self.queued_by = server_id, queued_by
        self.poll_interval, self.timeout = poll_interval, timeout

    def execute(self, context) -> dict:
        from datetime import timedelta

        from triggers.vpsadmin import TransactionQueueTrigger

        server_id = None if self.server_id is None else int(self.server_id)
        pending = self.db.queue_length(server_id)
        if pending:
            self.log.info("%s: %d transaction(s) queued or running; waiting (deferred)", self.label, pending)
            self.defer(trigger=TransactionQueueTrigger(server_id=server_id, mysql_conn_id=self.mysql_conn_id,
                                                       poll_interval=self.poll_interval),
                       method_name="execute_complete", timeout=timedelta(seconds=self.timeout))
        return self.execute_complete(context)

    def execute_complete(self, context, event: dict | None = None, **kwargs) -> dict:
        self.dry_run = plan_mode(context)
        first_t_id = (self.queued_by or {}).get("first_t_id") if isinstance(self.queued_by, dict) else None
        with self.step_errors():
            failed = self.db.failed_since(int(first_t_id)) if first_t_id else []
            if failed:
                raise StepError("transactions failed:\n" + _failures(failed))
        self.log.info("%s: the transaction queue is empty", self.label)
        return self.record(Plan(), applied=False)


class TransactionChainSensor(VpsAdminStepOperator):
    """Waits until a vpsAdmin 2.0 transaction chain is in a final state (research/vpsadmin.md
    §3.2: 2 done, 4 failed, 5 fatal, 6 resolved); fails (not retried) naming the failed
    transactions unless it is done.

    :param fired_by: the record of the step that fired the chain (its `chain_id`); none: done."""

    template_fields: Sequence[str] = (*RunbookStepOperator.template_fields, "fired_by")
    ui_color = "#eaf7ea"

    def __init__(self, *, fired_by, poll_interval: float = 5, timeout: float = 6 * 3600, **kwargs):
        super().__init__(**kwargs)
        self.fired_by, self.poll_interval, self.timeout = fired_by, poll_interval, timeout

    @property
    def chain_id(self) -> int | None:
        chain_id = self.fired_by.get("chain_id") if isinstance(self.fired_by, dict) else None
        return None if chain_id in (None, "") else int(chain_id)

    def execute(self, context) -> dict:
        from datetime import timedelta

        from triggers.vpsadmin import TransactionChainTrigger

        if self.chain_id is not None:
            self.log.info("%s: waiting for chain %d (deferred)", self.label, self.chain_id)
            self.defer(trigger=TransactionChainTrigger(chain_id=self.chain_id, mysql_conn_id=self.mysql_conn_id,
                                                       poll_interval=self.poll_interval),
                       method_name="execute_complete", timeout=timedelta(seconds=self.timeout))
        self.log.info("%s: no chain to wait for", self.label)
        return self.execute_complete(context, {"status": "done"})

    def execute_complete(self, context, event: dict | None = None, **kwargs) -> dict:
        self.dry_run = plan_mode(context)
        with self.step_errors():
            status = (event or {}).get("status")
            if status == "missing":
                raise StepError(f"transaction chain {self.chain_id} does not exist")
            if status != "done":
                failed = self.db.chain_failures(self.chain_id)
                raise StepError(f"chain {self.chain_id} is {status}:\n" + _failures(failed))
        return self.record(Plan(), applied=False, chain_id=self.chain_id)
