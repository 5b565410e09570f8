"""Runbook parts 7-9: the per-user quotas of Pithos and Cyclades imported into Astakos (pandas
plans them: synnefo/quotas.py), the quotaholder synced with Astakos (QuotaSyncOperator), then
the usages reset (after the sync: a reset of a holding the quotaholder lacks is rejected)."""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Sequence

from airlift.errors import StepError
from operators.runbook_step import Plan, run_label
from operators.synnefo_upgrade.common import SynnefoStepOperator

APPROVAL_TABLE = "approval_table"  # XCom key of the plan step: the approver's table
QUOTA_DIR = "/var/lib/airlift/synnefo"  # on the Astakos host: the --from-file inputs, root only
# user-set-initial-quota's per-line failures: printed, exit 0 (shared research synnefo.md §4).
IMPORT_FAILURES = ("Invalid line format", "Not found user having uuid", "Failed to policy")
SHOWN_LINES = 50  # plan lines shown one by one; the rest are counted
ASTAKOS_USERS = """SELECT a.uuid, u.email, lower(u.email) AS username
FROM auth_user u JOIN im_astakosuser a ON a.user_ptr_id = u.id WHERE a.uuid IS NOT NULL"""
USER_QUOTAS = """SELECT a.uuid, s.name || '.' || r.name AS resource, q.capacity::text AS capacity
FROM im_astakosuserquota q JOIN im_astakosuser a ON a.user_ptr_id = q.user_id
JOIN im_resource r ON r.id = q.resource_id JOIN im_service s ON s.id = r.service_id"""


class QuotaStepOperator(SynnefoStepOperator):
    """The two exports read (pithos-export-quota on the Pithos host, cyclades-export-quota on
    the Cyclades host, each into a temporary file removed at once), parsed strictly and joined
    with the Astakos users."""

    template_fields: Sequence[str] = (*SynnefoStepOperator.template_fields, "approved")

    def __init__(self, *, approved=None, **kwargs):
        super().__init__(**kwargs)
        self.approved = approved

    def export(self, role: str, command: str) -> str:
        script = ("set -o pipefail; f=$(mktemp); trap 'rm -f \"$f\"' EXIT; "
                  f"snf-manage {shlex.quote(command)} --location \"$f\" 1>&2 && cat \"$f\"")
        result = self.nodes.run(self.settings["hosts"][role], script, timeout=3600)
        from hooks.synnefo import SnfManageError, error_lines

        if error_lines(result):
            raise SnfManageError(result, error_lines(result))
        return result.stdout

    def quota_plan(self):
        from synnefo import quotas

        pithos = quotas.parse_pithos_export(self.export("pithos", "pithos-export-quota"))
        cyclades = quotas.parse_cyclades_export(self.export("cyclades", "cyclades-export-quota"))
        return quotas.plan_initial_quotas(self.db("snf_apps").frame(ASTAKOS_USERS), pithos, cyclades)

    def pending(self, result):
        """The planned quotas Astakos does not hold yet, and the --from-file text of the plan."""
        from synnefo import quotas

        actual = self.db("snf_apps").frame(USER_QUOTAS)
        return quotas.compare_quotas(result.plan, actual), quotas.from_file_text(result.plan)

    def probe(self, context) -> Plan:
        result = self.quota_plan()
        pending, text = self.pending(result)
        digest = hashlib.sha256(text.encode()).hexdigest()
        changes = [f"astakos: {row.uuid} {row.resource} capacity {row.planned}"
                   + (" (unlimited: Pithos 0)" if row.planned >= 10**30 else "") + f" (now {row.actual})"
                   for row in pending.head(SHOWN_LINES).itertuples()]
        if len(pending) > SHOWN_LINES:
            changes.append(f"astakos: ... and {len(pending) - SHOWN_LINES} more quota(s)")
        if changes:
            changes.append(f"astakos: user-set-initial-quota --from-file ({len(result.plan)} lines, sha256 {digest})")
        unknown = result.unknown.head(100)
        return Plan(changes, details={"summary": {**result.summary(), "pending": len(pending)},
                                      "from_file_sha256": digest,
                                      "unknown": [f"{r.user} {r.resource} {r.capacity} ({r.file}:{r.line}: {r.why})"
                                                  for r in unknown.itertuples()]},
                    work={"text": text, "result": result})


