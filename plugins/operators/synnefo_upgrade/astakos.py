"""Runbook parts 4 and 5: Astakos started with public access still blocked, and the resources
it accounts loaded (ASTAKOS_SERVICES, the pithos service renamed pithos+, astakos-init)."""

from __future__ import annotations

from operators.runbook_step import Plan
from operators.synnefo_upgrade.common import ServicesOperator
from operators.synnefo_upgrade.settings import ASTAKOS_CONF, SettingsOperator, Target, current

GiB = 1024**3
# 0.12's defaults (shared research synnefo.md §6 "Pre-0.13 defaults to reconcile"), used when
# a host's settings do not set them: a user without a limit of their own keeps what 0.12 gave.
DEFAULT_LIMITS = {"MAX_VMS_PER_USER": 3, "MAX_NETWORKS_PER_USER": 5, "PITHOS_BACKEND_QUOTA": 50 * GiB}


class StartAstakosOperator(ServicesOperator):
    """Astakos's application server (gunicorn, which also serves the quotaholder) started on the
    Astakos host, its web server (apache2) left down: public access stays blocked during the
    migrations, as the runbook warns, without touching a firewall. Part 11 starts apache2."""

    def __init__(self, **kwargs):
        super().__init__(action="start", **kwargs)

    def probe(self, context) -> Plan:
        self.node = {"server_name": "astakos", "address": self.settings["hosts"]["astakos"], "services": ["gunicorn"]}
        return super().probe(context)


def astakos_services(limits: dict[str, int]) -> dict:
    """ASTAKOS_SERVICES as runbook part 5 writes it, with the limits 0.12 had where it had one
    (vm, network.private, diskspace: from the Cyclades and Pithos settings), the runbook's
    for the resources that are new in 0.13 (cpu, ram, disk)."""
    def resource(name, group, uplimit, desc, unit=None):
        return {"name": name, "group": group, "uplimit": uplimit, "desc": desc, **({"unit": unit} if unit else {})}

    return {
        "cyclades": {"resources": [
            resource("disk", "compute", 30 * GiB, "Virtual machine disk size", "bytes"),
            resource("cpu", "compute", 6, "Number of virtual machine processors"),
            resource("ram", "compute", 6 * GiB, "Virtual machines", "bytes"),
            resource("vm", "compute", limits["MAX_VMS_PER_USER"], "Number of virtual machines"),
            resource("network.private", "network", limits["MAX_NETWORKS_PER_USER"], "Private networks"),
        ]},
        "pithos+": {"resources": [
            resource("diskspace", "storage", limits["PITHOS_BACKEND_QUOTA"], "Pithos account diskspace", "bytes"),
        ]},
    }


class LoadResourcesOperator(SettingsOperator):
    """ASTAKOS_SERVICES set on the Astakos host; the service named `pithos` (0.12's usual name)
    renamed `pithos+`, since astakos-init would otherwise leave it and create a second one; then
    `snf-manage astakos-init --load-service-resources`, which loads the resources with their
    default limits and registers the services with the quotaholder. Each part runs only while
    Astakos differs from the settings (include/sql/synnefo/s5/load-resources.sql)."""

    roles = ("astakos", "cyclades", "pithos")

    def __init__(self, *, sql: str = "s5/load-resources.sql", **kwargs):
        super().__init__(sql=sql, **kwargs)

    def targets(self, context, files) -> list[Target]:
        known = {**current(files["cyclades"]), **current(files["pithos"])}
        limits = {name: int(known.get(name, default)) for name, default in DEFAULT_LIMITS.items()}
        self.wanted = astakos_services(limits)
        return [Target("astakos", ASTAKOS_CONF, {"ASTAKOS_SERVICES": self.wanted})]

    def probe(self, context) -> Plan:
        plan = super().probe(context)
        db, statements = self.db("snf_apps"), self.statements
        services = {name: service_id for service_id, name in db.get_records(statements["services"])}
        rename = services.get("pithos") if "pithos+" not in services and "pithos" in services else None
        if rename is not None:
            plan.changes.append(f"astakos: snf-manage service-update {rename} --name pithos+")
        loaded = {(s, n): str(u) for s, n, u in db.get_records(statements["resources"])}
        wanted = {(service, r["name"]): str(r["uplimit"]) for service, spec in self.wanted.items()
                  for r in spec["resources"]}
        differ = sorted(f"{s}.{n}" for (s, n), uplimit in wanted.items() if loaded.get((s, n)) != uplimit)
        if differ:
            plan.changes.append(f"astakos: snf-manage astakos-init --load-service-resources ({', '.join(differ)})")
        plan.details = {"resources": {f"{s}.{n}": int(u) for (s, n), u in sorted(wanted.items())}}
        plan.work = {"files": plan.work, "rename": rename, "load": bool(differ)}
        return plan

    def apply(self, context, plan: Plan) -> dict:
        work, host = plan.work, self.settings["hosts"]["astakos"]
        done = super().apply(context, Plan(work=work["files"]))
        if work["rename"] is not None:
            self.nodes.snf_manage(host, ["service-update", str(work["rename"]), "--name", "pithos+"])
        if work["load"]:
            self.nodes.snf_manage(host, ["astakos-init", "--load-service-resources"])
        return done
