"""RunbookStepOperator: the one base class of every task that implements a runbook step, and
the generic steps built on it (SQL, script, approval gate, section report).

A step is probe -> plan -> apply -> verify, and only probing and applying differ between
steps, so subclasses write `probe()` and `apply()` (and `verify()` where probing again is not
the check; `resume()` where apply defers to a trigger) and the base class does the rest:

- plan mode: the DAG param `dry_run` (true unless a run says otherwise) is read once, here;
  the probe runs, its plan is logged and recorded, nothing changes;
- idempotency: the probe decides; a retry or a second run whose probe finds nothing to change
  changes nothing;
- the record every step returns (its XCom), which the section report collects:
  {"step", "dry_run", "changes": [one line per change], "applied", "node"?, ...details};
- failures: a StepError (bad input, a refused precondition, a command that exited non-zero,
  a plan that still has changes after apply) fails the task without retries, naming the step
  and the node; anything else (a dropped connection, a timeout) is retried by Airflow;
- the task's doc: `doc_md` (or the class docstring) followed by the `Runbook step: <id>`
  line(s), and the task id derived from the step id when not given, so the step id is
  written once per task;
- SQL and scripts: `sql` and `script` are template fields with `template_ext`, resolved
  against the DAG's `template_searchpath` (its product's include/sql/ and include/scripts/),
  so the UI's Rendered Template tab shows exactly the SQL or the script a task ran. A step's
  own file is named by its step id: `db.remove-stray-vps` -> `db/remove-stray-vps.sql`.
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

from airlift import sql as named_sql
from airlift.errors import StepError
from airlift.steps import fill, step_doc, step_file, step_task_id, step_title


@dataclass
class Plan:
    """What a probe found: `changes`, one readable line each (the exact command or SQL, or
    the row it changes), `details` for the record, and `work`, what apply() needs (not
    recorded)."""

    changes: list[str] = field(default_factory=list)
    details: dict = field(default_factory=dict)
    work: Any = None


def _current_group():
    """The TaskGroup a task is being defined in (what BaseOperator itself looks up)."""
    from airflow.sdk.definitions._internal.contextmanager import DagContext, TaskGroupContext

    dag = DagContext.get_current()
    return TaskGroupContext.get_current(dag) if dag else None


# How a task mapped over an inventory of nodes (or of pools: node + filesystem) is labelled in the UI.
NODE_LABEL = "{{ task.node.server_name }}{% if task.node.get('filesystem') %}:{{ task.node.filesystem }}{% endif %}"


def run_label(context) -> str:
    """A file-name-safe label of the DAG run, so each run's files (and jobs) are its own."""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in context["run_id"])


def plan_mode(context) -> bool:
    """The run's `dry_run` param; a DAG without one changes nothing either."""
    return bool(context["params"].get("dry_run", True))


