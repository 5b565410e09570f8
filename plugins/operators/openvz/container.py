"""Each container before the review: can it be converted (ct.preflight), what of its config
the converter takes and what is done by hand (ct.config-report), its interconnect networks
(ct.network), its owner's user namespace and CPU limit on the staged copy (ct.config-report,
after the stage), and the one review of the whole batch (ct.review)."""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowSkipException

from airlift.errors import StepError
from openvz import export_path
from operators.openvz.common import MigrationStepOperator
from operators.runbook_step import Plan

ID_BLOCKS = 8  # 8 blocks of 65536 = 524288 user/group IDs per member (seed 002)
NS_SIZE = 524288

# What the converter takes from an OpenVZ config (research vpsadminos.md §2.3); everything
# else it ignores.
CONSUMED = ("VE_ROOT", "VE_PRIVATE", "VE_LAYOUT", "NETFILTER", "OSTEMPLATE", "HOSTNAME", "NAMESERVER", "ONBOOT",
            "PHYSPAGES", "SWAPPAGES", "IP_ADDRESS", "DEVICES")


class PreflightOperator(MigrationStepOperator):
    """Refuses what cannot be converted: a distribution vpsAdminOS does not support (the
    runbook's list), a ZFS layout other than a dataset of its own with the root filesystem in
    private/, networking other than venet; and a container id the destination already holds
    for another container. A refused container is skipped with the reason (it stays untouched
    and running); so is one a earlier run already moved."""

    def execute(self, context) -> dict:
        with self.step_errors():
            ct, settings = self.container, self.settings(context)
            if ct.get("migrated"):
                raise AirflowSkipException(f"container {ct['ctid']} was moved before: {ct['migrated']}")
            if ct["refused"]:
                raise AirflowSkipException(f"container {ct['ctid']} is refused and stays on {settings.source} "
                                           "untouched: " + "; ".join(ct["refused"]))
            there = self.nodes.os_container(settings.destination, self.ctid)
            if there and self.nodes.migration_step(settings.source, self.ctid) is None and not (
                    settings.offline and self.nodes.read_file(settings.source, f"{export_path(self.ctid)}.sha256")):
                raise StepError(f"{settings.destination} already has a container {self.ctid} ({there.get('state')}) "
                                f"that no migration of {settings.source} staged: refusing to touch it")
            return self.record(Plan(), applied=False, ctid=self.ctid)


class ConfigReportOperator(MigrationStepOperator):
    """What the converter takes from the container's config and what it ignores (it prints the
    same lists at stage, which the review shows), and what the runbook leaves to be done by
    hand, which this DAG does: DISKSPACE as the root dataset's refquota (set by cleanup, after
    the data is in, as vpsAdmin's own move did) and CPULIMIT as osctl's cpu-limit (set on the
    staged container)."""

    def execute(self, context) -> dict:
        with self.step_errors():
            from openvz.containers import parse_conf

            settings = self.settings(context)
            conf = parse_conf(self.nodes.ct_conf(settings.source, self.ctid) or "", self.ctid)
            ct = self.container
            by_hand = []
            if ct["disk_quota"]:
                by_hand.append(f"DISKSPACE -> refquota={ct['disk_quota']} on {settings.pool}/ct/{self.ctid}")
            if ct["cpu_limit"]:
                by_hand.append(f"CPULIMIT -> osctl ct set cpu-limit {self.ctid} {ct['cpu_limit']}")
            report = {"consumed": sorted(k for k in conf if k in CONSUMED),
                      "ignored": sorted(k for k in conf if k not in CONSUMED), "by_hand": by_hand}
            self.log.info("container %s: consumed %s\nignored %s\ndone by this DAG: %s", self.ctid,
                          ", ".join(report["consumed"]), ", ".join(report["ignored"]), "; ".join(by_hand) or "nothing")
            return self.record(Plan(), applied=False, ctid=self.ctid, **report)


