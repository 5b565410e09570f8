"""Runbook part 6: Cyclades and Pithos users from emails to Astakos uuids (synnefo/uuids.py
plans it). The merges and deletions run only as approved: the plan step (plan_only) shows
them to the approval, and a step refuses any change its approved plan did not list."""

from __future__ import annotations

from collections.abc import Sequence

from airlift.errors import StepError
from operators.runbook_step import Plan
from operators.synnefo_upgrade.common import SynnefoStepOperator
from operators.synnefo_upgrade.settings import CYCLADES_API_CONF, SettingsOperator, Target, current

MIGRATE_013 = "cyclades-astakos-migrate-013"
MANAGE_ACCOUNTS = "pithos-manage-accounts"
USER_QUOTA_SETTINGS = {"VMS_USER_QUOTA": "MAX_VMS_PER_USER", "NETWORKS_USER_QUOTA": "MAX_NETWORKS_PER_USER"}
DEFAULTS = {"MAX_VMS_PER_USER": 3, "MAX_NETWORKS_PER_USER": 5, "PITHOS_BACKEND_QUOTA": 50 * 1024**3}


class UuidsStepOperator(SynnefoStepOperator):
    """Reads Cyclades's ids, Pithos's accounts and Astakos's uuids
    (include/sql/synnefo/s6/uuids.sql). :param approved: the plan step's record; a step given
    one refuses changes it does not list."""

    template_fields: Sequence[str] = (*SynnefoStepOperator.template_fields, "approved")

    def __init__(self, *, approved=None, sql: str = "s6/uuids.sql", **kwargs):
        super().__init__(sql=sql, **kwargs)
        self.approved = approved

    def cyclades(self):
        from synnefo.uuids import cyclades_plan

        apps = self.db("snf_apps")
        ids = [r[0] for r in apps.get_records(self.statements["cyclades_ids"])]
        usernames = {r[0] for r in apps.get_records(self.statements["astakos_uuids"])}
        return cyclades_plan(ids, usernames)

    def pithos(self):
        from synnefo.uuids import pithos_plan

        accounts = dict(self.db("snf_pithos").get_records(self.statements["pithos_accounts"]))
        files = self.nodes.settings_files(self.settings["hosts"]["pithos"])
        default = int(current(files).get("PITHOS_BACKEND_QUOTA", DEFAULTS["PITHOS_BACKEND_QUOTA"]))
        return pithos_plan(accounts, default)

    @staticmethod
    def cyclades_changes(plan) -> list[str]:
        return ([f"cyclades: {MIGRATE_013} --merge-user={email}" for email in plan.merges]
                + [f"cyclades: {MIGRATE_013} --delete-user={user} (no Astakos user)" for user in plan.deletes])

    @staticmethod
    def pithos_changes(plan) -> list[str]:
        quota = [f"pithos: quota of {account} set to {'0 (unlimited)' if value == '0' else value} (the largest of "
                 "its merged accounts)" for account, value in plan.quotas.items()]
        return quota + [f"pithos: {MANAGE_ACCOUNTS} --merge-accounts --src-account={m.source} "
                        f"--dest-account={m.target}, then --delete-account={m.source}" for m in plan.merges]

    def check_approved(self, plan: Plan) -> None:
        if self.approved is None:
            return
        allowed = set(self.approved.get("changes") or []) if isinstance(self.approved, dict) else set()
        extra = [c for c in plan.changes if c not in allowed]
        if extra:
            raise StepError(f"{len(extra)} change(s) were not in the approved plan (the data changed since the "
                            "approval; run again to approve the new plan):\n" + "\n".join(extra[:20]))


class IdsPlanOperator(UuidsStepOperator):
    """What part 6 merges and deletes, for the approval (changes nothing): the Cyclades
    spellings of one email merged into its lower-case form and the ids no Astakos user has
    deleted with their VMs, networks and keys; the Pithos accounts of one email merged into
    one and deleted, with the largest quota carried over."""

    def probe(self, context) -> Plan:
        return Plan(self.cyclades_changes(self.cyclades()) + self.pithos_changes(self.pithos()))


class CycladesValidateOperator(UuidsStepOperator):
    """`cyclades-astakos-migrate-013 --validate` made to pass: each email's spellings merged into
    its lower-case form (`--merge-user`, every row, deleted ones too) and the ids no Astakos
    user has deleted (`--delete-user`, its prompt answered `yes of course`); validation refuses
    case duplicates, and `--migrate-users` would print ERROR for each unknown id. Then
    `--validate` must print no error."""

    def probe(self, context) -> Plan:
        plan = self.cyclades()
        return Plan(self.cyclades_changes(plan), work=plan)

    def apply(self, context, plan: Plan) -> dict:
        self.check_approved(plan)
        host = self.settings["hosts"]["cyclades"]
        for email in plan.work.merges:
            self.nodes.snf_manage(host, [MIGRATE_013, f"--merge-user={email}"])
        for user in plan.work.deletes:
            self.nodes.snf_manage(host, [MIGRATE_013, f"--delete-user={user}"], answers=["yes of course"])
        return {"merged": plan.work.merges, "deleted": plan.work.deletes}

    def verify(self, context, plan: Plan) -> Plan:
        self.nodes.snf_manage(self.settings["hosts"]["cyclades"], [MIGRATE_013, "--validate"])
        return self.probe(context)


