"""Prerequisites (runbook: "Prerequisities", "Nodes"): maintenance mode, a drained queue, nc on
every node, the cluster crontab disabled (common.CrontabDisableOperator), backup mounts
deleted. The maintenance mode and nc steps are generic (SqlStepOperator, NodeScriptOperator);
the queue waits are sensors (sensors/transaction_queue.py)."""

from __future__ import annotations

from operators.runbook_step import Plan
from operators.vpsadmin_upgrade.common import VpsAdminStepOperator
from vpsadmin import mounts


class BackupMountsDeleteOperator(VpsAdminStepOperator):
    """Deletes the mounts of backup exports and queues exactly what v1.22's
    `nas_mount_delete($id, true, true)` queued (plugins/vpsadmin/mounts.py): a 5303 umount for
    a mounted, non-template mount of a running VPS, a 5301 mount-script regeneration for every
    non-template mount. No PHP web interface needed; transactions already in the queue are not
    queued twice. Returns the first transaction id it may have queued (`first_t_id`), for the
    wait step to check what it queued."""

    uses_step_sql = True

    def probe(self, context) -> Plan:
        rows = self.db.rows(self.statements["mounts"])
        backup_mounts = [r for r in rows if r["is_backup"]]
        if not backup_mounts:
            return Plan()
        plan = mounts.plan_deletions(backup_mounts, [r for r in rows if not r["default"]])
        changes = [f"#{entry['vps_id']} mount {entry['mount_id']} '{entry['dst']}': delete; transactions "
                   + (", ".join(str(t.t_type) for t in entry["transactions"]) or "none (template)")
                   for entry in plan]
        return Plan(changes, work=plan)

    def apply(self, context, plan: Plan) -> dict:
        first_t_id = self.db.next_transaction_id()
        for entry in plan.work:
            statements = [(self.statements["queue_transaction"], t.__dict__) for t in entry["transactions"]]
            statements.append((self.statements["delete_mount"], {"id": entry["mount_id"]}))
            self.db.execute_in_transaction(statements)
        return {"first_t_id": first_t_id}
