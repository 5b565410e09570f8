"""Triggers the vpsAdmin waits defer to (the triggerer polls; no worker slot is held): the
v1.22 transaction queue, a 2.0 transaction chain, an integrity check. Each logs progress to
the task log and fires one event when the wait is over; the task decides what it means."""

from __future__ import annotations

from airlift.connections import VPSADMIN_API, VPSADMIN_DB
from triggers.polling import PollTrigger

CHAIN_FINAL = {2: "done", 4: "failed", 5: "fatal", 6: "resolved"}  # research/vpsadmin.md §3.2


class TransactionQueueTrigger(PollTrigger):
    """Until no v1.22 transaction is queued or running (`t_done = 0`) but on skipped nodes."""

    def __init__(self, *, skip_server_ids: list[int] = (), mysql_conn_id: str = VPSADMIN_DB,
                 poll_interval: float = 5, plan: dict | None = None):
        super().__init__(poll_interval=poll_interval, plan=plan, skip_server_ids=list(skip_server_ids),
                         mysql_conn_id=mysql_conn_id)

    def poll(self) -> dict | None:
        from hooks.vpsadmin_db import VpsAdminDbHook

        skipped = set(self.kwargs["skip_server_ids"])
        by_server = {s: n for s, n in VpsAdminDbHook(self.kwargs["mysql_conn_id"]).pending_by_server().items()
                     if s not in skipped}
        pending = sum(by_server.values())
        self.log.info("transactions queued or running: %d%s (the queue drains only where vpsadmind runs)",
                      pending, "".join(f", node {s}: {n}" for s, n in sorted(by_server.items())))
        return None if pending else {"status": "drained"}


class TransactionChainTrigger(PollTrigger):
    """Until a vpsAdmin 2.0 transaction chain is in a final state."""

    def __init__(self, *, chain_id: int, mysql_conn_id: str = VPSADMIN_DB, poll_interval: float = 5,
                 plan: dict | None = None):
        super().__init__(poll_interval=poll_interval, plan=plan, chain_id=chain_id, mysql_conn_id=mysql_conn_id)

    def poll(self) -> dict | None:
        from hooks.vpsadmin_db import VpsAdminDbHook

        chain_id = int(self.kwargs["chain_id"])
        chain = VpsAdminDbHook(self.kwargs["mysql_conn_id"]).chain(chain_id)
        if chain is None:
            return {"status": "missing", "chain_id": chain_id}
        self.log.info("chain %s: state %s, %s of %s transaction(s) done", chain_id, chain["state"],
                      chain["progress"], chain["size"])
        if chain["state"] in CHAIN_FINAL:
            return {"status": CHAIN_FINAL[chain["state"]], "chain_id": chain_id}
        return None


class TransactionChainsTrigger(PollTrigger):
    """Until every one of some vpsAdmin 2.0 transaction chains is in a final state; the event
    has each chain's final state (`missing` for a chain that is gone)."""

    def __init__(self, *, chain_ids: list[int], mysql_conn_id: str = VPSADMIN_DB, poll_interval: float = 5,
                 plan: dict | None = None):
        super().__init__(poll_interval=poll_interval, plan=plan, chain_ids=[int(i) for i in chain_ids],
                         mysql_conn_id=mysql_conn_id)

    def poll(self) -> dict | None:
        from hooks.vpsadmin_db import VpsAdminDbHook

        wanted = self.kwargs["chain_ids"]
        found = {c["id"]: c for c in VpsAdminDbHook(self.kwargs["mysql_conn_id"]).chains(wanted)}
        open_chains = [c for c in found.values() if c["state"] not in CHAIN_FINAL]
        if open_chains:
            self.log.info("%d of %d chain(s) still open: %s", len(open_chains), len(wanted),
                          ", ".join(f"{c['id']} ({c['progress']}/{c['size']})" for c in open_chains[:20]))
            return None
        return {"status": "settled",
                "chains": {str(i): CHAIN_FINAL[found[i]["state"]] if i in found else "missing" for i in wanted}}


class OpenChainsTrigger(PollTrigger):
    """Until no vpsAdmin 2.0 transaction chain is open (not in a final state)."""

    def __init__(self, *, mysql_conn_id: str = VPSADMIN_DB, poll_interval: float = 5, plan: dict | None = None):
        super().__init__(poll_interval=poll_interval, plan=plan, mysql_conn_id=mysql_conn_id)

    def poll(self) -> dict | None:
        from hooks.vpsadmin_db import VpsAdminDbHook

        chains = VpsAdminDbHook(self.kwargs["mysql_conn_id"]).open_chains()
        if chains:
            self.log.info("open transaction chains: %s", ", ".join(f"{c['id']} {c['name']}" for c in chains[:20]))
            return None
        return {"status": "quiet"}


class IntegrityCheckTrigger(PollTrigger):
    """Until an integrity check started through the 2.0 API is no longer pending."""

    def __init__(self, *, check_id: int, api_conn_id: str = VPSADMIN_API, poll_interval: float = 3,
                 plan: dict | None = None):
        super().__init__(poll_interval=poll_interval, plan=plan, check_id=check_id, api_conn_id=api_conn_id)

    def poll(self) -> dict | None:
        from hooks.vpsadmin_api import VpsAdminApiError, VpsAdminApiHook

        check_id = int(self.kwargs["check_id"])
        try:
            check = VpsAdminApiHook(self.kwargs["api_conn_id"]).integrity_check(check_id)
        except VpsAdminApiError as exc:
            return {"status": "error", "check_id": check_id, "message": str(exc)}
        if check["status"] == "pending":
            self.log.info("integrity check %d: %s/%s objects checked", check_id, check.get("checked_objects"),
                          check.get("integral_objects"))
            return None
        return {"status": "done", "check_id": check_id, "check": check}
