"""Finalize (runbook: "Finalize migrations" ... "Archive downloads", "Known issues"): the final
migrations (common.RakeMigrateOperator), the NAS remount chain, NAS user_create (SQL), the
integrity check, the scheduler (a script), the cron jobs for 2.0, the download mounts
(common.WebMountsOperator)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from airlift.errors import StepError
from operators.runbook_step import Plan, RunbookStepOperator
from operators.vpsadmin_upgrade.common import CrontabEditOperator, VpsAdminStepOperator
from vpsadmin import crontab, lifetimes


class NasRemountOperator(VpsAdminStepOperator):
    """The runbook's remount script as one transaction chain (named `nas_remount`): per VPS
    in (node, id) order a 5301 Vps::Mounts (mount scripts and the mounts file) and, if it runs,
    a 5302 Mount; each VPS locked for the chain, each transaction after the previous. Fired
    after the final migration: 2.0 code needs transactions.queue (research §8.8). Fired once: a
    chain that is done is not fired again, one still open is waited for (its id is returned
    as `chain_id` for the wait step), a failed one is fired anew. VPSes on skipped nodes get
    nothing (their node runs no vpsAdmind: the chain would never finish); the record lists them.
    """

    template_fields: Sequence[str] = (*RunbookStepOperator.template_fields, "settings")
    uses_step_sql = True
    DONE, FAILED_STATES = 2, (4, 5)

    def __init__(self, *, settings, **kwargs):
        super().__init__(**kwargs)
        self.settings = settings

    def probe(self, context) -> Plan:
        previous = self.db.rows(self.statements["remount_chain"])
        if previous and previous[0]["state"] == self.DONE:
            self.log.info("%s: chain %s remounted everything already", self.label, previous[0]["id"])
            return Plan(details={"chain_id": None})
        if previous and previous[0]["state"] not in self.FAILED_STATES:
            self.log.info("%s: chain %s is still running; waiting for it", self.label, previous[0]["id"])
            return Plan(details={"chain_id": previous[0]["id"]})
        skipped = {int(s["server_id"]): s["server_name"] for s in self.settings.get("skipped_servers") or []}
        every = self._transactions()
        transactions = [t for t in every if t["server"] not in skipped]
        left = sorted({f"VPS {t['vps_id']} on {skipped[t['server']]}: not remounted (node skipped)" for t in every
                       if t["server"] in skipped})
        return Plan([f"VPS {t['vps_id']} on node {t['server']}: {t['t_type']} "
                     f"({len(json.loads(t['param'])['mounts'])} mount(s))" for t in transactions],
                    details={"chain_id": None, "left": left}, work=transactions)

    def apply(self, context, plan: Plan) -> dict:
        st, transactions = self.statements, plan.work
        locked = {r["row_id"] for r in self.db.rows(st["locked"])} & {t["vps_id"] for t in transactions}
        if locked:
            raise StepError(f"VPSes locked by another chain: {sorted(locked)}")
        with self.db.get_conn() as conn:
            cur = conn.cursor()
            cur.execute(st["insert_chain"], {"size": len(transactions)})
            chain_id, previous_id = cur.lastrowid, None
            for vps_id in dict.fromkeys(t["vps_id"] for t in transactions):
                cur.execute(st["lock_vps"], {"vps_id": vps_id, "chain_id": chain_id})
            for t in transactions:
                cur.execute(st["insert_transaction"], {**t, "chain_id": chain_id, "depends_on": previous_id})
                previous_id = cur.lastrowid
            cur.execute(st["queue_chain"], {"chain_id": chain_id})
            conn.commit()
        self.log.info("%s: chain %d with %d transaction(s) queued", self.label, chain_id, len(transactions))
        return {"chain_id": chain_id}

    def verify(self, context, plan: Plan) -> Plan:
        return Plan()  # the wait step checks that the chain finishes

    def _transactions(self) -> list[dict]:
        by_vps: dict[int, list[dict]] = {}
        for m in self.db.rows(self.statements["mounts"]):
            local = m["pool_server"] == m["vps_server"]
            by_vps.setdefault(m["vps_id"], []).append({
                "id": m["id"], "type": "dataset_local" if local else "dataset_remote",
                "pool_fs": m["pool_fs"], "dataset_name": m["dataset_name"], "src_node_addr": m["src_node_addr"],
                "dst": m["dst"], "mount_opts": m["mount_opts"] or "", "umount_opts": m["umount_opts"] or "",
                "mode": m["mode"]})
        transactions = []
        for vps in self.db.rows(self.statements["vpses"]):
            param = json.dumps({"mounts": by_vps.get(vps["vps_id"], [])})
            transactions.append({"server": vps["vps_server"], "vps_id": vps["vps_id"], "t_type": 5301, "param": param})
            if vps["running"]:
                transactions.append({"server": vps["vps_server"], "vps_id": vps["vps_id"], "t_type": 5302,
                                     "param": param})
        return transactions


class IntegrityCheckOperator(VpsAdminStepOperator):
    """POST integrity_check through the API with both the storage and the VPS checks (plain
    `integrity_check new` checks nothing, research/vpsadmin.md §6), then waits for it deferred
    (IntegrityCheckTrigger: no worker slot held), logs broken objects and false facts and puts
    a summary in XCom. Fails on a false high-severity fact unless `allow_high`. A retry (or the
    task cleared in the same run) takes the check an earlier try started in this run, pending
    or finished, instead of starting another; a new run starts its own."""

    template_fields: Sequence[str] = (*RunbookStepOperator.template_fields, "allow_high")
    HIGH = 2

    def __init__(self, *, allow_high=False, poll_interval: float = 3, timeout: float = 3600, **kwargs):
        super().__init__(**kwargs)
        self.allow_high, self.poll_interval, self.timeout = allow_high, poll_interval, timeout

    def probe(self, context) -> Plan:
        return Plan(["POST /v1/integrity_checks storage=true vps=true"])

    def apply(self, context, plan: Plan) -> None:
        from triggers.vpsadmin import IntegrityCheckTrigger

        earlier = self._check_of_this_run(context)
        if earlier:
            check_id = int(earlier["id"])
            self.log.info("%s: integrity check %d (%s) was started earlier in this run; waiting for it (deferred)",
                          self.label, check_id, earlier["status"])
        else:
            check_id = self.api.create_integrity_check(storage=True, vps=True)
            self.log.info("%s: integrity check %d started; waiting for it (deferred)", self.label, check_id)
        self.defer_apply(IntegrityCheckTrigger, plan, timeout=self.timeout, api_conn_id=self.api_conn_id,
                         check_id=check_id, poll_interval=self.poll_interval)

    def _check_of_this_run(self, context) -> dict | None:
        """The newest check the API's login started since this DAG run started (the API lists
        who started each check and when; the try that started it may have died before it could
        record anything)."""
        from datetime import datetime

        dag_run = context["dag_run"]
        run_started = (dag_run.start_date or dag_run.run_after).replace(microsecond=0)
        for check in self.api.own_integrity_checks():
            if datetime.fromisoformat(check["created_at"].replace("Z", "+00:00")) >= run_started:
                return check
        return None

    def resume(self, context, plan: Plan, event: dict) -> dict:
        if event.get("status") != "done":
            raise StepError(f"integrity check {event.get('check_id')}: {event.get('message', event)}")
        check_id, check = event["check_id"], event["check"]
        facts = self.api.integrity_facts(check_id, status=False)
        summary = {k: check.get(k) for k in ("status", "checked_objects", "integral_objects", "broken_objects",
                                             "checked_facts", "true_facts", "false_facts")}
        high = [f for f in facts if f.get("severity") in (self.HIGH, "high")]
        for fact in facts:
            self.log.info("false fact [%s] %s: %s expected %s, is %s %s", fact.get("severity"), self._object(fact),
                          fact.get("name"), fact.get("expected_value"), fact.get("actual_value"),
                          fact.get("message") or "")
        self.log.info("%s: integrity check %d: %s", self.label, check_id, summary)
        if high and not self.allow_high:
            raise StepError(f"{len(high)} high-severity fact(s) are false in integrity check {check_id} (set "
                            "integrity_allow_high to go on):\n"
                            + "\n".join(f"{self._object(f)}: {f.get('name')}: {f.get('message')}" for f in high[:20]))
        return {"check_id": check_id, "summary": summary, "high_false_facts": len(high),
                "false_facts": [{"object": self._object(f), **{k: f.get(k) for k in ("name", "severity", "message")}}
                                for f in facts[:100]]}

    @staticmethod
    def _object(fact: dict) -> str:
        """What a fact is about: the API gives its integrity object's id and class name."""
        obj = fact.get("integrity_object") or {}
        return f"{obj.get('class_name')} (integrity object {obj.get('id')})"

    def verify(self, context, plan: Plan) -> Plan:
        return Plan()  # a check is a report, not a state to reach


