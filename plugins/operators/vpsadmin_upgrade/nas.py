"""NAS (runbook: "NAS"): the NAS mounts unmounted on every hypervisor, then all data of every
NAS dataset moved into private/ (a script, NodeScriptOperator). The remount comes after the
final migration (finalize.NasRemountOperator)."""

from __future__ import annotations

from collections.abc import Sequence

from airlift.errors import StepError
from airlift.remote import NodeCommandError
from operators.runbook_step import Plan, RunbookStepOperator
from operators.vpsadmin_upgrade.common import VpsAdminStepOperator
from vpsadmin import inventory


class NasUmountOperator(VpsAdminStepOperator):
    """`umount -f` of every mount of the node's VPSes that is mounted (the runbook's script,
    without needing Ruby on the node), while some NAS data is still to move (the move-data
    script's --check): once it is in private/, a later run leaves the remounted mounts alone.

    :param nas_pools: the NAS pools (PoolInventoryOperator)
    :param move_script: the NAS data move script, asked with --check"""

    template_fields: Sequence[str] = (*RunbookStepOperator.template_fields, "nas_pools", "move_script")
    uses_step_sql = True

    def __init__(self, *, nas_pools, move_script: str = "nas/move-data.sh", **kwargs):
        super().__init__(**kwargs)
        self.nas_pools, self.move_script = nas_pools, move_script

    def _data_to_move(self) -> list[str]:
        errors = inventory.unsafe_pools(self.nas_pools)  # from XCom: checked again before they reach a command
        if errors:
            raise StepError("refusing a pool no command may use:\n- " + "\n- ".join(errors))
        pending = []
        for pool in self.nas_pools:
            result = self.nodes.run_script(pool["address"], self.move_script, ["--check", pool["filesystem"]],
                                           check=False)
            if result.exit_status not in (0, 10):
                raise NodeCommandError(result)
            if result.exit_status == 10:
                pending.append(f"{pool['server_name']}:{pool['filesystem']}")
        return pending

    def probe(self, context) -> Plan:
        name = self.node["server_name"]
        if not self._data_to_move():
            self.log.info("%s: every NAS dataset's data is in private/ already; mounts stay", self.label)
            return Plan()
        rows = self.db.rows(self.statements["node_mounts"], {"server_id": self.node["server_id"]})
        targets = [f"/vz/root/{int(r['vps_id'])}/{r['dst'].lstrip('/')}".rstrip("/") for r in rows]
        table = self.nodes.run(self.node["address"], ["mount"]).stdout
        mounted = {line.split(" on ", 1)[1].split(" type ", 1)[0] for line in table.splitlines() if " on " in line}
        todo = [t for t in targets if t in mounted]
        self.log.info("%s: %d mount(s) of VPSes, %d mounted", self.label, len(targets), len(todo))
        return Plan([f"{name}: umount -f {t}" for t in todo], work=todo)

    def apply(self, context, plan: Plan) -> None:
        for target in plan.work:
            self.nodes.run(self.node["address"], ["umount", "-f", target])
