"""After the review: wait for the maintenance window (fleet.downtime-window), check the moved
container (ct.verify), clean up (ct.cleanup), and undo a move that failed (ct.cancel)."""

from __future__ import annotations

import shlex
from datetime import UTC, datetime, timedelta

from airflow.sdk.exceptions import AirflowSkipException

from airlift.errors import StepError
from openvz import MIGRATED_DIR, STAGED_DIR, STATE_DIR
from operators.openvz.common import MigrationStepOperator
from operators.openvz.offline import archives
from operators.runbook_step import Plan


class WindowOperator(MigrationStepOperator):
    """Transfers (the downtime) run only inside the maintenance window of the form (a daily
    span of local time, over midnight if it ends before it starts), and only when the window
    still has the time the transfer needs: the bytes it moves at `transfer_rate_mib` (the last
    sync pass of a live ZFS move; the whole container otherwise). Else this task waits
    deferred for the next opening, holding no worker slot; a transfer longer than the window
    fails here, before anything stops. With `stop_on_first_error`, a container whose batch
    already has a failure does not start its transfer: it fails here and is cancelled."""

    def execute(self, context, event=None) -> dict:
        with self.step_errors():
            settings = self.settings(context)
            if settings.stop_on_first_error:
                failed = self._failures(context)
                if failed:
                    raise StepError(f"not moving container {self.ctid}: {', '.join(failed)} failed in this run "
                                    "(stop_on_first_error); it is cancelled and stays where it was")
            if settings.window is None:
                return self.record(Plan(), applied=False, ctid=self.ctid, window="none: at once")
            from openvz.window import opens

            start, end, zone = settings.window
            needs = timedelta(seconds=self._bytes_to_move(context, settings) / settings.transfer_rate_bytes)
            window = f"{start:%H:%M}-{end:%H:%M} {zone}"
            try:
                when = opens(datetime.now(UTC), start, end, zone, needs)
            except ValueError as exc:
                raise StepError(f"container {self.ctid} needs about {needs} to transfer: {exc}") from exc
            if when is None:
                return self.record(Plan(), applied=False, ctid=self.ctid, window=window,
                                   needs_seconds=round(needs.total_seconds()))
            from airflow.providers.standard.triggers.temporal import DateTimeTrigger

            self.log.info("container %s: the window %s with %s left for its transfer opens at %s; waiting deferred",
                          self.ctid, window, needs, when)
            self.defer(trigger=DateTimeTrigger(moment=when), method_name="execute")

    def _bytes_to_move(self, context, settings) -> int:
        if not settings.offline and self.container["layout"] == "zfs":
            group = self.task_id.rpartition(".")[0]
            synced = context["ti"].xcom_pull(task_ids=f"{group}.sync_zfs" if group else "sync_zfs",
                                             map_indexes=context["ti"].map_index, default=None) or {}
            if synced.get("passes"):
                return synced["passes"][-1]
        return int(self.container.get("size") or 0)

    def _failures(self, context) -> list[str]:
        ti = context["ti"]
        states = ti.get_task_states(dag_id=self.dag_id, run_ids=[context["run_id"]]).get(context["run_id"], {})
        return sorted(key for key, state in states.items() if state == "failed"
                      and not key.startswith(f"{self.task_id}_{ti.map_index}"))


def records(ctid: int) -> list[str]:
    """A migration's records on the OpenVZ node: the converter's state file, or the DAG's own
    record and skel archive (today's osctld)."""
    return [f"{STATE_DIR}/{int(ctid)}.state", f"{STAGED_DIR}/{int(ctid)}", f"{STAGED_DIR}/{int(ctid)}.skel"]


def _was_snapshot(name: str) -> bool:
    snap = name.partition("@")[2]
    return snap.startswith(("airlift-", "converter-migrate-"))