class NetworkOperator(MigrationStepOperator):
    """venet0 becomes a veth `eth0`. Bridged: linked to `bridge_link`. Routed: the addresses
    are routed through an interconnect network per container, a /30 for IPv4 and a /126 for
    IPv6 cut from the pools in the form (seed 002: the host's veth gets the first address, the
    container's the second); those in use are read back from the vpsAdminOS nodes, and the
    whole batch is allocated in id order, so parallel tasks and reruns give the same answer.
    Today's osctld (since 2018-09 upstream) routes every container via the host's osrtr0:
    nothing to allocate."""

    def execute(self, context) -> dict:
        with self.step_errors():
            settings = self.settings(context)
            if settings.veth_type == "bridge":
                return self.record(Plan(), applied=False, ctid=self.ctid, netif="bridge", link=settings.bridge_link)
            if self.container.get("protocol") == "tokens":
                self.log.info("container %s: routed via the host's osrtr0 (today's osctld has no interconnect "
                              "networks)", self.ctid)
                return self.record(Plan(), applied=False, ctid=self.ctid, netif="routed", via={})
            from openvz import network

            batch = [ct for ct in context["ti"].xcom_pull(task_ids="discover") or []
                     if not ct["refused"] and not ct.get("migrated")]
            existing, taken = {}, []
            for node in settings.interconnect_nodes:
                for netif in self.nodes.osctl_json(node, ["ct", "netif", "ls"]) or []:
                    via = netif.get("via") or {}
                    # osctl keys them by IP version ("4"), the allocation by "v4"
                    nets = {f"v{str(v).lstrip('v')}": n["network"] if isinstance(n, dict) else n
                            for v, n in via.items() if n}
                    ctid = int(netif.get("ctid") or netif.get("id") or 0)
                    if node == settings.destination and ctid in {ct["ctid"] for ct in batch}:
                        existing[ctid] = nets
                    else:
                        taken += nets.values()
            versions = {ct["ctid"]: {v for v, addrs in ct["addresses"].items() if addrs} for ct in batch}
            try:
                nets = network.allocate([ct["ctid"] for ct in batch], existing, taken, settings.network_v4,
                                        settings.network_v6, versions)
            except ValueError as exc:
                raise StepError(str(exc)) from exc
            mine = nets.get(self.ctid, {})
            self.log.info("container %s: interconnect %s", self.ctid,
                          ", ".join(f"{v} {n} (host {network.host_and_ct(n)[0]}, container {network.host_and_ct(n)[1]})"
                                    for v, n in sorted(mine.items())) or "none (no addresses)")
            return self.record(Plan(), applied=False, ctid=self.ctid, netif="routed", via=mine)



class ConfigureOperator(MigrationStepOperator):
    """On the vpsAdminOS node, for the staged container: its owner's user (one osctl user per
    owner with 524288 IDs from the `default` range, shared by all the owner's containers; the
    converter gives every container the user `default`; the container is moved to it at the
    transfer, as osctl changes a user only on a stopped container) and the CPU limit the
    converter ignores (CPULIMIT, percent of one CPU). On the offline path nothing is staged:
    the user is made here and the import sets the CPU limit."""

    def _cpu_limit(self, settings) -> int | None:
        return None if settings.offline else self.container.get("cpu_limit")

    def probe(self, context) -> Plan:
        settings = self.settings(context)
        dst, owner, limit = settings.destination, self.container["owner"], self._cpu_limit(settings)
        changes = []
        if owner not in {u["name"] for u in self.nodes.osctl_json(dst, ["user", "ls"]) or []}:
            changes.append(f"{dst}: osctl id-range allocate default --block-count {ID_BLOCKS}; osctl user new {owner} "
                           f"({NS_SIZE} IDs)")
        if limit:
            if self.nodes.os_container(dst, self.ctid) is None:
                if not self.dry_run:
                    raise StepError(f"{dst} has no staged container {self.ctid}")
                changes.append(f"{dst}: osctl ct set cpu-limit {self.ctid} {limit} (once staged)")
            elif self.nodes.cpu_quota(dst, self.ctid) != limit * 1000:  # percent of the default 100000 us period
                changes.append(f"{dst}: osctl ct set cpu-limit {self.ctid} {limit}")
        return Plan(changes)

    def apply(self, context, plan: Plan) -> dict:
        settings = self.settings(context)
        dst, owner, limit = settings.destination, self.container["owner"], self._cpu_limit(settings)
        if owner not in {u["name"] for u in self.nodes.osctl_json(dst, ["user", "ls"]) or []}:
            block = self.nodes.osctl_json(dst, ["id-range", "allocate", "default", "--block-count", str(ID_BLOCKS),
                                                "--owner", f"user:{owner}"])
            first = int(block["first_id"])
            made = self.nodes.osctl(dst, ["user", "new", "--map-uid", f"0:{first}:{NS_SIZE}", "--map-gid",
                                          f"0:{first}:{NS_SIZE}", owner], check=False)
            if not made.ok:  # another container of the same owner made it meanwhile: give the IDs back
                self.nodes.osctl(dst, ["id-range", "free", "default", "--block-index", str(block["block_index"])])
                if owner not in {u["name"] for u in self.nodes.osctl_json(dst, ["user", "ls"]) or []}:
                    raise StepError(f"{dst}: osctl user new {owner} failed: {made.tail()}")
        if limit:
            self.nodes.osctl(dst, ["ct", "set", "cpu-limit", str(self.ctid), str(limit)])
        return {}