class QuotaPlanOperator(QuotaStepOperator):
    """What the import will set, for the approval (changes nothing): the export files of Pithos
    and Cyclades parsed strictly (a malformed line fails with its file and line number), joined
    with the Astakos users by uuid (or by lower-cased email where an export still has one),
    Pithos's 0 converted to unlimited (a capacity too large to reach, 10**32), users Astakos
    does not have reported and left out, several lines for one user keeping the largest. Its
    approval table goes to XCom `approval_table`."""

    def __init__(self, **kwargs):
        kwargs.setdefault("plan_only", True)
        super().__init__(**kwargs)

    def probe(self, context) -> Plan:
        plan = super().probe(context)
        summary = plan.details["summary"]
        lines = ["| planned | unlimited (was Pithos 0) | not in Astakos (left out) | conflicts | to change |",
                 "|---|---|---|---|---|",
                 f"| {summary['planned']} | {summary['unlimited']} | {summary['unknown']} | {summary['conflicts']} "
                 f"| {summary['pending']} |"]
        if plan.details["unknown"]:
            lines += ["", "Left out (no such Astakos user):", *[f"- {u}" for u in plan.details["unknown"][:20]]]
        table = "\n".join(lines)
        context["ti"].xcom_push(key=APPROVAL_TABLE, value=table)
        self.log.info("%s\n%s", self.label, table)
        return plan


class QuotaImportOperator(QuotaStepOperator):
    """The approved plan imported: written on the Astakos host (root only) as the
    `--from-file` input (shared research §4: the runbook's positional file is ignored by 0.13),
    then `snf-manage user-set-initial-quota --from-file` as a remote job. Its per-line failures
    print and exit 0, so any of them fails the step. The plan is made again here and must be
    the approved one (same sha256); after the import Astakos must hold exactly the plan.

    :param approved: the plan step's record."""

    def __init__(self, **kwargs):
        kwargs.setdefault("script", "synnefo/snf-manage.sh")
        super().__init__(**kwargs)

    def apply(self, context, plan: Plan) -> dict | None:
        wanted = (self.approved or {}).get("from_file_sha256") if isinstance(self.approved, dict) else None
        if wanted != plan.details["from_file_sha256"]:
            raise StepError("the quota plan changed since the approval (sha256 "
                            f"{plan.details['from_file_sha256']}, approved {wanted}); run again to approve it")
        host = self.settings["hosts"]["astakos"]
        path = f"{QUOTA_DIR}/initial-quota-{run_label(context)}.txt"
        self.nodes.run(host, f"umask 077 && mkdir -p {QUOTA_DIR} && cat > {shlex.quote(path)}",
                       stdin=plan.work["text"], timeout=600)
        return self.remote_job(context, self.nodes, host, self.script,
                               ["user-set-initial-quota", "--from-file", path], plan)

    def job_done(self, context, plan: Plan, result) -> dict:
        super().job_done(context, plan, result)
        failed = [line for line in result.stdout.splitlines() if line.startswith(IMPORT_FAILURES)]
        if failed:
            raise StepError(f"user-set-initial-quota refused {len(failed)} line(s):\n" + "\n".join(failed[:20]))
        return {"imported": plan.details["summary"]["planned"]}

    def verify(self, context, plan: Plan) -> Plan:
        pending, _ = self.pending(self.quota_plan())
        return Plan([f"{r.uuid} {r.resource}: {r.problem} (planned {r.planned}, Astakos {r.actual})"
                     for r in pending.head(20).itertuples()])