class VerifyOperator(MigrationStepOperator):
    """The moved container on the vpsAdminOS node: running if it ran before (stopped if not),
    its addresses, hostname, resolvers, memory limits (from vSwap), its owner's user namespace
    of 524288 IDs, and its root filesystem equal to the source's stopped one, file by file
    (type, mode, owner, size, link target, content; include/scripts/openvz/manifest.sh on
    both). A difference fails it, and the move is undone (ct.cancel)."""

    def execute(self, context) -> dict:
        from operators.runbook_step import plan_mode

        with self.step_errors():
            settings = self.settings(context)
            if plan_mode(context):
                return self.record(Plan([f"{settings.destination}: check container {self.ctid}: state, addresses, "
                                         "hostname, resolvers, memory, user namespace, every file"]),
                                   applied=False, ctid=self.ctid)
            problems = self.check(settings)
            if problems:
                raise StepError(f"container {self.ctid} on {settings.destination}:\n- " + "\n- ".join(problems[:20]))
            self.log.info("container %s on %s: verified", self.ctid, settings.destination)
            return self.record(Plan(), applied=False, ctid=self.ctid, verified=True)

    def check(self, settings) -> list[str]:
        from openvz.containers import parse_conf

        ct, dst, nodes = self.container, settings.destination, self.nodes
        there = nodes.os_container(dst, self.ctid)
        if there is None:
            return ["it is not there"]
        problems = []
        want_state = "running" if ct["running"] else "stopped"
        if there.get("state") != want_state:
            problems.append(f"state {there.get('state')}, expected {want_state}")
        if there.get("hostname") != ct["hostname"]:
            problems.append(f"hostname {there.get('hostname')!r}, expected {ct['hostname']!r}")
        if ct["nameservers"] and list(there.get("dns_resolvers") or []) != ct["nameservers"]:
            problems.append(f"resolvers {there.get('dns_resolvers')}, expected {ct['nameservers']}")
        if there.get("user") != ct["owner"]:
            problems.append(f"user {there.get('user')}, expected {ct['owner']}")
        else:
            mapped = nodes.osctl(dst, ["user", "map", ct["owner"]]).stdout
            if f"{524288}" not in mapped:
                problems.append(f"user {ct['owner']}'s map is not 524288 IDs:\n{mapped}")
        have = {a.split("/")[0] for netif in nodes.osctl_json(dst, ["ct", "netif", "ls", str(self.ctid)]) or []
                for addrs in (netif.get("ip_addresses") or {}).values() for a in addrs}
        want = {a.split("/")[0] for addrs in ct["addresses"].values() for a in addrs}
        if want - have:
            problems.append(f"addresses missing: {', '.join(sorted(want - have))}")
        conf = parse_conf(nodes.ct_conf(settings.source, self.ctid) or "", self.ctid)
        if "PHYSPAGES" in conf:
            limit = int(conf["PHYSPAGES"].split(":")[-1]) * 4096
            params = {p.get("parameter") or p.get("name"): p.get("value")
                      for p in nodes.osctl_json(dst, ["ct", "cgparams", "ls", str(self.ctid)]) or []}
            value = params.get("memory.limit_in_bytes")
            value = value[0] if isinstance(value, list) else value
            if str(value) != str(limit):
                problems.append(f"memory.limit_in_bytes {value}, expected {limit}")
        problems += self.compare_files(settings, there)
        return problems

    def compare_files(self, settings, there: dict) -> list[str]:
        from airlift.sql import INCLUDE_DIR

        script = (INCLUDE_DIR / "scripts" / "openvz" / "manifest.sh").read_text()
        ct, nodes = self.container, self.nodes
        if ct["layout"] == "zfs":
            source_dir = nodes.zfs_get(settings.source, ct["dataset"], "mountpoint")
            dest_dir = nodes.zfs_get(settings.destination, f"{settings.pool}/ct/{self.ctid}", "mountpoint")
        else:
            source_dir, dest_dir = ct["private"], there.get("rootfs")
        mounted = None
        if ct["layout"] == "ploop":
            mounted = nodes.vz_status(settings.source, self.ctid)["mounted"]
            if not mounted:
                nodes.run(settings.source, ["vzctl", "mount", str(self.ctid)])
            source_dir = ct["root"]
        try:
            source = nodes.run_script(settings.source, script, [source_dir], timeout=3600).stdout.splitlines()
        finally:
            if mounted is False:
                nodes.run(settings.source, ["vzctl", "umount", str(self.ctid)])
        dest = nodes.run_script(settings.destination, script, [dest_dir], timeout=3600).stdout.splitlines()
        if source == dest:
            self.log.info("container %s: %d entries equal on both nodes", self.ctid, len(source))
            return []
        only_src, only_dst = sorted(set(source) - set(dest)), sorted(set(dest) - set(source))
        return ([f"differs on the destination: {line}" for line in only_src[:10]]
                + [f"only on the destination: {line}" for line in only_dst[:10]])


