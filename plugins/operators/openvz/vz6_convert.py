"""Vz6ConvertOperator: one `vpsadminos-convert vz6 migrate` step for one container."""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

from operators.openvz.common import MigrationStepOperator
from operators.runbook_step import Plan

# The converter's own order of steps (its state file records the last one done).
ORDER = ("stage", "sync", "transfer")
LAYOUTS = ("simfs", "ploop", "zfs")


def convert_options(ct: dict, settings, network: dict | None) -> list[str]:
    """The converter's options of a container's layout and network, which `vz6 migrate stage`
    and `vz6 export` share. `network`: the network step's record (the via networks)."""
    args = []
    if ct["layout"] == "zfs":
        args += ["--zfs", "--zfs-dataset", ct["dataset"], "--zfs-subdir", "private"]
    if settings.veth_type == "bridge":
        args += ["--netif-type", "bridge", "--bridge-link", settings.bridge_link]
    else:
        args += ["--netif-type", "routed"]
        for net in (network or {}).get("via", {}).values():
            args += ["--route-via", net]
    return args


class Vz6ConvertOperator(MigrationStepOperator):
    """Runs `vpsadminos-convert vz6 migrate <subcommand>` for one container on the OpenVZ node,
    as a remote job (it outlives a lost connection or a killed worker, never runs twice at
    once; stdin is empty, so it never waits on a prompt). The converter's state file decides
    whether the step already happened: a retry after it did continues from there instead of
    running it again (which the converter would refuse: `invalid migration sequence`).
    The report of consumed and ignored config items (stage) goes to the record. A transfer
    stops the container itself first, so the converter hands it over stopped; then the owner's
    user namespace is set (osctl changes it only on a stopped container) and it is started:
    the downtime, from the stop to the start, goes to the record. Errors are the converter's `error: ...` line.

    :param subcommand: stage, sync, transfer, cleanup or cancel.
    :param layouts: the layouts this task moves (others: nothing to do here).
    :param network: for stage: the network step's record (bridge link or via networks)."""

    template_fields: Sequence[str] = (*MigrationStepOperator.template_fields, "network")
    uses_step_script = False
    rerun_failed_job = True  # the script picks up where a failed attempt stopped

    def __init__(self, *, subcommand: str, layouts: Sequence[str] = LAYOUTS, network: dict | None = None, **kwargs):
        kwargs.setdefault("script", "migrate.sh")
        super().__init__(**kwargs)
        if subcommand not in (*ORDER, "cleanup", "cancel"):
            raise ValueError(f"no converter step {subcommand!r}")
        self.subcommand, self.layouts, self.network = subcommand, tuple(layouts), network

    def arguments(self, settings) -> list[str]:
        args = []
        if self.subcommand == "stage":
            args += convert_options(self.container, settings, self.network)
            args += ["-p", str(self.nodes.port or 22), str(self.ctid), settings.destination]
        elif self.subcommand == "cleanup":
            args += (["--delete"] if settings.delete_source else []) + [str(self.ctid)]
        elif self.subcommand == "cancel":
            args += ["--force", str(self.ctid)]
        else:
            args.append(str(self.ctid))
        return args

    def done(self, step: str | None) -> bool:
        """Whether the converter's recorded step means this subcommand already happened."""
        if self.subcommand in ("cleanup", "cancel"):
            return step is None
        return step is not None and ORDER.index(step) >= ORDER.index(self.subcommand)

    def probe(self, context) -> Plan:
        if self.container["layout"] not in self.layouts:
            return Plan(details={"ctid": self.ctid, "note": f"{self.container['layout']}: not moved by this task"})
        settings = self.settings(context)
        if settings.offline and self.subcommand in ORDER:
            return Plan(details={"ctid": self.ctid, "note": "offline path: exported, copied and imported instead"})
        step = self.nodes.migration_step(settings.source, self.ctid)
        if self.done(step):
            return Plan(details={"ctid": self.ctid, "converter_step": step})
        command = shlex.join(["vpsadminos-convert", "vz6", "migrate", self.subcommand, *self.arguments(settings)])
        return Plan([f"{settings.source}: {command}"], details={"ctid": self.ctid, "converter_step": step})

    def apply(self, context, plan: Plan) -> dict | None:
        settings = self.settings(context)
        args = ["convert", self.subcommand, *self.arguments(settings)]
        if self.subcommand == "transfer":  # the wrapper stops it, hands it over, sets its owner, starts it
            args += [settings.destination, str(self.nodes.port or 22), self.container["owner"],
                     "yes" if self.container["running"] else "no"]
        return self.remote_job(context, self.nodes, settings.source, self.script, args, plan)

    def job_done(self, context, plan: Plan, result) -> dict:
        self.migrate_job_done(result, f"vz6 migrate {self.subcommand}")
        done: dict = {"ctid": self.ctid}
        if self.subcommand == "stage":
            from openvz.report import parse

            done["report"] = parse(result.stdout)
        downtime = re.search(r"^airlift: downtime ([\d.]+) s$", result.stdout, re.MULTILINE)
        if downtime:
            done["downtime_seconds"] = float(downtime.group(1))
        return done

    def verify(self, context, plan: Plan) -> Plan:
        step = self.nodes.migration_step(self.settings(context).source, self.ctid)
        return Plan() if self.done(step) else Plan([f"the converter records {step!r} after {self.subcommand}"])
