"""The steps of DAG vpsadmin_lifetimes (runbook: "Cron jobs", the lifetimes rake tasks): mail
owners of objects about to expire, and move expired objects to their next state. rake does
the work on the API host, as the runbook's cron jobs did; the steps plan, run it as a remote
job, wait (deferred) for the transaction chains it fires and check what they did.
The pure parts (models, states, command lines, rake's output) are plugins/vpsadmin/lifetimes.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from airlift.errors import StepError
from operators.runbook_step import Plan, RunbookStepOperator
from operators.vpsadmin_upgrade.common import VpsAdminStepOperator
from vpsadmin import lifetimes as lt
from vpsadmin.inventory import check_address

RAKE_TIME = "%Y-%m-%d %H:%M:%S UTC"  # Ruby's Time#to_s of a UTC time, as rake prints it


class ScheduledStepOperator(VpsAdminStepOperator):
    """A step of a scheduled vpsAdmin DAG: rake on the API host (`api_host`, empty: the host of
    connection vpsadmin_ssh), then a wait for the transaction chains it fired.

    :param max_changes: a run that would change more objects than this refuses before it
        changes anything (a wrong clock or a bad restore would otherwise suspend or destroy
        half the cluster in one night)."""

    template_fields: Sequence[str] = (*RunbookStepOperator.template_fields, "api_host", "max_changes")
    uses_step_sql = True
    chain_timeout = 6 * 3600.0

    def __init__(self, *, api_host: str = "", max_changes=500, poll_interval: float = 5.0, **kwargs):
        super().__init__(**kwargs)
        self.api_host, self.max_changes, self.poll_interval = api_host, max_changes, poll_interval

    def host(self) -> str:
        """The API host, checked (a trigger-form value that reaches ssh)."""
        host = self.api_host or self.nodes.default_host
        errors = check_address("api_host", host)
        limit = self.max_changes
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            errors.append(f"max_changes {limit!r} is not a number of objects (1 or more)")
        lt.raise_if(errors)
        return host

    def check_size(self, count: int) -> None:
        limit = self.max_changes
        if count > limit:
            raise StepError(f"{count} objects would change, more than max_changes ({limit}): nothing was changed. "
                            "Check the cluster's clock and the expiration dates; to go on, run with a higher "
                            "max_changes.")

    def rake_command(self) -> str:
        """The checked, quoted shell line of the step's rake task (vpsadmin/lifetimes.py)."""
        raise NotImplementedError

    def apply(self, context, plan: Plan) -> dict | None:
        command = self.rake_command()
        self.log.info("%s: %s", self.label, command)
        return self.remote_job(context, self.nodes, self.host(), command, [], plan)

    def rake_output(self, result, after_failure: str = "") -> str:
        """rake's output, logged line by line; a failed rake fails the step."""
        for line in result.stdout.splitlines():
            self.log.info("[rake] %s", line)
        if not result.ok:
            raise StepError(f"rake exited {result.exit_status}{after_failure}:\n{result.tail(20)}")
        return result.stdout

    def wait_for_chains(self, plan: Plan, chain_ids: list[int]) -> None:
        """Defers until the chains are final (TransactionChainsTrigger); resume() gets them."""
        from triggers.vpsadmin import TransactionChainsTrigger

        self.log.info("%s: waiting for %d chain(s) (deferred): %s", self.label, len(chain_ids),
                      ", ".join(map(str, chain_ids[:20])))
        self.defer_apply(TransactionChainsTrigger, plan, timeout=self.chain_timeout, chain_ids=chain_ids,
                         mysql_conn_id=self.mysql_conn_id, poll_interval=self.poll_interval)

    def resume(self, context, plan: Plan, event: dict) -> dict | None:
        if "job" in event:
            return super().resume(context, plan, event)
        return self.chains_done(context, plan, event.get("chains") or {})

    def chains_done(self, context, plan: Plan, chains: dict[str, str]) -> dict | None:
        raise NotImplementedError

    def verify(self, context, plan: Plan) -> Plan:
        return Plan()  # chains_done checked the outcome object by object


