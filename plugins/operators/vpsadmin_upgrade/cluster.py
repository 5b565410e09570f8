"""The cluster-wide tables after the migration (runbook: "Mail templates", "IP address owners",
"Assign cluster resources to existing users", "User environment configs"). IP owners is a
SqlStepOperator; the resources work is in plugins/vpsadmin/cluster_resources.py (the bench
runs the same functions)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import closing

from airlift.sql import INCLUDE_DIR
from operators.runbook_step import Plan, RunbookStepOperator
from operators.vpsadmin_upgrade.common import VpsAdminStepOperator


class MailTemplatesOperator(VpsAdminStepOperator):
    """The mail templates the runbook lists (include/mail_templates.json) plus vps_suspend,
    vps_resume and expiration_vps_active, which 2.0 code sends (a missing template fails its
    chain); existing templates are left alone. vps_config_change is unused by 2.0.0 code but
    created as listed."""

    uses_step_sql = True

    def probe(self, context) -> Plan:
        templates = json.loads((INCLUDE_DIR / "mail_templates.json").read_text())
        existing = {r["name"] for r in self.db.rows(self.statements["names"])}
        for name in sorted(existing & {t["name"] for t in templates}):
            self.log.info("%s: %s exists; left as it is", self.label, name)
        missing = [t for t in templates if t["name"] not in existing]
        return Plan([f"create mail template {t['name']}" for t in missing], work=missing)

    def apply(self, context, plan: Plan) -> None:
        self.db.execute_in_transaction([(self.statements["insert"], t) for t in plan.work])


class ClusterResourcesOperator(VpsAdminStepOperator):
    """User cluster resources from the v1.22 VPS configs, IP addresses and NAS quotas
    (plugins/vpsadmin/resources.py plans with pandas; cluster_resources.py writes the plan
    set-based in one transaction and plans again: nothing may be left to do).
    `minimums`: {"default": {...}, "<env label>": {...}}.

    Differs from the runbook's assign_cluster_resources.rb: CPU configs matched as
    cpu-<N>c-<limit> (the runbook text's cpu-(\\d+)-\\d+ matches no config); re-runnable (objects
    that have uses are not translated again, missing user_cluster_resources rows are added,
    existing ones only raised); minimums per environment label from the `resource_minimums`
    param; no PaperTrail `versions` rows."""

    template_fields: Sequence[str] = (*RunbookStepOperator.template_fields, "minimums")
    uses_step_sql = True
    PLAN_KEYS = ("user_resources_to_insert", "user_resources_to_raise", "uses_to_insert", "configs_to_delete",
                 "refquotas_to_set")

    def __init__(self, *, minimums=None, **kwargs):
        super().__init__(**kwargs)
        self.minimums = minimums

    def _assign(self, dry_run: bool) -> dict:
        from vpsadmin.cluster_resources import assign_cluster_resources

        with closing(self.db.get_conn()) as conn:
            return assign_cluster_resources(conn, minimums=self.minimums, dry_run=dry_run,
                                            statements=self.statements, logger=self.log)

    def probe(self, context) -> Plan:
        details = self._assign(dry_run=True)
        plan = details["plan"]
        return Plan([f"{plan[k]} {k.replace('_', ' ')}" for k in self.PLAN_KEYS if plan[k]], details=details)

    def apply(self, context, plan: Plan) -> dict:
        return self._assign(dry_run=False)  # plans again from the database after writing

    def verify(self, context, plan: Plan) -> Plan:
        return Plan()  # assign_cluster_resources re-planned and found nothing left


class EnvironmentConfigsOperator(VpsAdminStepOperator):
    """An environment config for every user in every environment, in one INSERT ... SELECT of
    the missing pairs; `playground_environments`: labels where users with m_playground_enable
    may not create VPSes."""

    template_fields: Sequence[str] = (*RunbookStepOperator.template_fields, "playground_environments")
    uses_step_sql = True

    def __init__(self, *, playground_environments=(), **kwargs):
        super().__init__(**kwargs)
        self.playground_environments = playground_environments

    def _create(self, dry_run: bool) -> dict:
        from vpsadmin.cluster_resources import create_environment_configs

        playground = [] if self.playground_environments is None else self.playground_environments
        with closing(self.db.get_conn()) as conn:
            return create_environment_configs(conn, playground_environments=playground, dry_run=dry_run,
                                              statements=self.statements, logger=self.log)

    def probe(self, context) -> Plan:
        details = self._create(dry_run=True)
        changes = ([f"insert {details['missing']} environment_user_configs row(s): {self.statements['apply']}"]
                   if details["missing"] else [])
        return Plan(changes, details=details)

    def apply(self, context, plan: Plan) -> dict:
        return self._create(dry_run=False)  # counts the missing pairs again after the insert