class ReviewPlanOperator(MigrationStepOperator):
    """Collects the batch for the one review: every container's converted configuration (the
    converter's report at stage, its network, what is done by hand) and the refused ones. Its
    value is the list of staged containers the move maps over; the table goes to XCom `plan`
    for the approval's body."""

    def __init__(self, *, stage_task: str, report_task: str, network_task: str, **kwargs):
        super().__init__(**kwargs)
        self.stage_task, self.report_task, self.network_task = stage_task, report_task, network_task

    def execute(self, context) -> list[dict]:
        ti = context["ti"]
        found = ti.xcom_pull(task_ids="discover")
        if found is None:
            raise AirflowSkipException("discover did not finish: nothing to review")

        def by_ctid(task_id):
            # tasks of a mapped group: one pull per container (its map index is its place in
            # discover's list); a skipped or failed one has none
            records = [ti.xcom_pull(task_ids=task_id, map_indexes=i, default=None) for i in range(len(found))]
            return {r["ctid"]: r for r in records if isinstance(r, dict) and "ctid" in r}

        staged, reports, nets = by_ctid(self.stage_task), by_ctid(self.report_task), by_ctid(self.network_task)
        lines = ["| CT | layout | network | converter took | ignored | done by this DAG |", "|---|---|---|---|---|---|"]
        moving = []
        for ct in found:
            if ct["ctid"] not in staged:
                continue
            report, net = reports.get(ct["ctid"], {}), nets.get(ct["ctid"], {})
            moving.append({**ct, "network": net})  # the offline path's export takes the network options
            converted = staged[ct["ctid"]].get("report") or {}
            network = ", ".join(f"via {n}" for n in (net.get("via") or {}).values()) or net.get("netif", "-")
            lines.append(f"| {ct['ctid']} | {ct['layout']} | {network} | "
                         f"{', '.join(converted.get('consumed') or report.get('consumed') or [])} | "
                         f"{', '.join(converted.get('ignored') or report.get('ignored') or [])} | "
                         f"{'; '.join(report.get('by_hand') or []) or '-'} |")
        others = [f"- {ct['ctid']}: " + ("refused: " + "; ".join(ct["refused"]) if ct["refused"]
                                         else f"moved before ({ct['migrated']})" if ct.get("migrated") else "not staged")
                  for ct in found if ct["ctid"] not in staged]
        from operators.runbook_step import plan_mode

        if self.settings(context).offline:
            done = "to be exported, copied and imported in the window (offline)"
        else:
            done = "to be staged (plan mode)" if plan_mode(context) else "staged"
        text = (f"**{len(moving)} container(s) {done}** on {self.settings(context).destination}:\n\n" + "\n".join(lines)
                + ("\n\nNot moving:\n" + "\n".join(others) if others else ""))
        self.log.info("review:\n%s", text)
        ti.xcom_push(key="plan", value=text)
        self.close()
        return moving