class CrontabReplaceOperator(CrontabEditOperator):
    """The cluster crontab for 2.0: savetransfers.rb enabled again; backup.rb (the scheduler),
    cron_delete/cron_mailer (DAG vpsadmin_lifetimes), cron_nonpayers (deleted) and
    daily_report.rb (DAG vpsadmin_daily_report) stay disabled, marked with what replaces them.
    With `scheduled_dags` false the site keeps them in cron: the runbook's rake lines (with
    `EXECUTE=yes`, which the runbook's lack) are added instead. The v1.22 original was kept by
    prereq.disable-cron."""

    template_fields: Sequence[str] = (*CrontabEditOperator.template_fields, "scheduled_dags")

    def __init__(self, *, scheduled_dags=True, **kwargs):
        super().__init__(**kwargs)
        self.scheduled_dags = scheduled_dags

    def transform(self, text: str) -> tuple[str, list[str]]:
        return crontab.replace_for_v2(text, rake_jobs=None if self.scheduled_dags else lifetimes.runbook_cron_lines())


class UnpauseScheduledOperator(VpsAdminStepOperator):
    """Once the upgrade is done, the scheduled DAGs that replace the lifetimes and daily-report
    cron jobs are unpaused (they are created paused: on a 1.22 cluster they would fail), through
    Airflow's REST API (connection `airflow_api`). Without that connection, or with
    `scheduled_dags` false (the site keeps them in cron), they stay paused; the record says so."""

    template_fields: Sequence[str] = (*RunbookStepOperator.template_fields, "scheduled_dags")
    DAG_IDS = ("vpsadmin_lifetimes", "vpsadmin_daily_report")

    def __init__(self, *, scheduled_dags=True, **kwargs):
        super().__init__(**kwargs)
        self.scheduled_dags = scheduled_dags

    def probe(self, context) -> Plan:
        from hooks.airflow_api import AirflowApiHook

        if not self.scheduled_dags:
            return Plan(details={"left": [f"{d}: stays paused (scheduled_dags is off: cron runs the rake jobs)"
                                          for d in self.DAG_IDS]})
        api = AirflowApiHook.if_configured(self.log)
        if api is None:
            return Plan(details={"left": [f"{d}: unpause it in the UI (no connection airflow_api)"
                                          for d in self.DAG_IDS]})
        paused = [d for d in self.DAG_IDS if api.dag_is_paused(d)]
        return Plan([f"unpause DAG {d}" for d in paused], work=api)

    def apply(self, context, plan: Plan) -> None:
        for dag_id in self.DAG_IDS:
            plan.work.set_dag_paused(dag_id, False)
