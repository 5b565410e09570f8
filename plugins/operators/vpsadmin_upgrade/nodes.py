"""Upgrading nodes (runbook: "Upgrading nodes", "Pools", "Ensure sharenfs"): vpsAdmind and
vpsAdmindctl checkouts, /var/vpsadmin/mounts, the daemon started, `reinit fw` and the pool
datasets are scripts (NodeScriptOperator); the daemon's config and sharenfs are here."""

from __future__ import annotations

from collections.abc import Sequence

from airlift.errors import StepError
from operators.runbook_step import Plan, RunbookStepOperator
from operators.vpsadmin_upgrade.common import NodeFileEditOperator, PoolInventoryOperator, VpsAdminStepOperator
from vpsadmin import configs


class VpsadmindConfigOperator(NodeFileEditOperator):
    """/etc/vpsadmin/vpsadmind.yml in its 2.0 form. The runbook says only "FIXME: revise
    /etc/vpsadmin/vpsadmind.yml". 2.0 reads :queues and :mounts_dir and no longer :threads,
    :handlers, :backuper: those are replaced (1.22's thread count sizes the general queue);
    the 1.22 file is kept as vpsadmind.yml.v1.22."""

    def path(self) -> str:
        return "/etc/vpsadmin/vpsadmind.yml"

    def transform(self, text: str) -> str:
        return configs.vpsadmind_v2(text)


class SharenfsOperator(VpsAdminStepOperator):
    """sharenfs of one pool allows read-write exactly the networks of param sharenfs_subnets
    (`settings['subnets']`), its other options kept. The runbook shares every pool, so that
    any two nodes can mount each other's datasets; on a hypervisor pool that exports every
    VPS's file system with no_root_squash, so those are left alone unless param
    sharenfs_hypervisor_pools asks. Without subnets (plan mode only: a real run stops in
    preflight) the plan lists the refusal."""

    template_fields: Sequence[str] = (*RunbookStepOperator.template_fields, "settings")

    def __init__(self, *, settings, **kwargs):
        super().__init__(**kwargs)
        self.settings = settings

    def probe(self, context) -> Plan:
        where = f"{self.node['server_name']}:{self.node['filesystem']}"
        hypervisor_pool = self.node["role"] == PoolInventoryOperator.ROLES["hypervisor"]
        if hypervisor_pool and not self.settings["sharenfs_hypervisor_pools"]:
            self.log.info("%s: a hypervisor pool, left alone (sharenfs_hypervisor_pools is off)", where)
            return Plan(details={"left_alone": "hypervisor pool"})
        if not self.settings["subnets"]:
            refusal = f"{where}: refused: sharenfs_subnets is empty, so there is no network to share with"
            if not self.dry_run:
                raise StepError(refusal)
            return Plan([refusal], details={"refused": "sharenfs_subnets is empty"})
        fs = self.node["filesystem"]
        get = ["zfs", "get", "-H", "-o", "value", "sharenfs", fs]
        current = self.nodes.run(self.node["address"], get).stdout.strip()
        wanted = configs.sharenfs(current, self.settings["subnets"])
        if wanted == current:
            return Plan()
        return Plan([f"{self.node['server_name']}: zfs set sharenfs={wanted} {fs}  (was {current})"], work=wanted)

    def apply(self, context, plan: Plan) -> None:
        self.nodes.run(self.node["address"], ["zfs", "set", f"sharenfs={plan.work}", self.node["filesystem"]])
