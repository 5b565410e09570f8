"""Upgrading the API (runbook: "Upgrading the API"): shutdown and checkouts (NodeScriptOperator),
the pinned migration (common.RakeMigrateOperator) with its restore path, then the tables the
runbook populates by hand, and the API started."""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Sequence
from datetime import timedelta

from airflow.sdk.exceptions import AirflowSkipException

from airlift.errors import StepError
from operators.runbook_step import ApprovalGateOperator, Plan, RunbookStepOperator
from operators.vpsadmin_upgrade.common import (
    API_ROOT,
    MigrationBackupOperator,
    RakeMigrateOperator,
    VpsAdminStepOperator,
)
from vpsadmin import environments


class RestoreGateOperator(ApprovalGateOperator, VpsAdminStepOperator):
    """The approval before restoring the backup: asks only when `rake db:migrate` ran and has
    certainly stopped short of its target. Skipped when the migration step succeeded or never
    started rake (something before it failed: `one_failed` alone would offer a restore after
    bad params) and when the schema reached the target anyway (rake finished, the task lost
    its connection). Refuses, asking nothing, while rake's job still runs on the API host or
    a statement still runs on the database: a restore then would drop a live migration."""

    def __init__(self, *, migrate_task_id: str, **kwargs):
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)
        self.migrate_task_id = migrate_task_id

    def execute(self, context):
        ti = context["ti"]
        started = ti.xcom_pull(task_ids=self.migrate_task_id, key=RakeMigrateOperator.STARTED)
        if not isinstance(started, dict) or ti.xcom_pull(task_ids=self.migrate_task_id) is not None:
            raise AirflowSkipException("the migration did not fail: nothing to restore")
        with self.step_errors():
            self._rake_stopped(started)
            schema = max(self.db.migrations(), default="0")
            if schema >= started["target"]:
                raise AirflowSkipException(f"the schema is at {schema}, the migration's target: rake finished; "
                                           "nothing to restore (clear the migration task to go on)")
        return super().execute(context)

    def _rake_stopped(self, started: dict) -> None:
        job = self.nodes.job_status(started["host"], started["job"])
        if job.state == "running":
            raise StepError(f"rake still runs on {started['host']} (job {job.key}, process group {job.pgid}): no "
                            "restore while it runs. Clear the migration task: it waits for rake and takes its result.")
        queries = self.db.running_queries()
        if queries:
            raise StepError(f"{len(queries)} statement(s) still run on the database; no restore while they do:\n"
                            + "\n".join(f"#{q['ID']} {q['USER']} {q['TIME']} s: {q['INFO']}" for q in queries[:10]))


def migration_with_restore(*, step: str, settings, version: str | None = None, label: str, keep_dumps=None,
                           **migrate_kwargs):
    """A migration's four tasks in the current TaskGroup: the dump right before it
    (`backup`), the migration, the approval of a restore (asked only when the migration
    certainly failed) and the restore of that dump. Returns (backup, migrate, restore)."""
    backup = MigrationBackupOperator(
        task_id="backup", step=step, settings=settings, version=version, label=label, keep_dumps=keep_dumps,
        execution_timeout=timedelta(hours=6),
        doc_md="A full dump right before the migration, the cluster quiet: what its restore loads.")
    migrate = RakeMigrateOperator(step=step, settings=settings, version=version,
                                  execution_timeout=timedelta(hours=6), **migrate_kwargs)
    gate = RestoreGateOperator(
        task_id="approve_restore", step=step, migrate_task_id=migrate.task_id, plan=backup.output,
        subject="The migration failed: restore the dump taken right before it?",
        body="`rake db:migrate` failed and left the schema half migrated (MySQL DDL is not transactional). "
             "**Approve** drops every table of the database and loads the verified dump taken right before the "
             "migration (below); then fix the cause (see the migration's log) and trigger the DAG again. "
             "**Reject** leaves the database as the migration left it.",
        doc_md="Approval before restoring the dump taken right before the migration.")
    restore = DatabaseRestoreOperator(task_id="restore_database", step=step, settings=settings, dump=backup.output)
    backup >> migrate >> gate >> restore
    return backup, migrate, restore