class RunbookStepOperator(BaseOperator):
    """:param step: the runbook step id (include/runbooks/*.yaml) this task implements.
    :param also_steps: further step ids the same task implements.
    :param node: for steps on one node: a dict with `server_name` and `address` (mapped
        tasks expand over an inventory of them).
    :param enabled: a step switched off by a DAG param records that and does nothing.
    :param sql: include/sql/<product>/ file of the step's named statements (default for
        steps that `uses_step_sql`: the file named by the step id).
    :param script: include/scripts/<product>/ (or include/scripts/) script the step runs on a
        node (default for steps that `uses_step_script`: the file named by the step id).
    :param plan_only: probe and record the plan, never apply it (what an approval gate shows
        before the step itself runs)."""

    template_fields: Sequence[str] = ("node", "enabled", "sql", "script")
    template_ext: Sequence[str] = (".sql", ".sh")
    template_fields_renderers = {"sql": "sql", "script": "bash", "node": "json"}
    uses_step_sql = False
    uses_step_script = False
    # Generic steps (SQL, script) are described by the runbook's title of their step unless the
    # DAG says more; a step's own class describes it in its docstring.
    doc_from_runbook = False

    def __init__(self, *, step: str | None = None, also_steps: Sequence[str] = (), node: dict | None = None,
                 enabled=True, sql: str | None = None, script: str | None = None, plan_only: bool = False,
                 **kwargs):
        super().__init__(**self.step_kwargs(step, also_steps, kwargs))
        self.step, self.also_steps, self.node, self.enabled = step, tuple(also_steps), node, enabled
        self.plan_only = plan_only
        self.sql = sql or (step_file(step, ".sql") if self.uses_step_sql and step else None)
        self.script = script or (step_file(step, ".sh") if self.uses_step_script and step else None)
        self.dry_run = True

    @classmethod
    def step_kwargs(cls, step: str | None, also_steps: Sequence[str], kwargs: dict) -> dict:
        """Task id and doc from the step id (also for `.partial()`, which does not call
        __init__ until the task runs)."""
        if step and "task_id" not in kwargs:
            group = kwargs.get("task_group") or _current_group()
            kwargs["task_id"] = step_task_id(step, group.group_id if group else None)
        doc = kwargs.get("doc_md") or (step_title(step) + "." if cls.doc_from_runbook and step
                                        else inspect.cleandoc(cls.__doc__ or ""))
        kwargs["doc_md"] = step_doc([step, *also_steps] if step else [], doc)
        return kwargs

    @classmethod
    def partial(cls, *, step: str | None = None, also_steps: Sequence[str] = (), **kwargs):
        """Mapped steps expand over `node` (an inventory of nodes or pools): labelled by it."""
        kwargs.setdefault("map_index_template", NODE_LABEL)
        return super().partial(step=step, also_steps=also_steps, **cls.step_kwargs(step, also_steps, kwargs))

    # -- what subclasses write --------------------------------------------------------------
    def probe(self, context) -> Plan:
        """Read the world; the changes still to make (none: the step is done)."""
        raise NotImplementedError

    def apply(self, context, plan: Plan) -> dict | None:
        """Make the planned changes; returns details for the record. May defer: the step then
        continues in resume()."""
        raise NotImplementedError

    def resume(self, context, plan: Plan, event: dict) -> dict | None:
        """After apply() deferred: the trigger's event (`plan` is the one apply got); returns
        details for the record. A remote job's event goes to job_done() (see remote_job)."""
        if "job" in event:
            return self._job_resumed(context, plan, event)
        raise NotImplementedError

    def job_done(self, context, plan: Plan, result) -> dict | None:
        """What a finished remote job (remote_job) means: by default its exit status must be 0."""
        if not result.ok:
            from airlift.remote import NodeCommandError

            raise NodeCommandError(result)
        return None

    def verify(self, context, plan: Plan) -> Plan:
        """After apply: what is still to change (must be nothing). Probing again by default."""
        return self.probe(context)

    def close(self) -> None:
        """Release connections the step opened (called after every attempt)."""

    # -- the skeleton -----------------------------------------------------------------------
    @property
    def label(self) -> str:
        """The step and, for a node step, the node: how log lines and errors name the task."""
        where = f" on {self.node['server_name']}" if isinstance(self.node, dict) and "server_name" in self.node else ""
        return f"{self.step or self.task_id}{where}"

    @property
    def statements(self) -> dict[str, str]:
        """The named statements of the (rendered) `sql` file."""
        return named_sql.parse(self.sql, source=self.task_id)

    def execute(self, context) -> dict:
        self.dry_run = plan_mode(context) or self.plan_only
        with self.step_errors():
            if not self.enabled:
                self.log.info("%s: switched off by its parameter", self.label)
                return self.record(Plan(), applied=False, enabled=False)
            plan = self.probe(context)
            if not plan.changes:
                self.log.info("%s: nothing to change", self.label)
                return self.record(plan, applied=False)
            self.log.info("%s: %s:\n%s", self.label, "plan (dry run)" if self.dry_run else "changing",
                          "\n".join(plan.changes))
            if self.dry_run:
                return self.record(plan, applied=False)
            with self._left_on_failure(context):
                return self._finish(context, plan, self.apply(context, plan))

    def execute_complete(self, context, event: dict | None = None, **kwargs) -> dict:
        """Where a step that deferred in apply() continues (`defer_apply`)."""
        self.dry_run = False
        event = event or {}
        plan = Plan(**(event.get("plan") or {}))
        with self.step_errors(), self._left_on_failure(context):
            return self._finish(context, plan, self.resume(context, plan, event))

    LEFT = "left_after_failure"  # XCom key: what a step that failed midway still has to change

    @contextmanager
    def _left_on_failure(self, context):
        """A step that fails while changing may leave part of its plan done (a move stopped
        after some datasets): its probe, run again, says what is left; pushed as XCom `LEFT`
        for the run report (RunReportOperator). The step resumes from there when run again (probes read the
        state, they do not replay a log)."""
        try:
            yield
        except TaskDeferred:
            raise
        except BaseException:
            try:
                left = self.probe(context).changes
            except Exception as exc:  # noqa: BLE001 - the original failure is what matters
                left = [f"unknown: the probe failed too ({type(exc).__name__}: {exc})"]
            if context.get("ti") is not None:
                context["ti"].xcom_push(key=self.LEFT, value=left[:100])
            self.log.warning("%s: failed with %d change(s) still to make:\n%s", self.label, len(left),
                             "\n".join(left[:20]))
            raise

    def defer_apply(self, trigger_class, plan: Plan, timeout: float | None = None, **trigger_kwargs) -> None:
        """apply() hands the wait to a trigger (the worker slot is freed); resume() gets its
        event, which carries the plan back."""
        from datetime import timedelta

        trigger = trigger_class(plan={"changes": plan.changes, "details": plan.details}, **trigger_kwargs)
        self.defer(trigger=trigger, method_name="execute_complete",
                   timeout=None if timeout is None else timedelta(seconds=timeout))

    # -- remote jobs ------------------------------------------------------------------------
    inline_wait = 15.0  # how long a remote job is waited for in the worker before the wait defers
    job_timeout = 6 * 3600.0

    def remote_job(self, context, nodes, host: str, script: str, args: list[str], plan: Plan) -> dict | None:
        """Run a script on `host` as this step's remote job (hooks/node.py: detached, its own
        process group, state on the node, never two copies) and hand the finished job to
        job_done(). A job still running after `inline_wait` is waited for deferred
        (RemoteJobTrigger). A retry finds the earlier attempt's job: still running (it waits
        for it), finished (its result stands) or died (it starts it anew)."""
        from airlift.remote import Result
        from triggers.remote_job import RemoteJobTrigger

        key, run = self.job_key(context), run_label(context)
        self._job = (nodes, host, key)
        if self.rerun_failed_job:
            earlier = nodes.job_status(host, key)
            if earlier.run == run and earlier.state in ("finished", "died") and earlier.exit_status != 0:
                self.log.info("%s: the earlier attempt's job ended %s; starting it anew", self.label,
                              f"with exit {earlier.exit_status}" if earlier.state == "finished"
                              else "without an exit status")
                nodes.forget_job(host, key)
        elif not self.restart_died_job:
            earlier = nodes.job_status(host, key)
            if earlier.run == run and earlier.state == "died":
                self.job_died(host, key)
        state = nodes.start_job(host, key, run, script, args)
        deadline = time.monotonic() + self.inline_wait
        while state.state == "running" and state.run == run and time.monotonic() < deadline:
            time.sleep(0.5)
            state = nodes.job_status(host, key)
        if state.run == run and state.state == "finished":
            return self.job_done(context, plan, Result(host, f"job {key}", state.exit_status,
                                                       nodes.job_output(host, key), ""))
        if state.run == run and state.state == "died":
            self.job_died(host, key)
        if state.run != run:
            self.log.warning("%s: %s's job of run %s still runs on %s; this run's starts after it", self.label,
                             key, state.run, host)
        self.log.info("%s: job %s runs on %s (process group %s); waiting for it deferred", self.label, key, host,
                      state.pgid)
        self.defer_apply(RemoteJobTrigger, plan, timeout=self.job_timeout, ssh_conn_id=nodes.ssh_conn_id, host=host,
                         key=key, run=run)

    def _job_resumed(self, context, plan: Plan, event: dict) -> dict | None:
        from airlift.remote import Result

        nodes, host, key = self.job_nodes(), event["host"], event["job"]
        self._job = (nodes, host, key)
        if event["run"] != run_label(context):  # another run's job ended: ours starts now
            return self.apply(context, plan)
        if event["status"] == "died":
            self.job_died(host, key)
        return self.job_done(context, plan, Result(host, f"job {key}", event["exit_status"],
                                                   nodes.job_output(host, key), ""))

    restart_died_job = True  # scripts check before they change; a step whose tool is not safe to rerun says False
    # A retry of a job that failed in this run starts it anew instead of its failure standing
    # (for scripts that pick up where they stopped, e.g. a stream resuming from its token);
    # a job that still runs is waited for either way, never started twice.
    rerun_failed_job = False

    def job_died(self, host: str, key: str) -> None:
        """This run's job ended without an exit status (killed, or the node restarted). By default
        a retryable error: the retry starts the job anew. With `restart_died_job = False` the
        retry stops here instead (job_died is called before a second start)."""
        from airlift.remote import JobDied

        if self.restart_died_job:
            raise JobDied(f"{host}: job {key} died (killed, or the node restarted); a retry starts it anew")
        raise StepError(f"{host}: job {key} died (killed, or the node restarted) before it finished; it is not "
                        "started again")

    def job_nodes(self):
        """The NodeHook this step's remote jobs run through."""
        raise NotImplementedError

    def job_key(self, context) -> str:
        """The step's job on a node: one per DAG, task and map index, whichever run."""
        from airlift.remote import job_key

        return job_key(self.dag_id, self.task_id, context["ti"].map_index)

    def on_kill(self) -> None:
        """The task was killed or timed out: end its remote job's process group too."""
        job = getattr(self, "_job", None)
        if job:
            nodes, host, key = job
            self.log.warning("%s: ending job %s on %s", self.label, key, host)
            # its own connection: the task's is in use by execute() and may be closing under it
            killer = type(nodes)(ssh_conn_id=nodes.ssh_conn_id)
            try:
                killer.kill_job(host, key)
            finally:
                killer.close()

    def _finish(self, context, plan: Plan, done: dict | None) -> dict:
        left = self.verify(context, plan)
        if left.changes:
            raise StepError("still to change after applying the plan:\n" + "\n".join(left.changes[:20]))
        self.log.info("%s: %d change(s) made", self.label, len(plan.changes))
        return self.record(plan, applied=True, **(done or {}))

    def record(self, plan: Plan, /, applied: bool, **details) -> dict:
        record = {"step": self.step, "dry_run": self.dry_run, "changes": plan.changes, "applied": applied}
        if isinstance(self.node, dict) and "server_name" in self.node:
            record["node"] = self.node["server_name"]
        return {**record, **plan.details, **details}

    def step_errors(self):
        """Context manager: a StepError fails the task (not retried) naming the step and the
        node; connections are closed either way. execute() runs the skeleton inside it."""
        return _StepErrors(self)


