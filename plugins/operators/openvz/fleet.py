"""FleetMigrationOperator: the OpenVZ nodes of a cluster, one after another, each through a run
of openvz_to_vpsadminos (fleet.node-by-node)."""

from __future__ import annotations

from airlift.errors import StepError
from operators.runbook_step import RunbookStepOperator

FINISHED = ("success", "failed")


class FleetMigrationOperator(RunbookStepOperator):
    """Moves the nodes of the form in their order: for each, a run of `openvz_to_vpsadminos`
    with that node's conf (its review asks in that run; its transfers wait for the window
    there), waited for deferred (no worker slot while a node moves), then the next. Which node
    is next comes from the runs themselves, named by this run and the node: a retry or a
    resumed wait finds them, never starts a node twice and never runs two at once. With
    `stop_on_failed_node` a failed node ends the fleet there and the later nodes are not
    started; otherwise every node runs and the task fails at the end if one failed.

    The report (per node: its run's state, the containers moved with their downtime, refused
    and failed) goes to XCom and, as a markdown table, onto the run's note (connection
    `airflow_api`; without it only XCom and the log)."""

    # how often a node run's state is read while waiting for it: one indexed query, cheap next to
    # runs of minutes to hours, and a finished node's successor starts sooner
    poll_interval = 10.0

    def execute(self, context, event=None):
        from openvz.fleet import CHILD_DAG, child_run_id, plan, plan_table

        with self.step_errors():
            fleet = plan(context["params"])
            ti = context["ti"]
            if event is None:
                self.log.info("the fleet, node after node:\n%s", plan_table(fleet))
                if ti.get_dag(CHILD_DAG).is_paused:  # its runs would wait queued, and this one with them
                    raise StepError(f"DAG {CHILD_DAG} is paused: unpause it, then run the fleet again")
            for conf in fleet.nodes:
                run_id = child_run_id(context["run_id"], conf["source_node"])
                if not ti.get_dr_count(dag_id=CHILD_DAG, run_ids=[run_id]):
                    self.log.info("%s: starting %s run %s", conf["source_node"], CHILD_DAG, run_id)
                    self._trigger(run_id, conf)
                state = ti.get_dagrun_state(dag_id=CHILD_DAG, run_id=run_id)
                if state not in FINISHED:
                    self.log.info("%s: run %s is %s; waiting for it deferred", conf["source_node"], run_id, state)
                    self._wait(run_id)
                if state == "failed" and fleet.stop_on_failed_node:
                    break
            return self._report(context, fleet)

    def execute_complete(self, context, event=None):
        """A node's run ended (or was started): on to the next one."""
        return self.execute(context, event=event or {})

    def _trigger(self, run_id: str, conf: dict) -> None:
        from airflow.sdk.exceptions import DagRunTriggerException

        from openvz.fleet import CHILD_DAG

        raise DagRunTriggerException(
            trigger_dag_id=CHILD_DAG, dag_run_id=run_id, conf=conf, reset_dag_run=False,
            skip_when_already_exists=False, wait_for_completion=True, allowed_states=["success"],
            failed_states=["failed"], poke_interval=int(self.poll_interval), deferrable=True)

    def _wait(self, run_id: str) -> None:
        from airflow.providers.standard.triggers.external_task import DagStateTrigger
        from airflow.utils.state import DagRunState

        from openvz.fleet import CHILD_DAG

        self.defer(trigger=DagStateTrigger(dag_id=CHILD_DAG, states=[DagRunState.SUCCESS, DagRunState.FAILED],
                                           run_ids=[run_id], poll_interval=self.poll_interval),
                   method_name="execute_complete")

    def _report(self, context, fleet) -> list[dict]:
        from hooks.airflow_api import AirflowApiHook
        from openvz.fleet import CHILD_DAG, child_run_id, report_table

        ti, nodes = context["ti"], []
        for conf in fleet.nodes:
            run_id = child_run_id(context["run_id"], conf["source_node"])
            if not ti.get_dr_count(dag_id=CHILD_DAG, run_ids=[run_id]):
                nodes.append({"source": conf["source_node"], "state": "not started"})
                continue
            nodes.append({"source": conf["source_node"], "run_id": run_id,
                          **node_result(ti, run_id, ti.get_dagrun_state(dag_id=CHILD_DAG, run_id=run_id))})
        table = report_table(nodes)
        self.log.info("the fleet:\n%s", table)
        AirflowApiHook.set_run_note_if_configured(context["dag_run"].dag_id, context["run_id"], table, self.log)
        not_moved = [f"{n['source']} ({n['state']})" for n in nodes if n["state"] != "success"]
        if not_moved:
            ti.xcom_push(key="return_value", value=nodes)  # a failing task's return value is not kept
            raise StepError(f"node(s) not moved: {', '.join(not_moved)}; the report says which containers")
        return nodes


def node_result(ti, run_id: str, state: str) -> dict:
    """One node's run: its containers moved (with their downtime in seconds), refused and
    failed, from the run's own records (discover, review_plan, the move tasks)."""
    from openvz.fleet import CHILD_DAG

    def pull(task_id, map_index=None):
        kwargs = {"map_indexes": map_index} if map_index is not None else {}
        return ti.xcom_pull(task_ids=task_id, dag_id=CHILD_DAG, run_id=run_id, default=None, **kwargs)

    found = pull("discover") or []
    moving = pull("review_plan") or []
    states = ti.get_task_states(dag_id=CHILD_DAG, run_ids=[run_id]).get(run_id, {})
    moved, failed = [], []
    for i, ct in enumerate(moving):
        if states.get(f"move.cleanup_{i}") == "success":
            downtimes = [(pull(task, i) or {}).get("downtime_seconds")
                         for task in ("move.transfer", "move.transfer_zfs", "move.import")]
            moved.append({"ctid": ct["ctid"], "downtime_seconds": next((d for d in downtimes if d is not None), None)})
        elif any(s == "failed" for key, s in states.items() if key.startswith("move.") and key.endswith(f"_{i}")):
            failed.append(ct["ctid"])
    return {"state": state, "moved": moved, "refused": [ct["ctid"] for ct in found if ct.get("refused")],
            "failed": failed}