class DatabaseRestoreOperator(VpsAdminStepOperator):
    """Restores the verified full dump taken right before a migration that failed: every
    table of the database is dropped (the failed migration created some) and the dump is
    loaded on the DB host (include/scripts/mysql/load.sh checks its sha256 first)."""

    template_fields: Sequence[str] = (*RunbookStepOperator.template_fields, "settings", "dump")

    def __init__(self, *, settings, dump, **kwargs):
        kwargs.setdefault("script", "mysql/load.sh")
        super().__init__(**kwargs)
        self.settings, self.dump = settings, dump

    def probe(self, context) -> Plan:
        if not self.dump or not self.dump.get("path"):
            raise StepError("no verified dump from the preflight section to restore")
        return Plan([f"{self.settings['db_host']}: drop every table of {self.settings['database']}, "
                     f"load {self.dump['path']} (sha256 {self.dump['sha256']})"])

    def apply(self, context, plan: Plan) -> dict | None:
        return self.remote_job(context, self.nodes, self.settings["db_host"], self.script,
                               [self.dump["path"], self.settings["database"], self.dump["sha256"], "--replace"], plan)

    def job_done(self, context, plan: Plan, result) -> None:
        super().job_done(context, plan, result)
        self.log.warning("%s: database %s restored. Fix the cause of the failed migration, then trigger the "
                         "DAG again.", self.label, self.settings["database"])

    def verify(self, context, plan: Plan) -> Plan:
        return Plan()  # load.sh checked the dump and loaded it whole


class EnvironmentsParamOperator(VpsAdminStepOperator):
    """A step the `environments` param drives (see plugins/vpsadmin/environments.py)."""

    template_fields: Sequence[str] = (*RunbookStepOperator.template_fields, "environments")
    uses_step_sql = True

    def __init__(self, *, environments, **kwargs):
        super().__init__(**kwargs)
        self.environments = environments


class EnvironmentsOperator(EnvironmentsParamOperator):
    """The environments of the `environments` param, matched by label with the one
    'Production' the add_storage migration left (it replaced all others); user_ip_ownership
    and the VPS limits are set explicitly (the migrations default them to 0)."""

    def probe(self, context) -> Plan:
        inserts, updates, others = environments.plan_environments(
            environments.environment_rows(self.environments), self.db.environments())
        for label in others:
            self.log.warning("%s: environment %r is in the database but not in the param; left as it is",
                             self.label, label)
        return Plan([f"insert environment {r}" for r in inserts] + [f"update environment {r}" for r in updates],
                    work=(inserts, updates))

    def apply(self, context, plan: Plan) -> None:
        inserts, updates = plan.work
        self.db.execute_in_transaction([(self.statements["insert_environment"], r) for r in inserts]
                                       + [(self.statements["update_environment"], r) for r in updates])


class ServersOperator(EnvironmentsParamOperator):
    """Every server in its environment (the migration left environment_id 0), named without
    its location domain (SUBSTRING_INDEX(server_name, '.', 1)), and ve_private from 1.22's
    `%veid%` to 2.0's `%{veid}` placeholder (the runbook misses it: vpsAdmind 2.0 would look for
    /vz/private/%veid%)."""

    def probe(self, context) -> Plan:
        env_ids = {e["label"]: e["id"] for e in self.db.environments()}
        missing = [e["label"] for e in self.environments if e["label"] not in env_ids]
        if missing and not self.dry_run:
            raise StepError(f"environments {missing} do not exist")
        env_ids.update({label: f"<new {label}>" for label in missing})  # plan mode only
        plan = environments.plan_servers(self.environments, env_ids, self.db.rows(self.statements["servers"]))
        return Plan([f"server {c['server_id']}: {c['was']} (environment {c['was_environment_id']}, ve_private "
                     f"{c['was_ve_private']}) -> {c['server_name']} (environment {c['environment_id']}, "
                     f"ve_private {c['ve_private']})" for c in plan], work=plan)

    def apply(self, context, plan: Plan) -> None:
        self.db.execute_in_transaction([(self.statements["update_server"], c) for c in plan.work])