class _StepErrors:
    """StepError -> AirflowFailException (not retried) naming the step and node; close() always."""

    def __init__(self, op: RunbookStepOperator):
        self.op = op

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.op.close()
        if exc_type is not None and issubclass(exc_type, StepError):
            raise AirflowFailException(f"{self.op.label}: {exc}") from exc
        return False


# -- generic steps -------------------------------------------------------------------------

class SqlStepOperator(RunbookStepOperator):
    """A database step from its SQL file (include/sql/<product>/<section>/<step>.sql): `probe`
    counts the rows to change (`to_change`), `sample` (optional) shows some, `apply` changes
    them in one transaction; the probe must count 0 afterwards. Works on any DB-API
    connection (MySQL, PostgreSQL) named by `conn_id`."""

    uses_step_sql = True
    doc_from_runbook = True
    ui_color = "#e8f4fd"

    def __init__(self, *, conn_id: str, **kwargs):
        super().__init__(**kwargs)
        self.conn_id = conn_id

    def _hook(self):
        """The connection's hook; for MySQL the one with timeouts (a hung server fails the try)."""
        from airflow.sdk.bases.hook import BaseHook

        connection = BaseHook.get_connection(self.conn_id)
        if connection.conn_type == "mysql":
            from hooks.mysql import MySqlTimeoutsHook

            return MySqlTimeoutsHook(mysql_conn_id=self.conn_id)
        return connection.get_hook()

    def probe(self, context) -> Plan:
        hook = self._hook()
        to_change = int(hook.get_first(self.statements["probe"])[0])
        if not to_change:
            return Plan(details={"rows": 0})
        if "sample" in self.statements:
            for row in hook.get_records(self.statements["sample"]):
                self.log.info("%s: %s", self.label, row)
        return Plan([f"{to_change} row(s): {self.statements['apply']}"], details={"rows": to_change})

    def apply(self, context, plan: Plan) -> dict:
        # one transaction: DbApiHook.run commits after the statement (the handler reads the count)
        return {"rows": self._hook().run(self.statements["apply"], handler=lambda cur: cur.rowcount)}


