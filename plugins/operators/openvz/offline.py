"""The offline path (`path: offline`), for stopped or awkward containers: after the review and
inside the window, the container is stopped and exported on the OpenVZ node (ct.export), the
archive copied to the vpsAdminOS node and checked (ct.copy-archive), and imported and started
there (ct.import). Verify, cleanup and undo are the live path's. Each step is a remote job of
include/scripts/openvz/migrate.sh; on the live path these tasks do nothing."""

from __future__ import annotations

import re

from airlift.errors import StepError
from openvz import IMPORT_SUBDIR, export_path
from operators.openvz.common import MigrationStepOperator
from operators.openvz.vz6_convert import convert_options
from operators.runbook_step import Plan


def import_dir(nodes, settings) -> str:
    """Where the copies land on the vpsAdminOS node: under the destination pool's mountpoint."""
    mountpoint = nodes.zfs_get(settings.destination, settings.pool, "mountpoint") or f"/{settings.pool}"
    return f"{mountpoint.rstrip('/')}/{IMPORT_SUBDIR}"


def archives(nodes, settings, ctid: int) -> list[tuple[str, str]]:
    """The offline path's files of a container still on the nodes: (host, path) of the export
    (with its checksum, stop time and unfinished parts) and of the copy; none on the live path."""
    if not settings.offline:
        return []
    found = []
    for host, directory in ((settings.source, export_path(ctid).rpartition("/")[0]),
                            (settings.destination, import_dir(nodes, settings))):
        listing = nodes.run(host, ["find", directory, "-maxdepth", "1", "-name", f"{int(ctid)}.tar*"], check=False)
        found += [(host, path) for path in sorted(listing.stdout.split())]
    return found


class OfflineStepOperator(MigrationStepOperator):
    """What the three steps share: nothing to do on the live path or once the container was
    imported; the job's output in the task log; its failure as the script's last lines."""

    rerun_failed_job = True  # each mode checks what an earlier attempt left and continues from there
    done_once_imported = True  # nothing to do once the container is on the destination (import: its own probe)
    cut: str | None = None  # the script's line for a broken stream: retried, the retry continues

    def __init__(self, **kwargs):
        kwargs.setdefault("script", "migrate.sh")
        super().__init__(**kwargs)

    def import_path(self, settings) -> str:
        return f"{import_dir(self.nodes, settings)}/{self.ctid}.tar"

    def probe(self, context) -> Plan:
        settings = self.settings(context)
        if not settings.offline:
            return Plan(details={"ctid": self.ctid, "note": "live path: not used"})
        there = self.nodes.os_container(settings.destination, self.ctid)
        if there is not None and there.get("state") != "staged" and self.done_once_imported:
            return Plan(details={"ctid": self.ctid, "note": f"imported on {settings.destination} ({there['state']})"})
        return self.offline_probe(settings, there)

    def offline_probe(self, settings, there: dict | None) -> Plan:
        raise NotImplementedError

    def job_done(self, context, plan: Plan, result) -> dict:
        self.migrate_job_done(result, self.step, cut=self.cut)
        return {"ctid": self.ctid, **self.parse(result.stdout)}

    def parse(self, output: str) -> dict:
        return {}


class ExportOperator(OfflineStepOperator):
    """ct.export: `vpsadminos-convert vz6 export` of the container on the OpenVZ node, with the
    layout and network options the live path's stage takes (ZFS: `--zfs`, streams of the
    dataset and its descendants; simfs/ploop: a tar of the root file system). A running
    container is stopped first, so the export is consistent and nothing written after it is
    lost: its downtime starts here and lasts until the import starts it. The archive is
    written as <ctid>.tar.part and renamed once whole, beside its sha256; an archive already
    there is this step done, unless the container runs again (then it is stale and made anew)."""

    def offline_probe(self, settings, there) -> Plan:
        path, src = export_path(self.ctid), settings.source
        running = self.nodes.vz_status(src, self.ctid)["running"]
        if not running and self.nodes.read_file(src, f"{path}.sha256"):
            return Plan(details={"ctid": self.ctid, "archive": path})
        stop = "vzctl stop (the downtime starts); " if running else ""
        return Plan([f"{src}: {stop}vpsadminos-convert vz6 export "
                     f"{' '.join(self.options(settings))} {self.ctid} {path}"], details={"ctid": self.ctid})

    def options(self, settings) -> list[str]:
        return convert_options(self.container, settings, self.container.get("network"))

    def apply(self, context, plan: Plan) -> dict | None:
        settings = self.settings(context)
        args = ["export", str(self.ctid), export_path(self.ctid), *self.options(settings)]
        return self.remote_job(context, self.nodes, settings.source, self.script, args, plan)

    def parse(self, output: str) -> dict:
        found = {"archive": export_path(self.ctid)}
        down = re.search(r"^airlift: down since ([\d.]+)$", output, re.MULTILINE)
        if down:
            found["down_since"] = float(down.group(1))
        return found