class DefaultResourcesOperator(EnvironmentsParamOperator):
    """default_object_cluster_resources: class Vps and User, every environment, every cluster
    resource (param default_resources, an environment's own default_resources overriding)."""

    template_fields: Sequence[str] = (*EnvironmentsParamOperator.template_fields, "default_resources")

    def __init__(self, *, default_resources, **kwargs):
        super().__init__(**kwargs)
        self.default_resources = default_resources

    def probe(self, context) -> Plan:
        env_ids = {e["label"]: e["id"] for e in self.db.environments()}
        env_ids.update({e["label"]: f"<new {e['label']}>" for e in self.environments
                        if e["label"] not in env_ids})  # only in plan mode: environments not created yet
        resource_ids = {r["name"]: r["id"] for r in self.db.rows(self.statements["cluster_resources"])}
        inserts, updates = environments.plan_default_resources(
            self.environments, self.default_resources, env_ids, resource_ids,
            self.db.rows(self.statements["defaults"]))
        return Plan([f"{'insert' if 'id' not in r else 'update'} {r['environment']} {r['class_name']} "
                     f"{r['resource']} = {r['value']}" for r in inserts + updates], work=(inserts, updates))

    def apply(self, context, plan: Plan) -> None:
        inserts, updates = plan.work
        self.db.execute_in_transaction([(self.statements["insert"], r) for r in inserts]
                                       + [(self.statements["update"], r) for r in updates])


class SysconfigOperator(VpsAdminStepOperator):
    """One sysconfig key, stored JSON-encoded as both 1.22 and 2.0 read it."""

    template_fields: Sequence[str] = (*RunbookStepOperator.template_fields, "value")
    uses_step_sql = True

    def __init__(self, *, name: str, value, **kwargs):
        super().__init__(**kwargs)
        self.name, self.value = name, value

    def probe(self, context) -> Plan:
        if self.db.sysconfig(self.name) == self.value:
            return Plan()
        return Plan([f"sysconfig {self.name} = {json.dumps(self.value)}"])

    def apply(self, context, plan: Plan) -> None:
        self.db.execute_in_transaction([(self.statements["set"], {"name": self.name, "value": json.dumps(self.value)})])


class StartApiOperator(VpsAdminStepOperator):
    """`thin ... start` in /opt/vpsadminapi on the API host (as the runbook does, daemonized),
    at the address of connection vpsadmin_api, unless the API answers already; then waits until
    GET /v1/ answers."""

    template_fields: Sequence[str] = (*RunbookStepOperator.template_fields, "settings")

    def __init__(self, *, settings, wait: float = 120, **kwargs):
        super().__init__(**kwargs)
        self.settings, self.wait = settings, wait

    def probe(self, context) -> Plan:
        if self.api.version(timeout=5):
            self.log.info("%s: the API answers at %s", self.label, self.api.base_url)
            return Plan()
        command = (f"cd {API_ROOT} && thin --address {shlex.quote(self.api.bind_host)} --port "
                   f"{int(self.api.bind_port)} --environment production --log /var/log/vpsadminapi.log "
                   "--daemonize start")
        return Plan([f"{self.settings['api_host']}: {command}"], work=command)

    def apply(self, context, plan: Plan) -> None:
        host = self.settings["api_host"]
        self.nodes.run(host, plan.work, timeout=120, log_output=True)
        deadline = time.monotonic() + self.wait
        while not self.api.version(timeout=5):
            if time.monotonic() > deadline:
                raise StepError(f"the API at {self.api.base_url} does not answer {self.wait:.0f}s after "
                                f"`{plan.work}`; see /var/log/vpsadminapi.log on {host}")
            time.sleep(2)