class QuotaSyncOperator(SynnefoStepOperator):
    """`snf-manage astakos-quota --verify`, and when Astakos and the quotaholder differ,
    `--sync` (a remote job) and `--verify` again (runbook 8). The differences are parsed into
    a table (synnefo.quotas.parse_verify: uuid, user, problem, resource, field, both values),
    logged and recorded (`differences_before`, `differences_after`); the step fails when the
    last verify still differs."""

    LIMIT = 200  # rows of a differences table recorded

    def __init__(self, **kwargs):
        kwargs.setdefault("script", "synnefo/snf-manage.sh")
        super().__init__(**kwargs)

    def differences(self):
        from synnefo import quotas

        result = self.nodes.snf_manage(self.settings["hosts"]["astakos"], ["astakos-quota", "--verify"],
                                       log_output=False, timeout=3600)
        return quotas.parse_verify(result.stdout)

    def table(self, frame) -> list[dict]:
        rows = frame.head(self.LIMIT).astype(object).where(frame.head(self.LIMIT).notna(), None)
        return [{k: (str(v) if v is not None else None) for k, v in row.items()} for row in rows.to_dict("records")]

    def probe(self, context) -> Plan:
        found = self.differences()
        if found.empty:
            return Plan(details={"differences_before": []})
        self.log.info("%s: astakos-quota --verify: %d difference(s):\n%s", self.label, len(found),
                      found.head(50).to_markdown(index=False))
        users = found["uuid"].fillna(found["user"]).nunique()
        return Plan([f"astakos: astakos-quota --sync ({users} user(s) differ)"],
                    details={"differences_before": self.table(found)})

    def apply(self, context, plan: Plan) -> dict | None:
        return self.remote_job(context, self.nodes, self.settings["hosts"]["astakos"], self.script,
                               ["astakos-quota", "--sync"], plan)

    def verify(self, context, plan: Plan) -> Plan:
        left = self.differences()
        if not left.empty:
            raise StepError(f"astakos-quota --verify still finds {len(left)} difference(s) after --sync:\n"
                            + left.head(20).to_markdown(index=False))
        return Plan()


class UsageResetOperator(SynnefoStepOperator):
    """A usage reset after the sync (runbook 9; the order matters: the quotaholder rejects
    resets of holdings it does not have): `pithos-usage --reset` on the Pithos host or
    `cyclades-reset-usage` on the Cyclades host, as a remote job, while the usage the
    quotaholder holds differs from what the service holds (include/sql/synnefo/s9/usage.sql;
    holders the quotaholder does not know are the reset's to reject, not a difference).

    :param role: pithos or cyclades."""

    COMMANDS = {"pithos": ["pithos-usage", "--reset"], "cyclades": ["cyclades-reset-usage"]}
    SOURCES = {"pithos": ("snf_pithos", "pithos+.%"), "cyclades": ("snf_apps", "cyclades.%")}

    def __init__(self, *, role: str, **kwargs):
        kwargs.setdefault("script", "synnefo/snf-manage.sh")
        kwargs.setdefault("sql", "s9/usage.sql")
        super().__init__(**kwargs)
        self.role = role

    def stale(self) -> list[str]:
        """The holdings whose usage is not the service's: `holder resource: held != actual`."""
        database, prefix = self.SOURCES[self.role]
        actual = {(h, r): int(u) for h, r, u in self.db(database).get_records(self.statements[self.role])}
        held = {(h, r): int(u) for h, r, u in self.db("snf_apps").get_records(self.statements["holdings"],
                                                                                {"prefix": prefix})}
        return [f"{h} {r}: {held[h, r]} != {usage}" for (h, r), usage in sorted(actual.items())
                if (h, r) in held and held[h, r] != usage]

    def probe(self, context) -> Plan:
        stale = self.stale()
        if not stale:
            return Plan()
        self.log.info("%s: %d usage(s) differ:\n%s", self.label, len(stale), "\n".join(stale[:50]))
        return Plan([f"{self.role}: {' '.join(self.COMMANDS[self.role])} ({len(stale)} usage(s) differ)"],
                    details={"differ": stale[:100]})

    def apply(self, context, plan: Plan) -> dict | None:
        return self.remote_job(context, self.nodes, self.settings["hosts"][self.role], self.script,
                               self.COMMANDS[self.role], plan)