class CleanupOperator(MigrationStepOperator):
    """After a verified move: the refquota from DISKSPACE (set last, once the data is in), the
    migration snapshots removed on both nodes, the converter's state closed (`vz6 migrate
    cleanup` for simfs/ploop; for ZFS, whose streams this DAG sent itself, the state file its
    stage left is removed, as is the DAG's own record where it staged against today's osctld), the container recorded as moved on the OpenVZ node
    (/var/lib/airlift/openvz/migrated/<ctid>) so later runs leave it alone, and the source
    deleted only when `delete_source` says so; else it stays there, stopped."""

    def probe(self, context) -> Plan:
        settings = self.settings(context)
        ct, src, dst, nodes = self.container, settings.source, settings.destination, self.nodes
        target = f"{settings.pool}/ct/{self.ctid}"
        changes = []
        if ct["disk_quota"] and nodes.zfs_get(dst, target, "refquota") != str(ct["disk_quota"]):
            changes.append(f"{dst}: zfs set refquota={ct['disk_quota']} {target}")
        changes += [f"{dst}: zfs destroy {s}" for s in nodes.zfs_snapshots(dst, target) if _was_snapshot(s)]
        if ct["layout"] == "zfs":
            changes += [f"{src}: zfs destroy {s}" for s in nodes.zfs_snapshots(src, ct["dataset"]) if _was_snapshot(s)]
        step = nodes.migration_step(src, self.ctid)
        if step is not None:
            if self._converter_cleans_up():
                changes.append(f"{src}: vpsadminos-convert vz6 migrate cleanup "
                               f"{'--delete ' if settings.delete_source else ''}{self.ctid}")
            else:
                changes.append(f"{src}: rm {' '.join(records(self.ctid))} (the stage's record)")
        if settings.delete_source and nodes.vz_status(src, self.ctid)["exists"]:
            changes.append(f"{src}: vzctl destroy {self.ctid}" + (f"; zfs destroy -r {ct['dataset']}"
                                                                  if ct["layout"] == "zfs" else ""))
        changes += [f"{host}: rm {path}" for host, path in archives(nodes, settings, self.ctid)]
        if nodes.read_file(src, f"{MIGRATED_DIR}/{self.ctid}") is None:
            changes.append(f"{src}: record container {self.ctid} as moved to {dst}")
        return Plan(changes, details={"ctid": self.ctid})

    def apply(self, context, plan: Plan) -> dict:
        settings = self.settings(context)
        ct, src, dst, nodes = self.container, settings.source, settings.destination, self.nodes
        target = f"{settings.pool}/ct/{self.ctid}"
        if ct["disk_quota"]:
            nodes.run(dst, ["zfs", "set", f"refquota={ct['disk_quota']}", target])
        for snap in (s for s in nodes.zfs_snapshots(dst, target) if _was_snapshot(s)):
            nodes.run(dst, ["zfs", "destroy", snap])
        if ct["layout"] == "zfs":
            for snap in (s for s in nodes.zfs_snapshots(src, ct["dataset"]) if _was_snapshot(s)):
                nodes.run(src, ["zfs", "destroy", snap])
        if self._converter_cleans_up() and nodes.migration_step(src, self.ctid) is not None:
            result = nodes.converter(src, ["vz6", "migrate", "cleanup", *(["--delete"] if settings.delete_source
                                                                           else []), str(self.ctid)])
            if not result.ok:
                raise StepError(f"{src}: vz6 migrate cleanup {self.ctid} failed: {result.tail()}")
        nodes.run(src, ["rm", "-f", *records(self.ctid)])
        if settings.delete_source and nodes.vz_status(src, self.ctid)["exists"]:
            nodes.run(src, ["vzctl", "destroy", str(self.ctid)])
            if ct["layout"] == "zfs":
                nodes.run(src, ["zfs", "destroy", "-r", ct["dataset"]])
        for host, path in archives(nodes, settings, self.ctid):
            nodes.run(host, ["rm", "-f", path])
        note = f"{dst} {datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}"
        nodes.run(src, f"mkdir -p {MIGRATED_DIR} && echo {shlex.quote(note)} > {MIGRATED_DIR}/{self.ctid}")
        return {}

    def _converter_cleans_up(self) -> bool:
        """The converter closes its own simfs/ploop migrations; the ZFS streams and today's
        osctld's staging were the DAG's, so it removes their records itself."""
        return self.container["layout"] != "zfs" and self.container.get("protocol") != "tokens"