class ProgressOperator(ScheduledStepOperator):
    """`rake vpsadmin:lifetimes:progress` for some models: objects whose expiration date passed
    (less `grace` seconds) move to their next state, with a new expiration `new_expiration`
    seconds ahead (else the environment's default, or none). Plan mode runs rake without
    `EXECUTE=yes` (the runbook's commands lack it: as written they change nothing) and lists
    what each object would become. A real run then runs it with `EXECUTE=yes` as a remote job,
    waits for the chains it fired and checks that exactly the planned objects reached the
    planned state, with the expiration their state log says. An object another chain holds
    ("resource locked") stays for the next run; it is listed, not a failure."""

    template_fields: Sequence[str] = (*ScheduledStepOperator.template_fields, "grace", "new_expiration", "reason")

    def __init__(self, *, objects: Sequence[str], states: Sequence[str] | None = None, grace=None,
                 new_expiration=None, reason=None, **kwargs):
        kwargs.setdefault("sql", "lifetimes/objects.sql")
        super().__init__(**kwargs)
        self.objects, self.states = list(objects), list(states) if states else None
        self.grace, self.new_expiration, self.reason = grace, new_expiration, reason

    def command(self, execute: bool) -> str:
        return lt.progress_command(self.objects, self.states, self.grace, self.new_expiration, self.reason or None,
                                   execute=execute)

    def probe(self, context) -> Plan:
        command, host = self.command(execute=False), self.host()  # bad settings refused before anything runs
        self.log.info("%s: %s (dry run: the plan)", self.label, command)
        result = self.nodes.run(host, command, check=False, timeout=1800)
        if not result.ok:
            raise StepError(f"`{command}` exited {result.exit_status}:\n{result.tail(20)}")
        selected = lt.parse_progress(result.stdout)
        changes, planned = [], {}
        for name in self.objects:
            ids = (selected.get(name) or {}).get("ids") or []
            if not ids:
                continue
            model = lt.MODELS[name]
            for row in self.db.rows(self.statements[f"objects_{name}"], {"ids": tuple(ids)}):
                state = lt.state_name(model, row["object_state"])
                target = model.next_state(state)
                planned.setdefault(name, {})[str(row["id"])] = [state, target]
                expires = _expiration_text(self.new_expiration)
                changes.append(f"{name} {row['id']} ({row['label']}): {state} -> {target or 'nothing (last state)'}"
                               f"{expires}")
        self.check_size(len(changes))
        return Plan(changes, details={"planned": planned})

    def rake_command(self) -> str:
        return self.command(execute=True)

    def job_done(self, context, plan: Plan, result) -> dict | None:
        output = self.rake_output(result, "; the objects it reached before are in their new state, the next run "
                                          "takes the rest")
        selected, started = lt.parse_progress(output), _rake_time(output)
        moved = {name: [i for i in found["ids"] if i not in found["locked"]] for name, found in selected.items()}
        plan.details.update(moved=moved, locked={n: f["locked"] for n, f in selected.items() if f["locked"]},
                            started=started.isoformat() if started else None)
        chain_ids = sorted({row["id"] for name, ids in moved.items() if ids
                            for row in self.db.rows(self.statements["open_chains"],
                                                    {"class_name": name, "ids": tuple(ids)})})
        if chain_ids:
            self.wait_for_chains(plan, chain_ids)
        return self.chains_done(context, plan, {})

    def chains_done(self, context, plan: Plan, chains: dict[str, str]) -> dict:
        details, problems, left = plan.details, [], []
        for name, ids in (details.get("moved") or {}).items():
            if not ids:
                continue
            model, planned = lt.MODELS[name], (details.get("planned") or {}).get(name, {})
            params = {"class_name": name, "ids": tuple(ids)}
            rows = {r["id"]: r for r in self.db.rows(self.statements[f"objects_{name}"], params)}
            logs = {r["row_id"]: r for r in self.db.rows(self.statements["state_logs"], params)}
            failed = {r["row_id"]: r for r in self.db.rows(self.statements["failed_chains"], params)}
            for object_id in ids:
                problem = self._check(name, model, object_id, rows.get(object_id), logs.get(object_id),
                                      planned.get(str(object_id)), details.get("started"))
                if problem:
                    why = failed.get(object_id)
                    problems.append(problem + (f" (chain {why['chain_id']} failed: {why['error']})" if why else ""))
        for name, ids in (details.get("locked") or {}).items():
            left += [f"{name} {i}: resource locked by another chain; the next run moves it" for i in ids]
        if left:
            self.log.warning("%s: %d object(s) locked, left for the next run:\n%s", self.label, len(left),
                             "\n".join(left))
        if problems:
            raise StepError(f"{len(problems)} object(s) did not reach their planned state:\n" + "\n".join(problems[:50]))
        return {"left": left, "chains": chains}

    def _check(self, name, model, object_id, row, log, planned, started) -> str | None:
        """What is wrong with one object the run moved (None: it is as planned)."""
        if row is None:
            return f"{name} {object_id}: gone" if model.name not in ("Dataset", "SnapshotDownload") else None
        state = lt.state_name(model, row["object_state"])
        target = planned[1] if planned else None
        if target is None:
            return f"{name} {object_id}: rake moved an object the plan did not list (now {state})"
        if state != target:
            return f"{name} {object_id}: {state}, expected {target}"
        if log is None or lt.state_name(model, log["state"]) != target:
            return f"{name} {object_id}: no state log for {target}"
        if row["expiration_date"] != log["expiration_date"]:
            return f"{name} {object_id}: expiration {row['expiration_date']}, its state log says {log['expiration_date']}"
        if self.new_expiration is not None and started:
            expected = datetime.fromisoformat(started) + timedelta(seconds=(self.grace or 0) + self.new_expiration)
            if log["expiration_date"] is None or abs(log["expiration_date"] - expected) > timedelta(seconds=2):
                return f"{name} {object_id}: new expiration {log['expiration_date']}, expected {expected}"
        return None


