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
    preflight) the plan lists the refusal.

    Then the database records what ZFS has: 2.0's migration left sharenfs '' (no value ZFS
    takes) on the pool and on every dataset in it, which the integrity check reports as false
    on every one; each row gets its dataset's value and whether it is inherited."""

    template_fields: Sequence[str] = (*RunbookStepOperator.template_fields, "settings")
    uses_step_sql = True

    def __init__(self, *, settings, **kwargs):
        super().__init__(**kwargs)
        self.settings = settings

    def probe(self, context) -> Plan:
        self.check_pool()
        name, fs = self.node["server_name"], self.node["filesystem"]
        where = f"{name}:{fs}"
        hypervisor_pool = self.node["role"] == PoolInventoryOperator.ROLES["hypervisor"]
        changes, wanted, details = [], None, {}
        if hypervisor_pool and not self.settings["sharenfs_hypervisor_pools"]:
            self.log.info("%s: a hypervisor pool, left alone (sharenfs_hypervisor_pools is off)", where)
            details["left_alone"] = "hypervisor pool"
        elif not self.settings["subnets"]:
            refusal = f"{where}: refused: sharenfs_subnets is empty, so there is no network to share with"
            if not self.dry_run:
                raise StepError(refusal)
            return Plan([refusal], details={"refused": "sharenfs_subnets is empty"})
        datasets = self._in_zfs()
        if not details:
            current = datasets[fs][0]
            wanted = configs.sharenfs(current, self.settings["subnets"])
            if wanted == current:
                wanted = None
            else:
                changes.append(f"{name}: zfs set sharenfs={wanted} {fs}  (was {current})")
                datasets = configs.sharenfs_after_set(datasets, fs, wanted)
        records = configs.sharenfs_records(self._rows(), datasets, fs)
        changes += self._record_lines(records)
        return Plan(changes, work=wanted, details=details)

    def apply(self, context, plan: Plan) -> None:
        fs = self.node["filesystem"]
        if plan.work:
            self.nodes.run(self.node["address"], ["zfs", "set", f"sharenfs={plan.work}", fs])
        # recorded from what ZFS has now, not from the prediction
        records = configs.sharenfs_records(self._rows(), self._in_zfs(), fs)
        self.db.execute_in_transaction([(self.statements["record_sharenfs"], r) for r in records])

    def _in_zfs(self) -> dict[str, tuple[str, str]]:
        """{dataset: (sharenfs, source)} of the pool's file system and everything under it."""
        fs = self.node["filesystem"]
        listing = self.nodes.run(self.node["address"], ["zfs", "get", "-r", "-t", "filesystem", "-H", "-o",
                                                        "name,value,source", "sharenfs", fs]).stdout
        datasets = {}
        for line in listing.splitlines():
            parts = line.split("\t")
            if len(parts) == 3:
                datasets[parts[0]] = (parts[1], parts[2])
        if fs not in datasets:
            raise StepError(f"{self.node['server_name']}: zfs get sharenfs did not list {fs}")
        return datasets

    def _rows(self) -> list[dict]:
        return self.db.rows(self.statements["sharenfs_rows"], {"pool_id": self.node["pool_id"]})

    def _record_lines(self, records: list[dict]) -> list[str]:
        """One plan line per value the database gets, naming the datasets (the pool: its own row)."""
        groups: dict[tuple[str, int], list[str]] = {}
        for r in records:
            groups.setdefault((r["value"], r["inherited"]), []).append(r["name"])
        return [f"vpsAdmin database: sharenfs of {len(names)} dataset(s) recorded as {value.strip()!r}"
                f"{' (inherited)' if inherited else ''}: {', '.join(names[:5])}{' ...' if len(names) > 5 else ''}"
                for (value, inherited), names in groups.items()]
