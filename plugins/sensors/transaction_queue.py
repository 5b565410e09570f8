"""Waits for vpsAdmin's transactions: the v1.22 queue drained (steps prereq.no-transactions and
prereq.wait-transactions), a 2.0 transaction chain finished (nas.remount), no 2.0 chain open
(before the final migration). Each checks once and, while there is something to wait for,
defers to a trigger (triggers/vpsadmin.py) that polls and logs the queue as it drains: no
worker slot is held while waiting. Deferring, not
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


# Seconds between two reads of the queue while a wait is deferred: one indexed query against
# the transactions table, which vpsAdmind itself polls every second; the wait ends within
# this much of the drain.
POLL_INTERVAL = 2.0


class TransactionQueueSensor(VpsAdminStepOperator):
    """Waits until no transaction is queued or running (`t_done = 0`, research/vpsadmin.md
    §1.3) on the nodes that are not skipped (a skipped node runs no vpsAdmind: its queue never
    drains; the record says what is left on it), logging the queue per node as it drains.
    Then fails (not retried) naming every transaction that failed since the run started
    (whoever queued it) or from `queued_by`'s first id on.

    :param settings: preflight's settings (`skipped_servers`).
    :param queued_by: records of the steps that queued transactions (their `first_t_id`)."""

    template_fields: Sequence[str] = (*RunbookStepOperator.template_fields, "settings", "queued_by")
    ui_color = "#eaf7ea"
    CLOCK_SKEW = 60  # seconds a node's clock (t_end) may be behind the scheduler's

    def __init__(self, *, settings=None, queued_by=None, poll_interval: float = POLL_INTERVAL, timeout: float = 6 * 3600,
                 **kwargs):
        super().__init__(**kwargs)
        self.settings, self.queued_by = settings, queued_by
        self.poll_interval, self.timeout = poll_interval, timeout

    @property
    def skipped(self) -> dict[int, str]:
        return {int(s["server_id"]): s["server_name"] for s in (self.settings or {}).get("skipped_servers") or []}

    def execute(self, context) -> dict:
        from datetime import timedelta

        from triggers.vpsadmin import TransactionQueueTrigger

        pending = sum(n for server, n in self.db.pending_by_server().items() if server not in self.skipped)
        if pending:
            self.log.info("%s: %d transaction(s) queued or running; waiting (deferred)", self.label, pending)
            self.defer(trigger=TransactionQueueTrigger(skip_server_ids=sorted(self.skipped),
                                                       mysql_conn_id=self.mysql_conn_id,
                                                       poll_interval=self.poll_interval),
                       method_name="execute_complete", timeout=timedelta(seconds=self.timeout))
        return self.execute_complete(context)

    def execute_complete(self, context, event: dict | None = None, **kwargs) -> dict:
        self.dry_run = plan_mode(context)
        records = self.queued_by if isinstance(self.queued_by, list) else [self.queued_by]
        first_ids = [int(r["first_t_id"]) for r in records if isinstance(r, dict) and r.get("first_t_id")]
        started = context.get("dag_run") and context["dag_run"].start_date
        since = int(started.timestamp()) - self.CLOCK_SKEW if started else None
        with self.step_errors():
            failed = self.db.failed_since(min(first_ids, default=None), since)
            if failed:
                raise StepError(f"{len(failed)} transaction(s) failed since the run started; fix their cause, "
                                "then trigger a new run (it checks what fails from its own start on):\n"
                                + _failures(failed))
        left = {self.skipped[s]: n for s, n in self.db.pending_by_server().items() if s in self.skipped and n}
        for name, count in left.items():
            self.log.warning("%s: %d transaction(s) left queued on skipped node %s", self.label, count, name)
        self.log.info("%s: the transaction queue is empty%s", self.label, " (but on skipped nodes)" if left else "")
        return self.record(Plan(), applied=False,
                           left=[f"{n} transaction(s) queued on {name} (node skipped)" for name, n in left.items()])


class TransactionChainSensor(VpsAdminStepOperator):
    """Waits until a vpsAdmin 2.0 transaction chain is in a final state (research/vpsadmin.md
    §3.2: 2 done, 4 failed, 5 fatal, 6 resolved); fails (not retried) naming the failed
    transactions unless it is done.

    :param fired_by: the record of the step that fired the chain (its `chain_id`); none: done."""

    template_fields: Sequence[str] = (*RunbookStepOperator.template_fields, "fired_by")
    ui_color = "#eaf7ea"

    def __init__(self, *, fired_by, poll_interval: float = POLL_INTERVAL, timeout: float = 6 * 3600, **kwargs):
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


class OpenChainsSensor(VpsAdminStepOperator):
    """Waits until no vpsAdmin 2.0 transaction chain is open (any state but done, failed,
    fatal, resolved): before the final migration's dump, so nothing changes the database
    while it is dumped and migrated. Deferred (OpenChainsTrigger)."""

    ui_color = "#eaf7ea"

    def __init__(self, *, poll_interval: float = POLL_INTERVAL, timeout: float = 6 * 3600, **kwargs):
        super().__init__(**kwargs)
        self.poll_interval, self.timeout = poll_interval, timeout

    def execute(self, context) -> dict:
        from datetime import timedelta

        from triggers.vpsadmin import OpenChainsTrigger

        chains = self.db.open_chains()
        if chains:
            self.log.info("%s: %d open transaction chain(s); waiting (deferred)", self.label, len(chains))
            self.defer(trigger=OpenChainsTrigger(mysql_conn_id=self.mysql_conn_id, poll_interval=self.poll_interval),
                       method_name="execute_complete", timeout=timedelta(seconds=self.timeout))
        return self.execute_complete(context)

    def execute_complete(self, context, event: dict | None = None, **kwargs) -> dict:
        self.dry_run = plan_mode(context)
        self.log.info("%s: no transaction chain is open", self.label)
        return self.record(Plan(), applied=False)