class CopyArchiveOperator(OfflineStepOperator):
    """ct.copy-archive: the archive to the vpsAdminOS node with rsync (a cut copy continues
    where it stopped, `--append-verify`), into <ctid>.tar.part under the destination pool's
    mountpoint; its sha256 there must equal the export's before it is renamed."""

    cut = "was cut"

    def offline_probe(self, settings, there) -> Plan:
        src, dst, target = settings.source, settings.destination, self.import_path(settings)
        want = (self.nodes.read_file(src, f"{export_path(self.ctid)}.sha256") or "").strip()
        if want and (self.nodes.read_file(dst, f"{target}.sha256") or "").strip() == want:
            return Plan(details={"ctid": self.ctid, "archive": target, "sha256": want})
        return Plan([f"{src}: rsync {export_path(self.ctid)} {dst}:{target}, sha256 compared"],
                    details={"ctid": self.ctid})

    def apply(self, context, plan: Plan) -> dict | None:
        settings = self.settings(context)
        args = ["copy-archive", export_path(self.ctid), settings.destination, str(self.nodes.port or 22),
                self.import_path(settings)]
        return self.remote_job(context, self.nodes, settings.source, self.script, args, plan)

    def parse(self, output: str) -> dict:
        found = re.search(r"sha256 ([0-9a-f]{64})$", output, re.MULTILINE)
        return {"sha256": found.group(1)} if found else {}


class ImportOperator(OfflineStepOperator):
    """ct.import: `osctl ct import --as-user <owner> --as-group /default` of the copied archive
    on the vpsAdminOS node (the owner's user comes from the prepare group; osctld refuses the
    converter's group name `default`), the CPU limit the converter ignores, and the start if
    it ran on OpenVZ. The downtime is from the export's stop to this start."""

    done_once_imported = False  # its own probe reads the imported container

    def offline_probe(self, settings, there) -> Plan:
        ct, dst, changes = self.container, settings.destination, []
        if there is None:
            changes.append(f"{dst}: osctl ct import --as-user {ct['owner']} --as-group /default "
                           f"{self.import_path(settings)}")
        elif there.get("state") == "staged":
            raise StepError(f"{dst}: container {self.ctid} is staged by the live path; cancel it first")
        limit = ct.get("cpu_limit")
        if limit and (there is None or self.nodes.cpu_quota(dst, self.ctid) != limit * 1000):
            changes.append(f"{dst}: osctl ct set cpu-limit {self.ctid} {limit}")
        if ct["running"] and (there or {}).get("state") != "running":
            changes.append(f"{dst}: osctl ct start {self.ctid}")
        return Plan(changes, details={"ctid": self.ctid})

    def apply(self, context, plan: Plan) -> dict | None:
        settings, ct = self.settings(context), self.container
        args = ["import", str(self.ctid), self.import_path(settings), ct["owner"], str(ct.get("cpu_limit") or "-"),
                "yes" if ct["running"] else "no"]
        return self.remote_job(context, self.nodes, settings.destination, self.script, args, plan)

    def parse(self, output: str) -> dict:
        up = re.search(r"^airlift: up at ([\d.]+)$", output, re.MULTILINE)
        return {"up_at": float(up.group(1))} if up else {}

    def job_done(self, context, plan: Plan, result) -> dict:
        done = super().job_done(context, plan, result)
        group = self.task_id.rpartition(".")[0]
        exported = context["ti"].xcom_pull(task_ids=f"{group}.export" if group else "export",
                                           map_indexes=context["ti"].map_index, default=None) or {}
        if "up_at" in done and exported.get("down_since") and self.container["running"]:
            done["downtime_seconds"] = round(done["up_at"] - exported["down_since"], 3)
            self.log.info("container %s: downtime %.3f s (export, copy, import)", self.ctid, done["downtime_seconds"])
        return done
