"""Vz6ConvertOperator: one `vpsadminos-convert vz6 migrate` step for one container."""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

from airlift.errors import StepError
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

    Against today's osctld (discover found the receive protocol with tokens) no converter can
    stage: its skel carries the group `default`, which osctld refuses, and its later commands
    send the container's id where osctld wants the token `receive skel` printed. There the
    DAG does the converter's steps itself: stage sends the DAG's skel (openvz/skel.py: the
    converter's conversion with the group /default, routed via osrtr0); sync and transfer are
    the converter's rsync into the staged root, and the handover names the token the
    destination keeps. Its record on the OpenVZ node (STAGED_DIR) stands for the state file.

    :param subcommand: stage, sync or transfer.
    :param layouts: the layouts this task moves (others: nothing to do here).
    :param network: for stage: the network step's record (bridge link or via networks)."""

    template_fields: Sequence[str] = (*MigrationStepOperator.template_fields, "network")
    uses_step_script = False
    rerun_failed_job = True  # the script picks up where a failed attempt stopped

    def __init__(self, *, subcommand: str, layouts: Sequence[str] = LAYOUTS, network: dict | None = None, **kwargs):
        kwargs.setdefault("script", "migrate.sh")
        super().__init__(**kwargs)
        if subcommand not in ORDER:
            raise ValueError(f"no converter step {subcommand!r}")
        self.subcommand, self.layouts, self.network = subcommand, tuple(layouts), network

    @property
    def by_the_dag(self) -> bool:
        """Whether the DAG does this step itself (today's osctld: no converter can)."""
        return self.container.get("protocol") == "tokens"

    def arguments(self, settings) -> list[str]:
        """The converter's arguments of this step."""
        if self.subcommand == "stage":
            return [*convert_options(self.container, settings, self.network), "-p", str(self.nodes.port or 22),
                    str(self.ctid), settings.destination]
        return [str(self.ctid)]

    def done(self, step: str | None) -> bool:
        """Whether the recorded step means this subcommand already happened."""
        return step is not None and ORDER.index(step) >= ORDER.index(self.subcommand)

    def probe(self, context) -> Plan:
        if self.container["layout"] not in self.layouts:
            return Plan(details={"ctid": self.ctid, "note": f"{self.container['layout']}: not moved by this task"})
        settings = self.settings(context)
        if settings.offline:
            return Plan(details={"ctid": self.ctid, "note": "offline path: exported, copied and imported instead"})
        step = self.nodes.migration_step(settings.source, self.ctid)
        if self.done(step):
            return Plan(details={"ctid": self.ctid, "converter_step": step})
        if self.by_the_dag:
            return Plan([f"{settings.source}: {self._own_step(settings)}"], details={"ctid": self.ctid, "migration_step": step})
        command = shlex.join(["vpsadminos-convert", "vz6", "migrate", self.subcommand, *self.arguments(settings)])
        return Plan([f"{settings.source}: {command}"], details={"ctid": self.ctid, "converter_step": step})

    def _own_step(self, settings) -> str:
        """The step the DAG does itself, as the plan shows it."""
        dst, ctid = settings.destination, self.ctid
        if self.subcommand == "stage":
            net = "bridged to " + settings.bridge_link if settings.veth_type == "bridge" else "routed via osrtr0"
            return (f"ssh -l osctl-ct-receive {dst} receive skel {settings.pool} < the skel of container {ctid} "
                    f"(user default, group /default, veth {net})")
        rsync = f"rsync -rlptgoDHX --numeric-ids --inplace --delete-after {self._source_dir()}/ {dst}:<its staged root>/"
        if self.subcommand == "sync":
            return rsync
        return (f"vzctl stop {ctid}; {rsync}; ssh -l osctl-ct-receive {dst} receive transfer <its token>; "
                f"osctl ct chown {ctid} {self.container['owner']}" + ("; osctl ct start" if self.container["running"]
                                                                       else ""))

    def _source_dir(self) -> str:
        return self.container["root"] if self.container["layout"] == "ploop" else self.container["private"]

    def apply(self, context, plan: Plan) -> dict | None:
        settings = self.settings(context)
        port = str(self.nodes.port or 22)
        if self.by_the_dag:
            args = self._own_arguments(settings, port)
        else:
            args = ["convert", self.subcommand, *self.arguments(settings)]
            if self.subcommand == "transfer":  # the wrapper stops it, hands it over, sets its owner, starts it
                args += [settings.destination, port, self.container["owner"],
                         "yes" if self.container["running"] else "no"]
        return self.remote_job(context, self.nodes, settings.source, self.script, args, plan)

    def _own_arguments(self, settings, port: str) -> list[str]:
        """migrate.sh's arguments of the step the DAG does itself; stage first puts the skel
        archive on the OpenVZ node."""
        from openvz import STAGED_DIR

        src, dst, record = settings.source, settings.destination, f"{STAGED_DIR}/{self.ctid}"
        if self.subcommand == "stage":  # renamed into place: a first attempt's job may still read the old one
            skel = shlex.quote(f"{record}.skel")
            self.nodes.run(src, f"mkdir -p {STAGED_DIR} && cat > {skel}.new && mv {skel}.new {skel}",
                           stdin=self._skel(settings))
            return ["skel", str(self.ctid), f"{record}.skel", dst, port, settings.pool, record]
        there = self.nodes.os_container(dst, self.ctid)
        if there is None:
            raise StepError(f"{dst} has no staged container {self.ctid}")
        args = [str(self.ctid), self._source_dir(), dst, port, settings.pool, there["rootfs"], self.container["layout"]]
        if self.subcommand == "sync":
            return ["rsync-sync", *args, record]
        return ["rsync-transfer", *args, self.container["owner"], "yes" if self.container["running"] else "no", record]

    def _skel(self, settings) -> bytes:
        from openvz.containers import parse_conf
        from openvz.skel import container_config, skel_archive

        conf = parse_conf(self.nodes.ct_conf(settings.source, self.ctid) or "", self.ctid)
        arch = self.nodes.run(settings.source, ["uname", "-m"]).stdout.strip()
        config = container_config(conf, arch=arch, veth_type=settings.veth_type, bridge_link=settings.bridge_link)
        return skel_archive(self.ctid, config)

    def job_done(self, context, plan: Plan, result) -> dict:
        what = f"{self.subcommand} by the DAG" if self.by_the_dag else f"vz6 migrate {self.subcommand}"
        self.migrate_job_done(result, what, cut="airlift: stream into")
        done: dict = {"ctid": self.ctid}
        if self.subcommand == "stage" and not self.by_the_dag:
            from openvz.report import parse

            done["report"] = parse(result.stdout)
        downtime = re.search(r"^airlift: downtime ([\d.]+) s$", result.stdout, re.MULTILINE)
        if downtime:
            done["downtime_seconds"] = float(downtime.group(1))
        return done

    def verify(self, context, plan: Plan) -> Plan:
        step = self.nodes.migration_step(self.settings(context).source, self.ctid)
        return Plan() if self.done(step) else Plan([f"the migration records {step!r} after {self.subcommand}"])