class MailOperator(ScheduledStepOperator):
    """`rake vpsadmin:lifetimes:mail` for one model: owners of objects that expire within `days`
    (or have expired) get the template `expiration_<model>_<state>`, if their mailer is on.
    rake has no dry run: the plan is the same selection read from the database. The mailing
    is daily: once the day's mails of this model are logged (mail_logs, the run's day in UTC),
    another run that day sends none. Templates the selection needs must exist (a missing one
    fails rake's chain): checked before anything is sent."""

    template_fields: Sequence[str] = (*ScheduledStepOperator.template_fields, "days")

    def __init__(self, *, model: str, states: Sequence[str] | None = None, days=7, **kwargs):
        kwargs.setdefault("sql", "lifetimes/mail.sql")
        super().__init__(**kwargs)
        self.model, self.states, self.days = model, list(states) if states else None, days

    @property
    def prefix(self) -> str:
        """LIKE pattern of the model's expiration templates (`_` escaped)."""
        model = lt.MODELS[self.model].underscore.replace("_", r"\_")
        return rf"expiration\_{model}\_%"

    def probe(self, context) -> Plan:
        lt.raise_if(lt.check_mail([self.model], self.states, self.days))
        self.host()
        day = run_day(context)
        mailed = self.db.rows(self.statements["mailed_since"], {"prefix": self.prefix, "day": day})
        if mailed:
            self.log.info("%s: %d expiration mail(s) were sent on %s already (chain %s); one mailing a day",
                          self.label, len(mailed), day.date(), ", ".join(sorted({str(m["chain_id"]) for m in mailed})))
            return Plan(details={"day": str(day.date()), "mailed": len(mailed)})
        states = tuple(lt.STATES.index(s) for s in self.states) if self.states else (-1,)
        selection = self.db.rows(self.statements[f"selection_{self.model}"],
                                 {"days": self.days, "any_state": 0 if self.states else 1, "states": states})
        model = lt.MODELS[self.model]
        templates = {r["name"] for r in self.db.rows(self.statements["templates"], {"prefix": self.prefix})}
        changes, quiet, missing = [], [], set()
        for row in selection:
            template = f"expiration_{model.underscore}_{lt.state_name(model, row['object_state'])}"
            what = f"{self.model} {row['id']} ({row['label']}, expires {row['expiration_date']})"
            if not row["mailer"]:
                quiet.append(f"{what}: {row['owner']}'s mailer is off")
            else:
                changes.append(f"mail {template} to {row['owner']} about {what}")
                if template not in templates:
                    missing.add(template)
        if missing:
            raise StepError(f"mail template(s) {', '.join(sorted(missing))} missing: rake would fail its chain and "
                            "send nothing. Create them (vpsAdmin: mail templates) first.")
        self.check_size(len(changes))
        return Plan(changes, details={"day": str(day.date()), "not_mailed": quiet})

    def rake_command(self) -> str:
        return lt.mail_command([self.model], self.states, self.days)

    def job_done(self, context, plan: Plan, result) -> dict | None:
        self.rake_output(result)
        mailed = self.db.rows(self.statements["mailed_since"], {"prefix": self.prefix, "day": run_day(context)})
        plan.details["mail_logs"] = [m["id"] for m in mailed]
        chain_ids = sorted({m["chain_id"] for m in mailed if m["chain_id"] is not None})
        if chain_ids:
            self.wait_for_chains(plan, chain_ids)
        return self.chains_done(context, plan, {})

    def chains_done(self, context, plan: Plan, chains: dict[str, str]) -> dict:
        sent = len(plan.details.get("mail_logs") or [])
        failed = {chain: state for chain, state in chains.items() if state != "done"}
        if failed:
            raise StepError(f"mail chain(s) did not finish: {failed}")
        if sent != len(plan.changes):
            raise StepError(f"{sent} expiration mail(s) logged, {len(plan.changes)} planned")
        return {"mailed": sent, "chains": chains}


def run_day(context) -> datetime:
    """00:00 UTC of the DAG run's day (its run_after): what `once a day` counts in, stable
    across the run's retries. Naive, as the database's datetimes are."""
    when = context["dag_run"].run_after
    return when.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)


def _rake_time(output: str) -> datetime | None:
    """The `older than` time progress printed (Time.now.utc - GRACE, naive UTC)."""
    marker = "expiration date older than "
    for line in output.splitlines():
        if marker in line:
            return datetime.strptime(line.split(marker, 1)[1].strip(), RAKE_TIME)
    return None


def _expiration_text(seconds) -> str:
    if seconds is None:
        return ""
    days = seconds / lt.DAY
    return f", new expiration in {days:g} day(s)"
