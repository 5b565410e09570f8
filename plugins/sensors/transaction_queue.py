"""TransactionQueueSensor: waits until vpsAdmin has no transaction queued or running.

v1.22 semantics (research/vpsadmin.md §1.3): `t_done = 0` is queued or executing. The sensor
logs the queue length, per node, on every poke so the operator watches it drain, and runs
in reschedule mode: between pokes it holds no worker slot.
"""

from __future__ import annotations

from airflow.sdk.bases.sensor import BaseSensorOperator
from airflow.sdk.exceptions import AirflowFailException

from airlift.connections import VPSADMIN_DB


class TransactionQueueSensor(BaseSensorOperator):
    """:param server_id: watch one node's queue only.
    :param failed_since: once drained, fail (not retried) if a transaction with this id or a
        later one finished with t_success = 0, naming each: what a step queued must succeed."""

    template_fields = ("server_id", "failed_since")
    ui_color = "#eaf7ea"

    def __init__(self, *, server_id: int | None = None, failed_since: int | None = None,
                 mysql_conn_id: str = VPSADMIN_DB, **kwargs):
        kwargs.setdefault("mode", "reschedule")
        kwargs.setdefault("poke_interval", 5)
        kwargs.setdefault("timeout", 6 * 3600)
        super().__init__(**kwargs)
        self.server_id, self.failed_since, self.mysql_conn_id = server_id, failed_since, mysql_conn_id

    def poke(self, context) -> bool:
        from hooks.vpsadmin_db import VpsAdminDbHook

        hook = VpsAdminDbHook(self.mysql_conn_id)
        if self.server_id is not None:
            pending = hook.queue_length(int(self.server_id))
            self.log.info("transactions queued or running on node %s: %d", self.server_id, pending)
            return pending == 0
        by_server = hook.pending_by_server()
        total = sum(by_server.values())
        detail = ", ".join(f"node {s}: {n}" for s, n in sorted(by_server.items()))
        self.log.info("transactions queued or running: %d%s", total, f" ({detail})" if detail else "")
        if total:
            self.log.info("the queue drains only where vpsadmind runs (`service vpsadmind status`)")
            return False
        if self.failed_since:
            failed = hook.named("transactions.sql", "failed_since", {"first_id": int(self.failed_since)})
            if failed:
                raise AirflowFailException("transactions failed:\n" + "\n".join(
                    f"t_id {t['t_id']} type {t['t_type']} on node {t['t_server']} VPS {t['t_vps']}: {t['t_output']}"
                    for t in failed))
        return True


class TransactionChainSensor(BaseSensorOperator):
    """Waits until a vpsAdmin 2.0 transaction chain is in a final state (research/vpsadmin.md
    §3.2: 2 done, 4 failed, 5 fatal, 6 resolved); fails (not retried) naming the failed
    transactions unless it is done. No chain id (nothing was fired): done at once."""

    template_fields = ("chain_id",)
    ui_color = "#eaf7ea"
    FINAL = {2: "done", 4: "failed", 5: "fatal", 6: "resolved"}

    def __init__(self, *, chain_id, mysql_conn_id: str = VPSADMIN_DB, **kwargs):
        kwargs.setdefault("mode", "reschedule")
        kwargs.setdefault("poke_interval", 5)
        kwargs.setdefault("timeout", 6 * 3600)
        super().__init__(**kwargs)
        self.chain_id, self.mysql_conn_id = chain_id, mysql_conn_id

    def poke(self, context) -> bool:
        from hooks.vpsadmin_db import VpsAdminDbHook

        if self.chain_id in (None, "", "None"):
            self.log.info("no chain to wait for")
            return True
        hook = VpsAdminDbHook(self.mysql_conn_id)
        rows = hook.named("nas.sql", "chain", {"chain_id": int(self.chain_id)})
        if not rows:
            raise AirflowFailException(f"transaction chain {self.chain_id} does not exist")
        chain = rows[0]
        self.log.info("chain %s: state %s, %s of %s transaction(s) done", chain["id"], chain["state"],
                      chain["progress"], chain["size"])
        if chain["state"] not in self.FINAL:
            return False
        if chain["state"] != 2:
            failed = hook.named("nas.sql", "chain_failures", {"chain_id": int(self.chain_id)})
            raise AirflowFailException(f"chain {self.chain_id} is {self.FINAL[chain['state']]}:\n" + "\n".join(
                f"t_id {t['t_id']} type {t['t_type']} on node {t['t_server']} VPS {t['t_vps']}: {t['t_output']}"
                for t in failed))
        return True
