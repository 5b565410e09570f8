"""The step of DAG vpsadmin_daily_report (runbook: "Cron jobs": daily_report.rb is replaced by a
rake task): `rake vpsadmin:mail_daily_report` on the API host, once a day, and the report's
figures in XCom and on the DAG run's note."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airlift.errors import StepError
from operators.runbook_step import Plan
from operators.vpsadmin_scheduled.lifetimes import ScheduledStepOperator, run_day
from vpsadmin import lifetimes as lt

FIGURES = (  # (figure, how the note says it)
    ("users_new", "new users"), ("users_suspended", "users suspended"),
    ("users_soft_deleted", "users soft-deleted"), ("users_hard_deleted", "users hard-deleted"),
    ("vps_new", "new VPSes"), ("vps_suspended", "VPSes suspended"), ("vps_soft_deleted", "VPSes soft-deleted"),
    ("vps_hard_deleted", "VPSes hard-deleted"), ("payments", "payments"),
    ("chains_total", "chains"), ("chains_done", "chains done"), ("chains_failed", "chains failed"),
    ("transactions_done", "transactions done"), ("transactions_failed", "transactions failed"),
)


class DailyReportOperator(ScheduledStepOperator):
    """Sends the daily report (template `daily_report`, to its recipients) with rake, once a day:
    a report already logged on the run's day (UTC) is not sent again. The report's figures, as
    counted at the time it was made (new, suspended and deleted users and VPSes, chains and
    transactions done and failed) plus the day's payments, go to XCom and onto the DAG run's
    note (through the Airflow REST API, connection `airflow_api`; without it only XCom). Plan
    mode counts them as of now and sends nothing. A template with no recipient is refused:
    the report would go nowhere."""

    def __init__(self, **kwargs):
        kwargs.setdefault("sql", "report/daily.sql")
        kwargs.setdefault("max_changes", 1)
        super().__init__(**kwargs)

    def probe(self, context) -> Plan:
        self.host()  # refused before anything when the trigger form's api_host is not a host
        recipients = self.db.rows(self.statements["recipients"])
        if not recipients:
            raise StepError("mail template daily_report does not exist: create it (the upgrade's mail.templates "
                            "step does) before the report can be sent")
        addresses = sorted({a.strip() for r in recipients for field in ("to", "cc", "bcc")
                            for a in (r[field] or "").split(",") if a.strip()})
        if not addresses:
            raise StepError("mail template daily_report has no recipient: add one in vpsAdmin (mail recipients of "
                            "the template); the report would go nowhere")
        day = run_day(context)
        sent = self.db.rows(self.statements["sent_since"], {"day": day})
        if sent:
            figures = self.figures(sent[0]["created_at"], sent[0]["chain_id"])
            self.log.info("%s: the report of %s was sent at %s (mail log %s): not again", self.label, day.date(),
                          sent[0]["created_at"], sent[0]["id"])
            return Plan(details={"day": str(day.date()), "sent_at": str(sent[0]["created_at"]), "figures": figures})
        now = self.db.rows(self.statements["now"])[0]["t"]
        return Plan([f"send daily_report to {', '.join(addresses)} (rake vpsadmin:mail_daily_report)"],
                    details={"day": str(day.date()), "figures": self.figures(now)})

    def figures(self, t: datetime, chain_id: int | None = None) -> dict[str, int]:
        """The figures as the report counts them at `t` while building its chain `chain_id`."""
        since = int((t - timedelta(days=1)).replace(tzinfo=UTC).timestamp())
        row = self.db.rows(self.statements["figures"], {"t": t, "since_unix": since, "chain_id": chain_id or 0})[0]
        return {name: int(row[name]) for name, _ in FIGURES}

    def execute(self, context) -> dict:
        record = super().execute(context)  # a step that deferred goes on in execute_complete
        self.set_note(context, record)
        return record

    def rake_command(self) -> str:
        return lt.daily_report_command()

    def job_done(self, context, plan: Plan, result) -> dict | None:
        self.rake_output(result)
        sent = self.db.rows(self.statements["sent_since"], {"day": run_day(context)})
        if not sent:
            raise StepError("rake finished but no daily_report mail is logged for the day")
        plan.details.update(sent_at=str(sent[-1]["created_at"]), mail_log=sent[-1]["id"], chain_id=sent[-1]["chain_id"])
        if sent[-1]["chain_id"] is not None:
            self.wait_for_chains(plan, [sent[-1]["chain_id"]])
        return self.chains_done(context, plan, {})

    def chains_done(self, context, plan: Plan, chains: dict[str, str]) -> dict:
        failed = {chain: state for chain, state in chains.items() if state != "done"}
        if failed:
            raise StepError(f"the report's chain did not finish: {failed}")
        return {"figures": self.figures(datetime.fromisoformat(plan.details["sent_at"]), plan.details["chain_id"]),
                "chains": chains}

    def execute_complete(self, context, event: dict | None = None, **kwargs) -> dict:
        record = super().execute_complete(context, event, **kwargs)
        self.set_note(context, record)
        return record

    def set_note(self, context, record: dict) -> None:
        if "figures" not in record:
            return
        note = report_note(record.get("day"), record["figures"], sent_at=record.get("sent_at"),
                           planned=bool(record.get("dry_run")))
        self.log.info("%s: run note:\n%s", self.label, note)
        from hooks.airflow_api import AirflowApiHook

        AirflowApiHook.set_run_note_if_configured(context["dag_run"].dag_id, context["run_id"], note, self.log)


def report_note(day, figures: dict[str, int], sent_at=None, planned: bool = False) -> str:
    """The DAG run's note: the day's figures as a short markdown table."""
    head = (f"**Daily report {day}**" + (f", sent {sent_at} UTC" if sent_at else "")
            + (" (plan mode: not sent, counted now)" if planned else ""))
    rows = "\n".join(f"| {label} | {figures[name]} |" for name, label in FIGURES)
    return f"{head}\n\n| figure | count |\n|---|---:|\n{rows}"
