"""ZfsSendOperator: a ZFS container's datasets from the OpenVZ node into its staged copy on
the vpsAdminOS node, as streams between the nodes."""

from __future__ import annotations

import re
from collections.abc import Sequence

from operators.openvz.common import MigrationStepOperator
from operators.runbook_step import Plan


class ZfsSendOperator(MigrationStepOperator):
    """`zfs send [-I] | ssh root@DST zfs recv -s` of the container's dataset and its
    descendants (include/scripts/openvz/migrate.sh), run as a remote job on the OpenVZ node:
    it outlives the worker, and a retry waits for a copy that still runs instead of starting a
    second send. Progress (bytes, percent, rate) is in the task log as the job prints it.

    `mode="sync"`, while the container runs: the first pass sends every snapshot the dataset
    has (older backups travel too) and a new one; each further pass sends what changed during
    the one before, until one moves at most `sync_delta_mib` (or `sync_passes` were made), so
    the downtime moves only the last small delta. `mode="final"`, in the window: one more pass
    while it runs, then stop, the last delta, the handover to osctld (`receive transfer`), the
    owner's user namespace (osctl changes it only on a stopped container) and the start; the
    downtime is measured from the stop to the start on the destination.

    An interrupted stream resumes from the destination's receive token (`zfs recv -s`), so no
    byte is sent twice and no partial dataset stays. The converter's own ZFS sync cannot do
    this: it refuses a second sync, sends through osctld's receive without `-s`, and its
    transfer resends everything since its one base snapshot. Today's converter's ZFS migrator
    does not run at all: it calls `migrate_ssh_cmd`, removed upstream in 2019 (research
    vpsadminos.md §1.5), so this path moves every ZFS container in both eras."""

    rerun_failed_job = True  # the script picks up where a failed attempt stopped

    def __init__(self, *, mode: str, layouts: Sequence[str] = ("zfs",), **kwargs):
        kwargs.setdefault("script", "migrate.sh")
        super().__init__(**kwargs)
        if mode not in ("sync", "final"):
            raise ValueError(f"no ZFS send mode {mode!r}")
        self.mode, self.layouts = mode, tuple(layouts)

    def target(self, settings) -> str:
        return f"{settings.pool}/ct/{self.ctid}"

    def probe(self, context) -> Plan:
        if self.container["layout"] not in self.layouts:
            return Plan(details={"ctid": self.ctid, "note": f"{self.container['layout']}: not moved by this task"})
        settings = self.settings(context)
        if settings.offline:
            return Plan(details={"ctid": self.ctid, "note": "offline path: exported, copied and imported instead"})
        there = self.nodes.os_container(settings.destination, self.ctid)
        if there is not None and there.get("state") != "staged":
            return Plan(details={"ctid": self.ctid, "destination_state": there.get("state")})
        what = (f"passes while it runs until one moves at most {settings.sync_delta_bytes >> 20} MiB"
                if self.mode == "sync" else "a last pass, stop, the final delta, `receive transfer`"
                + (" start" if self.container["running"] else ""))
        return Plan([f"{settings.source}: zfs send {self.container['dataset']} | ssh {settings.destination} "
                     f"zfs recv -s {self.target(settings)}: {what}"], details={"ctid": self.ctid})

    def apply(self, context, plan: Plan) -> dict | None:
        settings = self.settings(context)
        args = [f"zfs-{self.mode}", str(self.ctid), self.container["dataset"], settings.destination,
                str(self.nodes.port or 22), self.target(settings)]
        if self.mode == "sync":
            args += [str(settings.sync_delta_bytes), str(settings.sync_passes)]
        else:
            args += [self.container["owner"],
                     "yes" if self.container["running"] else "no"]
        return self.remote_job(context, self.nodes, settings.source, self.script, args, plan)

    def job_done(self, context, plan: Plan, result) -> dict:
        self.migrate_job_done(result, f"migrate.sh zfs-{self.mode}", cut="airlift: stream into")
        done: dict = {"ctid": self.ctid, "passes": [int(b) for b in re.findall(r"moved (\d+) bytes", result.stdout)]}
        downtime = re.search(r"^airlift: downtime ([\d.]+) s$", result.stdout, re.MULTILINE)
        if downtime:
            done["downtime_seconds"] = float(downtime.group(1))
        return done

    def verify(self, context, plan: Plan) -> Plan:
        if self.mode == "sync":
            return Plan()  # the next pass always has something: the container still writes
        return self.probe(context)