class NodeScriptOperator(RunbookStepOperator):
    """A step done by a script on one node (include/scripts/<product>/<section>/<step>.sh, or
    `script`). The script's contract: with `--check` first it changes nothing and exits 0 when
    there is nothing to do, or exits 10 printing the changes it would make (one per line);
    without it, it makes them. Any other exit is an error. After a real run, `--check` must
    exit 0. `args` are passed as they are (the script gets them as "$@", never through a
    shell); `{key}` in an argument is replaced by the node's value of key."""

    template_fields: Sequence[str] = (*RunbookStepOperator.template_fields, "args")
    uses_step_script = True
    doc_from_runbook = True
    ui_color = "#fdf3e8"
    PENDING = 10

    def __init__(self, *, args: Sequence[str] = (), ssh_conn_id: str, timeout: float = 3600, **kwargs):
        super().__init__(**kwargs)
        self.args, self.ssh_conn_id, self.job_timeout = list(args), ssh_conn_id, timeout
        self._nodes = None

    @property
    def nodes(self):
        if self._nodes is None:
            from hooks.node import NodeHook

            self._nodes = NodeHook(self.ssh_conn_id)
        return self._nodes

    def _args(self) -> list[str]:
        return [fill(a, self.node) for a in self.args]

    def probe(self, context) -> Plan:
        result = self.nodes.run_script(self.node["address"], self.script, ["--check", *self._args()],
                                       check=False, timeout=600)
        if result.exit_status == 0:
            return Plan()
        if result.exit_status == self.PENDING:
            name = self.node["server_name"]
            return Plan([f"{name}: {line}" for line in result.stdout.splitlines() if line.strip()])
        from airlift.remote import NodeCommandError

        raise NodeCommandError(result)

    def apply(self, context, plan: Plan) -> dict | None:
        return self.remote_job(context, self.nodes, self.node["address"], self.script, self._args(), plan)

    def job_done(self, context, plan: Plan, result) -> None:
        for line in result.stdout.splitlines():
            self.log.info("[%s] %s", self.node["server_name"], line)
        super().job_done(context, plan, result)

    def job_nodes(self):
        return self.nodes

    def close(self) -> None:
        if self._nodes is not None:
            self._nodes.close()
            self._nodes = None


