"""Prerequisites (runbook: "Prerequisities", "Nodes"): maintenance mode, a drained queue, nc on
every node, the cluster crontab disabled (common.CrontabDisableOperator), backup mounts
deleted. The maintenance mode and nc steps are generic (SqlStepOperator, NodeScriptOperator);
the queue waits are sensors (sensors/transaction_queue.py)."""

from __future__ import annotations

from collections.abc import Sequence

from operators.runbook_step import Plan, RunbookStepOperator
from operators.vpsadmin_upgrade.common import VpsAdminStepOperator
from vpsadmin import mounts


class BackupMountsDeleteOperator(VpsAdminStepOperator):
    """Deletes the mounts of backup exports and queues exactly what v1.22's
    `nas_mount_delete($id, true, true)` queued (plugins/vpsadmin/mounts.py): a 5303 umount for
    a mounted, non-template mount of a running VPS, a 5301 mount-script regeneration for every
    non-template mount. No PHP web interface needed; transactions already in the queue are not
    queued twice. Mounts of VPSes on skipped nodes stay (deleting them would leave the node
    mounting what the database no longer knows); the record lists them. Returns the first
    transaction id it may have queued (`first_t_id`), for the wait step to check what it
    queued."""

    template_fields: Sequence[str] = (*RunbookStepOperator.template_fields, "settings")
    uses_step_sql = True

    def __init__(self, *, settings, **kwargs):
        super().__init__(**kwargs)
        self.settings = settings

    def probe(self, context) -> Plan:
        skipped = {int(s["server_id"]): s["server_name"] for s in self.settings.get("skipped_servers") or []}
        rows = self.db.rows(self.statements["mounts"])
        left = [f"#{r['vps_id']} mount {r['id']} '{r['dst']}' on {skipped[r['vps_server']]} (node skipped)" for r in rows
                if r["is_backup"] and r["vps_server"] in skipped]
        rows = [r for r in rows if r["vps_server"] not in skipped]
        backup_mounts = [r for r in rows if r["is_backup"]]
        if not backup_mounts:
            return Plan(details={"left": left})
        plan = mounts.plan_deletions(backup_mounts, [r for r in rows if not r["default"]])
        changes = [f"#{entry['vps_id']} mount {entry['mount_id']} '{entry['dst']}': delete; transactions "
                   + (", ".join(str(t.t_type) for t in entry["transactions"]) or "none (template)")
                   for entry in plan]
        return Plan(changes, details={"left": left}, work=plan)

    def apply(self, context, plan: Plan) -> dict:
        first_t_id = self.db.next_transaction_id()
        for entry in plan.work:
            statements = [(self.statements["queue_transaction"], t.__dict__) for t in entry["transactions"]]
            statements.append((self.statements["delete_mount"], {"id": entry["mount_id"]}))
            self.db.execute_in_transaction(statements)
        return {"first_t_id": first_t_id}
