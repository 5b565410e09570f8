"""Runbook part 2: the users whose emails differ only in case, found across Astakos, Cyclades
and Pithos and reduced to one per email in Astakos (on the 0.12 code, before the packages
change). pandas decides (synnefo/duplicates.py); an approval stands between the decision and
the deletion; Cyclades and Pithos follow the same decisions in part 6 with the 0.13 tools."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

from airlift.errors import StepError
from operators.runbook_step import Plan, plan_mode, run_label
from operators.synnefo_upgrade.common import DATABASE_CONNECTIONS, SynnefoStepOperator

# The runbook's 0.12-era scripts (astakos/im/scripts/), run on the Astakos host.
FIND_SCRIPT = "find_astakos_users_with_conflicting_emails.py"
DELETE_SCRIPT = "delete_astakos_users.py"
DELETED_LINE = re.compile(r"^deleting (\d+): ", re.MULTILINE)
APPROVAL_TABLE = "approval_table"  # XCom key of the find step: the approver's table


class DuplicatesStepOperator(SynnefoStepOperator):
    """Reads every account of the three services (include/sql/synnefo/s2/find-duplicates.sql)
    and reconciles them."""

    def __init__(self, *, sql: str = "s2/find-duplicates.sql", **kwargs):
        super().__init__(sql=sql, **kwargs)

    def reconcile(self):
        """synnefo.duplicates.reconcile of what the services hold now (pandas is loaded here,
        not when the DAG is parsed)."""
        from hooks.synnefo_db import SynnefoDbHook
        from synnefo import duplicates

        statements = self.statements
        sources = {"astakos": "snf_apps", "vms": "snf_apps", "networks": "snf_apps", "pithos": "snf_pithos"}

        def read(name: str):  # a hook (and a connection) of its own per thread
            return SynnefoDbHook(DATABASE_CONNECTIONS[sources[name]]).frame(statements[name])

        # At once: PostgreSQL works on each COPY in its own process.
        with ThreadPoolExecutor(len(sources)) as pool:
            frames = dict(zip(sources, pool.map(read, sources), strict=True))
        return duplicates.reconcile(**frames)

    @staticmethod
    def deletions(result) -> list[dict]:
        """The Astakos users to delete: id, spelling, the email group and its survivor."""
        moves = result.moves
        gone = moves[(moves["service"] == "astakos") & (moves["action"] == "delete")]
        survivors = result.decisions.set_index("email")["survivor"]
        return [{"id": int(row.account), "email": row.key, "survivor": survivors.get(row.key, "")}
                for row in gone.itertuples()]


class FindDuplicatesOperator(DuplicatesStepOperator):
    """One frame of the users of all three services grouped by lower-cased email, and for every
    group that needs it a decision (who survives and why, what is deleted, reassigned, merged:
    synnefo/duplicates.py). Changes nothing: its plan is what the approval shows (the table
    goes to XCom `approval_table`) and what the deletion may do."""

    def __init__(self, **kwargs):
        kwargs.setdefault("plan_only", True)
        super().__init__(**kwargs)

    def probe(self, context) -> Plan:
        from synnefo import duplicates

        result = self.reconcile()
        table = duplicates.approval_markdown(result.decisions)
        context["ti"].xcom_push(key=APPROVAL_TABLE, value=table)
        self.log.info("%s\n%s", self.label, table)
        gone = self.deletions(result)
        return Plan([f"delete Astakos user #{d['id']} of {d['email']} (keeps {d['survivor']})" for d in gone],
                    details={"summary": result.summary(), "delete_ids": [d["id"] for d in gone]})


class DeleteDuplicatesOperator(DuplicatesStepOperator):
    """Deletes the Astakos users the approved decision deletes, with the runbook's
    `delete_astakos_users.py <id>...` on the Astakos host (its `Execute? (yes/no)` answered
    `yes` on stdin; it deletes each user with its related rows). The decision is made again
    here and must be the approved one: a user to delete that the approver did not see stops the
    step (the world changed since: run again). The decisions go first, as CSV, to the backup
    directory on the DB host (mode 0600). A retry deletes only who is still there.

    :param approved: the record of the find step the approval showed."""

    template_fields = (*DuplicatesStepOperator.template_fields, "approved")

    def __init__(self, *, approved, **kwargs):
        super().__init__(**kwargs)
        self.approved = approved

    def probe(self, context) -> Plan:
        result = self.reconcile()
        gone = self.deletions(result)
        allowed = set((self.approved or {}).get("delete_ids") or [])
        unseen = [d for d in gone if d["id"] not in allowed]
        if unseen and not self.dry_run:
            raise StepError("the duplicates changed since the approval; these deletions were not approved: "
                            + ", ".join(f"#{d['id']} of {d['email']}" for d in unseen[:20])
                            + ". Nothing was deleted; run the DAG again to see and approve the new decision.")
        return Plan([f"{self.settings['hosts']['astakos']}: {DELETE_SCRIPT} {d['id']} ({d['email']}, keeps "
                     f"{d['survivor']})" for d in gone], work={"ids": [d["id"] for d in gone], "result": result})

    def apply(self, context, plan: Plan) -> dict:
        from synnefo import duplicates

        report = f"{self.settings['backup_dir']}/duplicates-{run_label(context)}.csv"
        self.nodes.run(self.settings["db_host"], ["sh", "-c", 'umask 077 && cat > "$1.partial" && mv "$1.partial" "$1"',
                                                  "sh", report],
                       stdin=duplicates.report_csv(plan.work["result"].decisions), timeout=600)
        ids = [str(i) for i in plan.work["ids"]]
        result = self.nodes.run(self.settings["hosts"]["astakos"], [DELETE_SCRIPT, *ids], stdin="yes\n",
                                timeout=3600, log_output=True)
        deleted = sorted(int(i) for i in DELETED_LINE.findall(result.stdout))
        if "Cancelled" in result.stdout or not deleted:
            raise StepError(f"{DELETE_SCRIPT} deleted nobody:\n{result.tail()}")
        return {"deleted": deleted, "report": report}


class RecheckDuplicatesOperator(DuplicatesStepOperator):
    """Checks again that no email is left twice in Astakos, two ways: the runbook's
    `find_astakos_users_with_conflicting_emails.py` must list nobody, and the reconciliation
    must find no Astakos user to delete. Changes nothing; fails naming who is left."""

    def execute(self, context) -> dict:
        self.dry_run = plan_mode(context)
        with self.step_errors():
            found = self.nodes.run(self.settings["hosts"]["astakos"], [FIND_SCRIPT], timeout=3600)
            listed = [line for line in found.stdout.splitlines() if line.strip()]
            left = listed + [f"#{d['id']} of {d['email']}" for d in self.deletions(self.reconcile())]
            if left and self.dry_run:
                self.log.info("%s: plan mode: %d listed now, none once the deletion has run", self.label, len(left))
            elif left:
                raise StepError("emails differing only in case remain in Astakos:\n" + "\n".join(left[:40]))
            else:
                self.log.info("%s: no email is left twice in Astakos", self.label)
            return self.record(Plan(), applied=False)