class RollbackOperator(MigrationStepOperator):
    """Undoes a move that failed, from what the nodes say (ct.cancel; runs when a step of the
    container failed, or for every staged container when the review was rejected):
    before the handover, `vz6 migrate cancel` removes the staged container on the vpsAdminOS
    node, and the migration snapshots the converter's cancel leaves behind are removed here;
    after the handover (transfer or verify failed), the half-made container is removed from
    the vpsAdminOS node and the converter's state closed. Where the DAG staged it itself
    (today's osctld) there is no converter state to cancel with: the staged container is
    deleted (`osctl ct del -f`) and the DAG's record removed. Either way the container runs again
    on the OpenVZ node if it ran before.

    :param if_rejected: the review gate's task id: act only when it was rejected."""

    def __init__(self, *, if_rejected: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.if_rejected = if_rejected

    def execute(self, context):
        if self.if_rejected:
            from operators.runbook_step import ApprovalGateOperator

            if "Reject" not in ApprovalGateOperator.answered(context, self.if_rejected):
                raise AirflowSkipException("the review did not reject the move: nothing to cancel")
        return super().execute(context)

    def probe(self, context) -> Plan:
        settings = self.settings(context)
        ct, src, dst, nodes = self.container, settings.source, settings.destination, self.nodes
        there = nodes.os_container(dst, self.ctid)
        step = nodes.migration_step(src, self.ctid)
        changes = []
        if there is not None and step is None and nodes.read_file(src, f"{MIGRATED_DIR}/{self.ctid}"):
            return Plan(details={"ctid": self.ctid, "note": "moved before; nothing to undo"})
        if settings.offline and there is not None and there.get("state") != "staged":
            changes.append(f"{dst}: osctl ct del -f {self.ctid} (the imported container)")
        elif there is not None and there.get("state") != "staged" and step is not None:
            changes.append(f"{dst}: osctl ct del -f {self.ctid} (the half-made container)")
        elif step is not None and ct.get("protocol") != "tokens":
            changes.append(f"{src}: vpsadminos-convert vz6 migrate cancel --force {self.ctid}")
        elif there is not None and there.get("state") == "staged":  # preflight refused foreign ones: ours
            changes.append(f"{dst}: osctl ct del -f {self.ctid} (staged)")
        if step is not None:
            changes.append(f"{src}: rm {' '.join(records(self.ctid))}")
        if ct["layout"] == "zfs":
            changes += [f"{src}: zfs destroy {s}" for s in nodes.zfs_snapshots(src, ct["dataset"]) if _was_snapshot(s)]
        changes += [f"{host}: rm {path}" for host, path in archives(nodes, settings, self.ctid)]
        if ct["running"] and not nodes.vz_status(src, self.ctid)["running"]:
            changes.append(f"{src}: vzctl start {self.ctid} (it ran before the move)")
        return Plan(changes, details={"ctid": self.ctid})

    def apply(self, context, plan: Plan) -> dict:
        settings = self.settings(context)
        ct, src, dst, nodes = self.container, settings.source, settings.destination, self.nodes
        there = nodes.os_container(dst, self.ctid)
        step = nodes.migration_step(src, self.ctid)
        if there is not None and there.get("state") != "staged" and (step is not None or settings.offline):
            nodes.osctl(dst, ["ct", "del", "-f", str(self.ctid)])
        elif step is not None and ct.get("protocol") != "tokens":
            result = nodes.converter(src, ["vz6", "migrate", "cancel", "--force", str(self.ctid)])
            self.log.info("[%s] %s", src, result.tail())
        if (nodes.os_container(dst, self.ctid) or {}).get("state") == "staged":
            nodes.osctl(dst, ["ct", "del", "-f", str(self.ctid)])
        nodes.run(src, ["rm", "-f", *records(self.ctid)])
        if ct["layout"] == "zfs":
            for snap in (s for s in nodes.zfs_snapshots(src, ct["dataset"]) if _was_snapshot(s)):
                nodes.run(src, ["zfs", "destroy", snap])
        for host, path in archives(nodes, settings, self.ctid):
            nodes.run(host, ["rm", "-f", path])
        if ct["running"] and not nodes.vz_status(src, self.ctid)["running"]:
            nodes.run(src, ["vzctl", "start", str(self.ctid)])
        return {}
