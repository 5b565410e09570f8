"""Upgrading nodes (runbook: "Upgrading nodes", "Pools", "Ensure sharenfs"): vpsAdmind and
vpsAdmindctl checkouts, /var/vpsadmin/mounts, the daemon started, `reinit fw` and the pool
datasets are scripts (NodeScriptOperator); the daemon's config and sharenfs are here."""

from __future__ import annotations

from collections.abc import Sequence

from operators.runbook_step import Plan, RunbookStepOperator
from operators.vpsadmin_upgrade.common import NodeFileEditOperator, VpsAdminStepOperator
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
    """sharenfs of one pool allows every subnet of `settings['subnets']` (param
    sharenfs_subnets, else the /24 of every server), its other options kept."""

    template_fields: Sequence[str] = (*RunbookStepOperator.template_fields, "settings")

    def __init__(self, *, settings, **kwargs):
        super().__init__(**kwargs)
        self.settings = settings

    def probe(self, context) -> Plan:
        fs = self.node["filesystem"]
        get = ["zfs", "get", "-H", "-o", "value", "sharenfs", fs]
        current = self.nodes.run(self.node["address"], get).stdout.strip()
        wanted = configs.sharenfs(current, self.settings["subnets"])
        if wanted == current:
            return Plan()
        return Plan([f"{self.node['server_name']}: zfs set sharenfs={wanted} {fs}  (was {current})"], work=wanted)

    def apply(self, context, plan: Plan) -> None:
        self.nodes.run(self.node["address"], ["zfs", "set", f"sharenfs={plan.work}", self.node["filesystem"]])