class PithosDuplicatesOperator(UuidsStepOperator):
    """`pithos-manage-accounts --list-duplicate` made empty: each email's accounts merged into
    one (`--merge-accounts`: files, versions, permissions, groups copied) and then deleted
    (`--delete-account`), prompts answered `yes`. A merge copies files, not the quota, so the
    group's largest quota is set on the survivor first. A retry after a merge whose source was
    not deleted yet only deletes it (the survivor has all its objects).

    The runbook merges (6.2) before pithos-migrate (6.4), but 0.13's merge reads `public.url`,
    which only 6.4's revision 27381099d477 adds: every merge of an account with objects fails
    (`Error: url`). So the column is lent for the merges (added empty, as that revision adds
    it) and dropped again after them, whatever happened, for the revision to add it."""

    def probe(self, context) -> Plan:
        plan = self.pithos()
        changes = self.pithos_changes(plan)
        if self.url_still_lent():
            changes.append("pithos: drop public.url, lent to the merges of an earlier try")
        return Plan(changes, work=plan)

    def url_still_lent(self) -> bool:
        """public.url is there but alembic is not at the revision that adds it: a try that
        failed after lending it."""
        from operators.synnefo_upgrade.migrate import ALEMBIC_HEAD, alembic_revision

        db = self.db("snf_pithos")
        return db.get_first(self.statements["public_url_exists"])[0] and alembic_revision(db) != ALEMBIC_HEAD

    def check_approved(self, plan: Plan) -> None:
        super().check_approved(Plan([c for c in plan.changes if not c.startswith("pithos: drop public.url")]))

    def apply(self, context, plan: Plan) -> dict:
        self.check_approved(plan)
        host, db = self.settings["hosts"]["pithos"], self.db("snf_pithos")
        for account, value in plan.work.quotas.items():
            db.run(self.statements["set_account_quota"], parameters={"account": account, "quota": value})
        if plan.work.merges:
            db.run(self.statements["lend_public_url"])
        try:
            for merge in plan.work.merges:
                left = db.get_first(self.statements["unmerged_objects"],
                                    {"src": merge.source, "dest": merge.target})[0]
                if left:
                    self.nodes.snf_manage(host, [MANAGE_ACCOUNTS, "--merge-accounts", f"--src-account={merge.source}",
                                                 f"--dest-account={merge.target}"], answers=["yes"])
                self.nodes.snf_manage(host, [MANAGE_ACCOUNTS, f"--delete-account={merge.source}"], answers=["yes"])
        finally:
            db.run(self.statements["return_public_url"])
        return {"merged": [f"{m.source} -> {m.target}" for m in plan.work.merges]}

    def verify(self, context, plan: Plan) -> Plan:
        self.nodes.snf_manage(self.settings["hosts"]["pithos"], [MANAGE_ACCOUNTS, "--list-duplicate"])
        return self.probe(context)


class CycladesMigrateUsersOperator(SettingsOperator, UuidsStepOperator):
    """The per-user limits VMS_USER_QUOTA and NETWORKS_USER_QUOTA keyed by uuid
    (synnefo/uuids.py: the largest among a user's spellings; entries of ids no Astakos user
    has dropped and reported), then `cyclades-astakos-migrate-013 --migrate-users` as a remote
    job (include/scripts/synnefo/snf-manage.sh: a retry never runs a second copy; any ERROR
    line fails it, though the command exits 0) while Cyclades still has email ids."""

    roles = ("cyclades",)

    def __init__(self, **kwargs):
        kwargs.setdefault("script", "synnefo/snf-manage.sh")
        super().__init__(**kwargs)

    def targets(self, context, files) -> list[Target]:
        from synnefo.uuids import user_quota_settings

        apps = self.db("snf_apps")
        now = current(files["cyclades"])
        uuids = dict(apps.get_records(self.statements["astakos_uuids"]))
        ids = [r[0] for r in apps.get_records(self.statements["cyclades_ids"])]
        result = user_quota_settings(
            {name: dict(now.get(name) or {}) for name in USER_QUOTA_SETTINGS},
            {name: int(now.get(default, DEFAULTS[default])) for name, default in USER_QUOTA_SETTINGS.items()},
            uuids, ids)
        self.dropped = result.dropped
        return [Target("cyclades", CYCLADES_API_CONF, result.values)]

    def probe(self, context) -> Plan:
        plan = super().probe(context)
        emails = [r[0] for r in self.db("snf_apps").get_records(self.statements["cyclades_ids"]) if "@" in (r[0] or "")]
        if emails:
            plan.changes.append(f"cyclades: {MIGRATE_013} --migrate-users ({len(emails)} email ids)")
        plan.details = {"dropped_from_settings": self.dropped}
        plan.work = {"files": plan.work, "migrate": bool(emails)}
        return plan

    def apply(self, context, plan: Plan) -> dict | None:
        SettingsOperator.apply(self, context, Plan(work=plan.work["files"]))
        if plan.work["migrate"]:
            return self.remote_job(context, self.nodes, self.settings["hosts"]["cyclades"], self.script,
                                   [MIGRATE_013, "--migrate-users"], plan)
        return None

    def job_done(self, context, plan: Plan, result) -> dict:
        super().job_done(context, plan, result)
        migrated = [line for line in result.stdout.splitlines() if line.startswith("Migrated ")]
        self.log.info("%s: %s", self.label, migrated[-1] if migrated else "no `Migrated N users` line")
        return {"migrated": migrated[-1] if migrated else None}

