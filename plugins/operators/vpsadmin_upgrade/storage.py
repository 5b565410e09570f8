"""Storage nodes (runbook: "Storage nodes", "Backups", "Migrate old backups to snapshots"):
datasets named `private` renamed, then the backups: snapshot rename and dataset rearrangement
are scripts (NodeScriptOperator), their registration in the database is here, and so is
setting aside the backups of the VPSes db.remove-stray-vps deleted."""

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
        self.check_pool()
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


class StrayBackupsOperator(VpsAdminStepOperator):
    """The backups of VPSes db.remove-stray-vps deleted (their node is gone) stay on the backup
    pool, where vpsAdmin 2.0 no longer knows them: its integrity check reports each as a stray
    dataset. They may be the last copy of those VPSes' data, so nothing is destroyed: each is
    renamed (data and snapshots) out of the pool's tree into `<pool>.airlift-stray/<vps>`, a
    sibling of the pool's file system, and the record says where; destroy them there once they
    are not needed. Where there is no such place (the pool is a whole zpool, or the place lies
    inside another pool), they stay and the record says why. Datasets the database does not
    know that are not a deleted VPS's are left alone and listed."""

    SUFFIX = ".airlift-stray"

    def __init__(self, **kwargs):
        kwargs.setdefault("sql", "storage/stray-backups.sql")
        super().__init__(**kwargs)

    def probe(self, context) -> Plan:
        self.check_pool()
        name, fs = self.node["server_name"], self.node["filesystem"]
        known = {r["full_name"] for r in self.db.rows(self.statements["pool_datasets"], {"pool_id": self.node["pool_id"]})}
        vps_ids = {str(r["vps_id"]) for r in self.db.rows(self.statements["vps_ids"])}
        listing = self.nodes.run(self.node["address"], ["zfs", "list", "-H", "-d", "1", "-t", "filesystem", "-o",
                                                        "name", fs]).stdout
        unknown = sorted(n[len(fs) + 1:] for n in listing.splitlines() if n.startswith(fs + "/")
                         and n[len(fs) + 1:] not in known)
        deleted = [n for n in unknown if n.isdigit() and n not in vps_ids]
        details = {"unknown_left_alone": [n for n in unknown if n not in deleted]}
        if details["unknown_left_alone"]:
            self.log.warning("%s: %s holds datasets the database does not know; left alone: %s", self.label, fs,
                             ", ".join(details["unknown_left_alone"]))
        if not deleted:
            return Plan(details=details)
        holding = f"{fs}{self.SUFFIX}"
        problem = self._no_place(fs, holding)
        if problem:
            self.log.warning("%s: backups of deleted VPSes %s stay in %s: %s", self.label, ", ".join(deleted), fs,
                             problem)
            return Plan(details={**details, "stray_left_in_place": deleted, "why": problem})
        moves = [(f"{fs}/{n}", f"{holding}/{n}") for n in deleted]
        return Plan([f"{name}: zfs rename {old} {new}  (backups of deleted VPS {old.rsplit('/', 1)[1]}, kept)"
                     for old, new in moves], work=(holding, moves), details={**details, "set_aside_in": holding})

    def _no_place(self, fs: str, holding: str) -> str | None:
        if "/" not in fs:
            return "the pool is a whole zpool: no place outside it to set them aside"
        inside = [p["filesystem"] for p in self.db.pools()
                  if holding == p["filesystem"] or holding.startswith(p["filesystem"] + "/")]
        if inside:
            return f"{holding} would lie inside pool {inside[0]}"
        return None

    def apply(self, context, plan: Plan) -> None:
        holding, moves = plan.work
        address = self.node["address"]
        if not self.nodes.run(address, ["zfs", "list", "-H", "-o", "name", holding], check=False).ok:
            self.nodes.run(address, ["zfs", "create", "-p", holding])
        for old, new in moves:
            if self.nodes.run(address, ["zfs", "list", "-H", "-o", "name", new], check=False).ok:
                raise StepError(f"{new} exists already: {old} not moved over it")
            self.nodes.run(address, ["zfs", "rename", old, new])


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
