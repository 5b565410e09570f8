"""RunbookStepOperator's skeleton on a toy step (no database, no SSH): plan mode changes
nothing, a real run applies and verifies, a second run finds nothing to do, deterministic
errors fail without retries, the step id names the task and its doc; and the generic gate,
markdown and report pieces."""

from __future__ import annotations

from datetime import datetime

import pytest
from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import DAG, TaskGroup
from airflow.sdk.exceptions import AirflowFailException

from airlift.errors import StepError
from airlift.steps import steps_named
from operators.runbook_step import (
    NODE_LABEL,
    ApprovalGateOperator,
    NodeScriptOperator,
    Plan,
    RunbookStepOperator,
    SectionReportOperator,
    markdown,
)


class CountTo(RunbookStepOperator):
    """Counts the world's `n` up to `target`."""

    def __init__(self, *, world: dict, target: int, broken: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.world, self.target, self.broken = world, target, broken
        self.closed = 0

    def probe(self, context) -> Plan:
        if self.world.get("refuse"):
            raise StepError("refused: the world says no")
        return Plan([f"n {n} -> {n + 1}" for n in range(self.world["n"], self.target)], details={"from": self.world["n"]})

    def apply(self, context, plan: Plan) -> dict:
        if not self.broken:
            self.world["n"] = self.target
        return {"to": self.world["n"]}

    def close(self) -> None:
        self.closed += 1


def ctx(dry_run=None, **params):
    if dry_run is not None:
        params["dry_run"] = dry_run
    return {"params": params}


def test_plan_mode_records_and_changes_nothing():
    world = {"n": 1}
    op = CountTo(task_id="count", step="db.count-up", world=world, target=3)
    record = op.execute(ctx())  # no dry_run param at all: plan mode
    assert world == {"n": 1}
    assert record == {"step": "db.count-up", "dry_run": True, "changes": ["n 1 -> 2", "n 2 -> 3"], "applied": False,
                      "from": 1}
    assert op.closed == 1


def test_real_run_applies_verifies_and_a_second_run_changes_nothing():
    world = {"n": 1}
    op = CountTo(task_id="count", step="db.count-up", world=world, target=3)
    record = op.execute(ctx(dry_run=False))
    assert world["n"] == 3 and record["applied"] is True and record["to"] == 3
    again = op.execute(ctx(dry_run=False))
    assert again["changes"] == [] and again["applied"] is False


def test_a_plan_that_still_has_changes_after_apply_fails_without_retry():
    op = CountTo(task_id="count", step="db.count-up", world={"n": 1}, target=2, broken=True)
    with pytest.raises(AirflowFailException, match="db.count-up: still to change after applying the plan:\nn 1 -> 2"):
        op.execute(ctx(dry_run=False))
    assert op.closed == 1


def test_step_errors_name_the_step_and_node_other_errors_stay_retryable():
    op = CountTo(task_id="count", step="db.count-up", world={"n": 1, "refuse": True}, target=2,
                 node={"server_name": "node1", "address": "127.0.1.11"})
    with pytest.raises(AirflowFailException, match="^db.count-up on node1: refused: the world says no$"):
        op.execute(ctx(dry_run=False))
    flaky = CountTo(task_id="flaky", step="db.count-up", world={}, target=2)  # KeyError: not a StepError
    with pytest.raises(KeyError):
        flaky.execute(ctx(dry_run=False))
    assert flaky.closed == 1


def test_a_step_switched_off_by_its_param_does_nothing():
    world = {"n": 1}
    record = CountTo(task_id="count", step="db.count-up", world=world, target=3, enabled=False).execute(ctx(False))
    assert world == {"n": 1} and record["enabled"] is False and record["changes"] == []


def test_the_step_id_names_the_task_and_its_doc():
    with DAG("t", schedule=None, start_date=datetime(2025, 1, 1)) as dag:
        with TaskGroup("db"):
            in_section = CountTo(step="db.remove-stray-vps", world={}, target=0)
            gate = ApprovalGateOperator(task_id="approve", step="db.encoding", subject="s", body="b")
        with TaskGroup("cluster"):
            foreign = CountTo(step="ip.owners", also_steps=["users.environment-configs"], world={}, target=0,
                              doc_md="Says what it does.")
            NodeScriptOperator.partial(step="nodes.mounts-dir", ssh_conn_id="x").expand(node=[{}])
        report = SectionReportOperator(section="All")
    assert in_section.task_id == "db.remove_stray_vps"
    assert in_section.doc_md == "Counts the world's `n` up to `target`.\n\nRunbook step: db.remove-stray-vps\n"
    assert foreign.task_id == "cluster.ip_owners"
    assert steps_named(foreign.doc_md) == ["ip.owners", "users.environment-configs"]
    assert foreign.doc_md.startswith("Says what it does.")
    assert steps_named(gate.doc_md) == ["db.encoding"]
    mapped = dag.get_task("cluster.nodes_mounts_dir")
    assert steps_named(mapped.partial_kwargs["doc_md"]) == ["nodes.mounts-dir"]
    assert mapped.partial_kwargs["doc_md"].startswith("Create /var/vpsadmin/mounts."), "the runbook's title"
    assert mapped.partial_kwargs["map_index_template"] == NODE_LABEL
    assert report.task_id == "report" and steps_named(report.doc_md) == []


def test_step_files_default_to_the_step_id():
    op = NodeScriptOperator(task_id="x", step="nas.move-data", ssh_conn_id="ssh", node={})
    assert op.script == "nas/move-data.sh" and op.sql is None
    given = NodeScriptOperator(task_id="y", step="api.update-api", script="git-pull.sh", ssh_conn_id="ssh", node={})
    assert given.script == "git-pull.sh"


def test_only_the_deployment_switches_gates_off(monkeypatch):
    """A trigger-form param cannot switch a gate off; the deployment setting can. Gates are
    assigned to the deployment's approvers and time out failing (no defaults)."""
    from datetime import timedelta

    monkeypatch.setenv("AIRFLOW__AIRLIFT__APPROVERS", "alice:Alice A., bob")
    monkeypatch.setenv("AIRFLOW__AIRLIFT__APPROVAL_TIMEOUT_HOURS", "4")
    gate = ApprovalGateOperator(task_id="approve", subject="Swap?", body="Read this.", plan={"x": 1})
    assert gate.assigned_users == [{"id": "alice", "name": "Alice A."}, {"id": "bob", "name": "bob"}]
    assert gate.response_timeout == timedelta(hours=4) and gate.defaults is None
    asked = []
    monkeypatch.setattr(ApprovalOperator, "execute", lambda self, context: asked.append(self.body))
    monkeypatch.setattr(ApprovalGateOperator, "_earlier_answer", lambda self, context: None)  # no metadata DB here
    gate.execute(ctx(dry_run=False, require_approval=False))
    assert asked == ["Read this.\n\n- **x**: 1"], "the param is ignored: the gate asks"
    assert gate.execute(ctx(dry_run=True))["gate"] == "plan mode" and len(asked) == 1, "plan mode asks nobody"
    monkeypatch.setenv("AIRFLOW__AIRLIFT__APPROVAL_GATES", "false")
    assert gate.execute(ctx(dry_run=False))["gate"] == "switched off" and len(asked) == 1
    monkeypatch.setenv("AIRFLOW__AIRLIFT__APPROVAL_GATES", "maybe")
    with pytest.raises(ValueError, match="approval_gates = 'maybe'"):
        gate.execute(ctx(dry_run=False))


def test_a_gate_with_nothing_to_approve_asks_only_if_told_to(monkeypatch):
    asked = []
    monkeypatch.setattr(ApprovalOperator, "execute", lambda self, context: asked.append(self.task_id))
    monkeypatch.setattr(ApprovalGateOperator, "_earlier_answer", lambda self, context: None)
    empty = [{"step": "nas.move-data", "changes": [], "applied": False}] * 2
    quiet = ApprovalGateOperator(task_id="quiet", subject="Move?", plan=empty, ask_when_empty=False)
    assert quiet.execute(ctx(dry_run=False))["gate"] == "nothing to approve" and asked == []
    ApprovalGateOperator(task_id="strict", subject="Restore?", plan=empty).execute(ctx(dry_run=False))
    assert asked == ["strict"]
    moves = [{"step": "nas.move-data", "changes": ["storage1: a: move 2 entries"]},
             {"step": "nas.move-data", "changes": ["storage2: b: move 1 entry"]}]
    ApprovalGateOperator(task_id="moves", subject="Move?", plan=moves, ask_when_empty=False).execute(
        ctx(dry_run=False))
    assert asked == ["strict", "moves"]
    assert markdown(moves) == "- storage1: a: move 2 entries\n- storage2: b: move 1 entry"
    # a mapped step's records reach the gate as a lazy sequence, not a list
    ApprovalGateOperator(task_id="lazy", subject="Move?", plan=tuple(moves), ask_when_empty=False).execute(
        ctx(dry_run=False))
    assert asked == ["strict", "moves", "lazy"] and markdown(tuple(moves)) == markdown(moves)


def test_the_gate_shows_its_plan_as_markdown():
    record = {"step": "db.encoding", "dry_run": False, "changes": ["mysql ... < dump"], "applied": True,
              "verified": {"vps": {"rows": 3, "wrong": 0}}, "dump": {"path": "/var/backups/x.sql"}}
    assert markdown(record) == ("- mysql ... < dump\n- **verified**: vps: rows: 3; wrong: 0\n"
                                "- **dump**: path: `/var/backups/x.sql`")


class FakeTi:
    def __init__(self, xcoms):
        self.xcoms = xcoms

    def xcom_pull(self, task_ids, map_indexes=None, default=None):
        return self.xcoms.get(task_ids, default)


def test_the_section_report_collects_its_own_group():
    with DAG("r", schedule=None, start_date=datetime(2025, 1, 1)):
        with TaskGroup("db"):
            CountTo(step="db.one", world={}, target=0)
            CountTo(step="db.two", world={}, target=0)
            report = SectionReportOperator(section="Database")
        CountTo(step="api.other", world={}, target=0)
    ti = FakeTi({"db.one": {"step": "db.one", "changes": ["a", "b"], "applied": True},
                 "db.two": [{"step": "db.two", "changes": ["c"], "applied": False}, None],
                 "api_other": {"step": "api.other", "changes": ["not mine"], "applied": True}})
    result = report.execute({"ti": ti, "params": {"dry_run": False}})
    assert result["lines"] == ["[db.one] applied: a", "[db.one] applied: b", "[db.two] planned: c"]


class RetryTi:
    try_number, id, map_index = 2, "01a2357c-9966-74e1-a678-fcd3d1537fa3", -1


def test_a_retried_gate_looks_for_the_earlier_answer_before_asking(monkeypatch):
    """Try 2 of a gate with no kept answer (the answer never reached try 1's code) defers to
    the triggerer's look at the question; with an answer it takes it, else it asks."""
    import asyncio
    from datetime import UTC, datetime

    from airflow.sdk.exceptions import TaskDeferred

    from triggers.approval import EarlierAnswerTrigger

    asked, kept = [], []
    monkeypatch.setattr(ApprovalOperator, "execute", lambda self, context: asked.append(self.task_id))
    monkeypatch.setattr(ApprovalOperator, "execute_complete", lambda self, context, event: event["chosen_options"])
    monkeypatch.setattr(ApprovalGateOperator, "_earlier_answer", lambda self, context: None)
    monkeypatch.setattr("airflow.sdk.Variable.set", lambda key, value: kept.append(key))
    gate = ApprovalGateOperator(task_id="approve", subject="Swap?")
    context = {**ctx(dry_run=False), "ti": RetryTi(), "run_id": "manual__1"}
    with pytest.raises(TaskDeferred) as deferred:
        gate.execute(context)
    trigger = deferred.value.trigger
    assert isinstance(trigger, EarlierAnswerTrigger) and trigger.ti_id == RetryTi.id and asked == []

    class Detail:
        response_received, chosen_options, params_input = True, ["Approve"], {}
        responded_at = datetime(2026, 12, 2, tzinfo=UTC)
        responded_by_user = type("User", (), {"id": "admin", "name": "admin"})()

    monkeypatch.setattr("airflow.sdk.execution_time.hitl.get_hitl_detail_content_detail", lambda ti_id: Detail())
    trigger.settle = 0

    async def first_event():
        async for event in trigger.run():
            return event.payload

    event = asyncio.run(first_event())
    assert event["answer"]["chosen_options"] == ["Approve"] and event["answer"]["responded_by_user"]["id"] == "admin"
    assert gate.execute_after_look(context, event) == ["Approve"] and asked == []
    assert kept == [f"airlift_gate.{gate.dag_id}.manual__1.approve.-1"], "the answer is kept for later tries"
    # no earlier question (the look fails) or no answer to it: the gate asks
    monkeypatch.setattr("airflow.sdk.execution_time.hitl.get_hitl_detail_content_detail",
                        lambda ti_id: (_ for _ in ()).throw(RuntimeError("404")))
    assert asyncio.run(first_event()) == {"answer": None}
    gate.execute_after_look(context, {"answer": None})
    assert asked == ["approve"]
