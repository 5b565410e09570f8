"""Storage nodes (runbook: "Storage nodes", "Backups", "Migrate old backups to snapshots"):
datasets named `private` renamed, then the backups: snapshot rename and dataset rearrangement
are scripts (NodeScriptOperator), their registration in the database is here."""

from __future__ import annotations

from collections.abc import Sequence

from airlift.errors import StepError
from operators.runbook_step import Plan, RunbookStepOperator
from operators.vpsadmin_upgrade.common import VpsAdminStepOperator


class RenamePrivateOperator(VpsAdminStepOperator):
    """Datasets named `private` (reserved in 2.0) of one pool get the name of param
    private_dataset_name, in ZFS and in `datasets` (name and full_name). A dataset renamed in
    ZFS by an interrupted run only gets its database row updated."""

    template_fields: Sequence[str] = (*RunbookStepOperator.template_fields, "new_name")
    uses_step_sql = True

    def __init__(self, *, new_name: str, **kwargs):
        super().__init__(**kwargs)
        self.new_name = new_name

    def probe(self, context) -> Plan:
        name, fs = self.node["server_name"], self.node["filesystem"]
        rows = self.db.rows(self.statements["private_datasets"], {"pool_id": self.node["pool_id"]})
        listing = self.nodes.run(self.node["address"], ["zfs", "list", "-H", "-r", "-o", "name", fs]).stdout
        in_zfs = {n for n in listing.split("\n") if n}
        in_db = {f"{fs}/{r['full_name']}": r for r in rows}
        stray = [n for n in in_zfs if n.rsplit("/", 1)[-1] == "private" and n not in in_db]
        if stray:
            self.log.warning("%s: %s has datasets named private that the database does not know; left alone: %s",
                             self.label, fs, ", ".join(stray))
        changes, renames, updates = [], [], []
        for old, row in sorted(in_db.items()):
            new = f"{old.rsplit('/', 1)[0]}/{self.new_name}"
            if new in in_zfs and old in in_zfs:
                raise StepError(f"both {old} and {new} exist")
            if old in in_zfs:
                renames.append((old, new))
                changes.append(f"{name}: zfs rename {old} {new}")
            full_name = f"{row['full_name'].rsplit('/', 1)[0]}/{self.new_name}" if "/" in row["full_name"] \
                else self.new_name
            updates.append({"id": row["id"], "name": self.new_name, "full_name": full_name})
            changes.append(f"datasets {row['id']}: {row['full_name']} -> {full_name}")
        return Plan(changes, work=(renames, updates))

    def apply(self, context, plan: Plan) -> None:
        renames, updates = plan.work
        for old, new in renames:
            self.nodes.run(self.node["address"], ["zfs", "rename", old, new])
        self.db.execute_in_transaction([(self.statements["rename_dataset"], u) for u in updates])


class RegisterBackupsOperator(VpsAdminStepOperator):
    """Registers the old backups as trees, branches, snapshots and snapshot_in_pools exactly
    once, in the backup pool found in the database, in one transaction (the published Ruby
    scripts hard-code BACKUP_POOL = 14 and are two near-duplicates, one naming branches
    `branch-branch-…`; this runs once, before the final migration drops vps_backups), after
    checking every snapshot it registers exists in the rearranged ZFS layout."""

    template_fields: Sequence[str] = (*RunbookStepOperator.template_fields, "timezone")
    uses_step_sql = True
    REGISTER = ("trees", "branches", "snapshots", "snapshot_in_pools", "snapshot_in_branches")

    def __init__(self, *, timezone: str, **kwargs):
        super().__init__(**kwargs)
        self.timezone = timezone

    def _collect(self, cur) -> list[dict]:
        """The backups still to register, into the session's temporary table."""
        st = self.statements
        cur.execute(st["utc_session"])
        cur.execute(st["drop"])
        cur.execute(st["collect"], {"tz": self.timezone})
        cur.execute(st["unnamed"])
        if cur.fetchone()[0]:
            raise StepError(f"time zone {self.timezone!r} unknown to the server")
        cur.execute(st["pending"])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def probe(self, context) -> Plan:
        if not self.db.rows(self.statements["vps_backups_exists"])[0]["n"]:
            self.log.info("%s: vps_backups is gone (final migration done): nothing left to register", self.label)
            return Plan()
        with self.db.get_conn() as conn:
            pending = self._collect(conn.cursor())
        return Plan([f"VPS {p['vps_id']}: tree.0/branch-{p['oldest']}.0 with {p['snapshots']} snapshot(s) in "
                     f"{p['filesystem']}" for p in pending], work=pending)

    def apply(self, context, plan: Plan) -> dict:
        self._check_zfs(plan.work)
        with self.db.get_conn() as conn:
            cur = conn.cursor()
            self._collect(cur)
            counts = {}
            for name in self.REGISTER:
                cur.execute(self.statements[name])
                counts[name] = cur.rowcount
            conn.commit()
        return {"rows": counts}

    def _check_zfs(self, pending: list[dict]) -> None:
        addresses = {p["pool_id"]: p["address"] for p in self.db.pools()}
        found = set()
        for pool_id, fs in {(p["pool_id"], p["filesystem"]) for p in pending}:
            listing = self.nodes.run(addresses[pool_id], ["zfs", "list", "-H", "-t", "snapshot", "-o", "name",
                                                          "-r", fs])
            found.update(listing.stdout.split("\n"))
        wanted = [f"{p['filesystem']}/{p['full_name']}/tree.0/branch-{p['oldest']}.0@{name}"
                  for p in pending for name in p["names"].split(",")]
        missing = [snapshot for snapshot in wanted if snapshot not in found]
        if missing:
            raise StepError(f"{len(missing)} backup snapshot(s) are not in the rearranged layout, nothing registered "
                            "(rearrange first, or check backup_timezone):\n" + "\n".join(missing[:20]))