class ApprovalGateOperator(ApprovalOperator, RunbookStepOperator):
    """An approval before an irreversible step (HITL: the task waits in `awaiting_input` until
    someone answers in the UI). `plan` (a step record, e.g. an XComArg) is shown in the body as
    a markdown list. Assigned to the deployment's `[airlift] approvers`; unanswered after
    `approval_timeout_hours` it fails (no defaults: never approves on timeout). Only the
    deployment setting `[airlift] approval_gates = false` switches gates off (lab rehearsals;
    see airlift/settings.py), never a trigger-form param.

    A gate never asks twice for one decision: the answer is kept (an Airflow Variable named
    for the DAG run, task and map index) the moment it arrives, and a retried gate (a worker
    lost after the answer, a scheduler that failed the task on a stale event) takes it from
    there instead of asking again. When the answer never reached the gate (Airflow 3.3's
    scheduler can fail a gate answered within a second of its question), a retried gate first
    has the triggerer look at the earlier try's question (triggers/approval.py) and takes its
    answer."""

    template_fields: Sequence[str] = (*ApprovalOperator.template_fields, "plan")

    def __init__(self, *, plan=None, ask_when_empty: bool = True, **kwargs):
        from airlift import settings

        self.ask_when_empty = ask_when_empty
        kwargs.setdefault("assigned_users", settings.approvers() or None)
        kwargs.setdefault("response_timeout", settings.approval_timeout())
        super().__init__(**kwargs)
        self.plan = plan

    def execute(self, context):
        from airlift import settings

        if not settings.approval_gates():
            self.log.warning("approval gates switched off by the deployment ([airlift] approval_gates = false): "
                             "proceeding")
            return {"chosen_options": ["Approve"], "params_input": {}, "gate": "switched off"}
        if plan_mode(context):
            self.log.info("plan mode: nothing will change, nobody is asked")
            return {"chosen_options": ["Approve"], "params_input": {}, "gate": "plan mode"}
        if not self.ask_when_empty and not planned_changes(self.plan):
            self.log.info("the plan changes nothing: nobody is asked")
            return {"chosen_options": ["Approve"], "params_input": {}, "gate": "nothing to approve"}
        earlier = self._earlier_answer(context)
        if earlier is not None:
            self.log.info("answered before this try by %s at %s: %s; not asking again",
                          (earlier.get("responded_by_user") or {}).get("name"), earlier["responded_at"],
                          earlier["chosen_options"])
            return self.execute_complete(context, event=earlier)
        ti = context.get("ti")
        if getattr(ti, "try_number", 1) > 1:
            from triggers.approval import EarlierAnswerTrigger

            self.defer(trigger=EarlierAnswerTrigger(ti_id=str(ti.id)), method_name="execute_after_look")
        return self._ask(context)

    def execute_after_look(self, context, event: dict):
        """A retried gate, back from its look at the earlier try's question."""
        if event.get("answer"):
            answer = event["answer"]
            self.log.info("answered in an earlier try by %s at %s: %s; not asking again",
                          (answer.get("responded_by_user") or {}).get("name"), answer["responded_at"],
                          answer["chosen_options"])
            return self.execute_complete(context, event=answer)
        return self._ask(context)

    def _ask(self, context):
        if self.plan:
            self.body = f"{self.body}\n\n{markdown(self.plan)}"
        return super().execute(context)

    def execute_complete(self, context, event: dict):
        if "error" not in event and self._earlier_answer(context) is None:
            from airflow.sdk import Variable

            Variable.set(self._answer_key(context), json.dumps(
                {**event, "responded_at": event["responded_at"].isoformat()}, default=str))
        return super().execute_complete(context, event)

    def _answer_key(self, context) -> str:
        return self.answer_key(self.dag_id, context["run_id"], self.task_id, context["ti"].map_index)

    @staticmethod
    def answer_key(dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
        return f"airlift_gate.{dag_id}.{run_id}.{task_id}.{map_index}"

    @classmethod
    def answered(cls, context, task_id: str) -> list[str]:
        """The options a gate of this run was answered with ([] if it asked nobody): how a later
        task acts on a Reject, which skips the gate's downstream tasks and leaves no XCom."""
        from airflow.sdk import Variable

        stored = Variable.get(cls.answer_key(context["dag"].dag_id, context["run_id"], task_id), default=None)
        return json.loads(stored)["chosen_options"] if stored else []

    def _earlier_answer(self, context) -> dict | None:
        from datetime import datetime

        from airflow.sdk import Variable

        stored = Variable.get(self._answer_key(context), default=None)
        if stored is None:
            return None
        answer = json.loads(stored)
        return {**answer, "responded_at": datetime.fromisoformat(answer["responded_at"])}


def planned_changes(plan) -> list[str]:
    """The changes of a step record, or of a sequence of them (a mapped step's records reach
    a task as a lazy sequence, not a list)."""
    records = [plan] if isinstance(plan, dict) or plan is None else list(plan)
    return [change for r in records if isinstance(r, dict) for change in r.get("changes") or []]


def markdown(record) -> str:
    """A step record (or any dict/list) as a short markdown list for a human to read; a
    mapped step's records as one list of their changes."""
    if isinstance(record, Iterable) and not isinstance(record, dict | str | bytes | list):
        record = list(record)  # a mapped step's records (lazy sequence)
    if isinstance(record, list) and record and all(isinstance(r, dict) and "changes" in r for r in record):
        return "\n".join(f"- {change}" for change in planned_changes(record)) or "- nothing to change"
    if isinstance(record, dict) and "changes" in record:
        lines = [f"- {change}" for change in record["changes"]] or ["- nothing to change"]
        extra = {k: v for k, v in record.items() if k not in ("step", "dry_run", "changes", "applied")}
        return "\n".join(lines + [f"- **{k}**: {markdown_value(v)}" for k, v in extra.items()])
    if isinstance(record, dict):
        return "\n".join(f"- **{k}**: {markdown_value(v)}" for k, v in record.items())
    if isinstance(record, list):
        return "\n".join(f"- {markdown_value(v)}" for v in record)
    return str(record)


def markdown_value(value) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{k}: {markdown_value(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(markdown_value(v) for v in value)
    return f"`{value}`" if isinstance(value, str) and "/" in value else str(value)


class SectionReportOperator(RunbookStepOperator):
    """Ends a section (its TaskGroup): collects the step records of every other task of the
    group and logs what was changed, or in plan mode what would change, and what steps left
    undone (a record's `left`: e.g. what belongs to a skipped node). Runs when nothing upstream
    failed."""

    def __init__(self, *, section: str, **kwargs):
        kwargs.setdefault("task_id", "report")
        kwargs.setdefault("trigger_rule", "none_failed")
        kwargs.setdefault("doc_md", f"What the {section} section changed (or in plan mode would change).")
        super().__init__(**kwargs)
        self.section = section

    def execute(self, context) -> dict:
        ti, lines, left = context["ti"], [], []
        task_ids = [t.task_id for t in self.task_group.iter_tasks() if t.task_id != self.task_id]
        for task_id in task_ids:
            records = ti.xcom_pull(task_ids=task_id, map_indexes=None, default=None)
            for record in records if isinstance(records, list) else [records]:
                if isinstance(record, dict) and "step" in record and "changes" in record:
                    state = "applied" if record["applied"] else "planned"
                    lines += [f"[{record['step']}] {state}: {change}" for change in record["changes"]]
                    left += [f"[{record['step']}] left: {item}" for item in record.get("left") or []]
        dry_run = plan_mode(context)
        header = f"{self.section}: {len(lines)} change(s) {'planned (dry run)' if dry_run else 'made'}"
        self.log.info("%s\n%s%s", header, "\n".join(lines) or "nothing to change",
                      f"\n{len(left)} item(s) left:\n" + "\n".join(left) if left else "")
        return {"section": self.section, "dry_run": dry_run, "changes": len(lines), "lines": lines, "left": left}


class RunReportOperator(RunbookStepOperator):
    """The run's last task (after every other one, whatever their state): per section, how
    many changes were made, which step failed and what its probe says it left (XCom `LEFT`:
    the move that stopped after some datasets), which steps never ran. After a failure this
    is where an operator reads what is done and what is left before fixing the cause and
    running again (the steps resume: they probe what is still to do). Fails when anything
    failed, so the run's state stays failed."""

    def __init__(self, **kwargs):
        kwargs.setdefault("task_id", "run_report")
        kwargs.setdefault("trigger_rule", "all_done")
        kwargs.setdefault("doc_md", "What the run did and, after a failure, what is left, section by section.")
        super().__init__(**kwargs)

    def execute(self, context) -> dict:
        import re
        from collections import defaultdict

        ti, run_id = context["ti"], context["run_id"]
        states = ti.get_task_states(dag_id=self.dag_id, run_ids=[run_id]).get(run_id, {})
        sections: dict[str, dict] = defaultdict(lambda: {"changes": 0, "failed": {}, "not_run": []})
        for key, state in sorted(states.items()):
            task_id = key if key in self.dag.task_dict else re.sub(r"_\d+$", "", key)
            if task_id == self.task_id or task_id not in self.dag.task_dict:
                continue
            # one instance of a mapped task (or of a task in a mapped group): its own XCom
            map_index = int(key.rsplit("_", 1)[1]) if key != task_id else None
            section = sections[task_id.split(".")[0]]
            if state == "success" and not task_id.endswith(".report"):
                records = ti.xcom_pull(task_ids=task_id, map_indexes=map_index, default=None) or []
                for record in records if isinstance(records, list) else [records]:
                    if isinstance(record, dict) and record.get("applied"):
                        section["changes"] += len(record.get("changes") or [])
            elif state == "failed":
                left = ti.xcom_pull(task_ids=task_id, key=self.LEFT, map_indexes=map_index, default=None) or []
                section["failed"][key] = [item for items in left for item in (items or [])] \
                    if left and isinstance(left[0], list) else left
            elif state in ("upstream_failed", None):
                section["not_run"].append(key)
        lines = []
        for name, section in sections.items():
            lines.append(f"{name}: {section['changes']} change(s) made"
                         + (f", {len(section['not_run'])} step(s) not run" if section["not_run"] else ""))
            for key, left in section["failed"].items():
                lines.append(f"  FAILED {key}; left: " + ("; ".join(left[:20]) if left else "nothing known"))
        self.log.info("run report:\n%s", "\n".join(lines))
        failed = [key for section in sections.values() for key in section["failed"]]
        if failed:
            raise AirflowFailException(f"the run stopped at {', '.join(failed)}: fix the cause, then run again "
                                       "(done steps find nothing to do; the failed ones resume)")
        return {"sections": {name: section["changes"] for name, section in sections.items()}}
