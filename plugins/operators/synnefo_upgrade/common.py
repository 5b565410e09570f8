"""What several steps of the Synnefo upgrade use: the base step (the run's settings, the hosts
over SSH, the two databases), the verified database dump of every phase, and the web
services stopped and started on each host."""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from functools import cached_property

from airlift.connections import SYNNEFO_APPS_DB, SYNNEFO_PITHOS_DB, SYNNEFO_SSH
from airlift.errors import StepError
from operators.runbook_step import Plan, RunbookStepOperator, run_label
from synnefo.params import SERVICE, check_database

DATABASE_CONNECTIONS = {"snf_apps": SYNNEFO_APPS_DB, "snf_pithos": SYNNEFO_PITHOS_DB}


class SynnefoStepOperator(RunbookStepOperator):
    """A step of the Synnefo upgrade. :param settings: the run's checked settings (the first
    task's XCom, synnefo/params.py). :param ssh_conn_id: root over SSH on every host. The hooks
    are built on first use (parsing the DAG loads neither paramiko nor a database driver)."""

    template_fields: Sequence[str] = (*RunbookStepOperator.template_fields, "settings")

    def __init__(self, *, settings=None, ssh_conn_id: str = SYNNEFO_SSH, **kwargs):
        super().__init__(**kwargs)
        self.settings, self.ssh_conn_id = settings, ssh_conn_id

    @cached_property
    def nodes(self):
        from hooks.synnefo import SynnefoHook

        return SynnefoHook(self.ssh_conn_id)

    def db(self, name: str):
        """The hook of database `name` (snf_apps or snf_pithos), one per step."""
        from hooks.synnefo_db import SynnefoDbHook

        hooks = self.__dict__.setdefault("_db_hooks", {})
        if name not in hooks:
            hooks[name] = SynnefoDbHook(DATABASE_CONNECTIONS[name])
        return hooks[name]

    def job_nodes(self):
        return self.nodes

    def close(self) -> None:
        if "nodes" in self.__dict__:
            self.nodes.close()
            del self.__dict__["nodes"]


class PgDumpOperator(SynnefoStepOperator):
    """A dump of one service database (pg_dump's custom format) on the DB host with
    include/scripts/postgres/dump.sh, verified there (pg_restore reads its whole table of
    contents) and here: it holds every table the database has now. The file is
    `<backup_dir>/<database>-<label>-<run>.dump`, mode 0600; a retry of the same run keeps a
    dump that verifies. Returns its path, size, sha256 and tables: the restore of this phase
    (PgRestoreOperator) checks the sha256 before it uses the file.

    :param database: snf_apps or snf_pithos. :param label: the phase it is the backup of."""

    template_fields: Sequence[str] = (*SynnefoStepOperator.template_fields, "database")

    def __init__(self, *, database: str, label: str, **kwargs):
        kwargs.setdefault("script", "postgres/dump.sh")
        kwargs.setdefault("task_id", f"backup_{database}_{label}".replace("-", "_"))
        super().__init__(**kwargs)
        self.database, self.file_label = database, label

    def _args(self, context) -> list[str]:
        db = self.settings["databases"][self.database]
        errors = check_database(self.database, db)
        if errors:
            raise StepError("refusing to dump:\n- " + "\n- ".join(errors))
        path = f"{self.settings['backup_dir']}/{db['database']}-{self.file_label}-{run_label(context)}.dump"
        return [db["server"], str(db["port"]), db["user"], db["database"], path]

    def probe(self, context) -> Plan:
        return Plan([f"{self.settings['db_host']}: dump.sh {shlex.join(self._args(context))}"])

    def apply(self, context, plan: Plan) -> dict | None:
        return self.remote_job(context, self.nodes, self.settings["db_host"], self.script, self._args(context), plan)

    def job_done(self, context, plan: Plan, result) -> dict:
        super().job_done(context, plan, result)
        dump = json.loads(result.stdout.strip().splitlines()[-1])
        missing = sorted(set(self.db(self.database).tables()) - set(dump["tables"]))
        if missing:
            raise StepError(f"{dump['path']} on {self.settings['db_host']} lacks {len(missing)} table(s) of "
                            f"{self.database} that connection {DATABASE_CONNECTIONS[self.database]} sees: "
                            f"{', '.join(missing[:20])}. Do the DB host and the connection name the same server? "
                            "Remove the file before the next try.")
        self.log.info("%s: %s, %d bytes, %d tables, sha256 %s%s", self.label, dump["path"], dump["size"],
                      len(dump["tables"]), dump["sha256"], " (kept from an earlier try)" if dump["reused"] else "")
        return {"dump": {k: dump[k] for k in ("path", "size", "sha256", "reused")}, "tables": len(dump["tables"]),
                "database": self.database}

    def verify(self, context, plan: Plan) -> Plan:
        return Plan()  # job_done checked the file


class PgRestoreOperator(SynnefoStepOperator):
    """Restores a phase's dump (the XCom of its PgDumpOperator) with
    include/scripts/postgres/restore.sh: the file must still have its sha256, the database's
    schema is rebuilt from it in one transaction. Runs only behind an approval, after a failed
    migration; the services using the database are stopped at that point of the runbook."""

    template_fields: Sequence[str] = (*SynnefoStepOperator.template_fields, "backup")

    def __init__(self, *, backup, **kwargs):
        kwargs.setdefault("script", "postgres/restore.sh")
        super().__init__(**kwargs)
        self.backup = backup

    def _args(self) -> list[str]:
        if not isinstance(self.backup, dict) or not isinstance(self.backup.get("dump"), dict):
            raise StepError(f"no dump to restore: the backup step's record is {self.backup!r}")
        name, dump = self.backup["database"], self.backup["dump"]
        db = self.settings["databases"][name]
        errors = check_database(name, db)
        if errors:
            raise StepError("refusing to restore:\n- " + "\n- ".join(errors))
        return [db["server"], str(db["port"]), db["user"], db["database"], dump["path"], dump["sha256"]]

    def probe(self, context) -> Plan:
        return Plan([f"{self.settings['db_host']}: restore.sh {shlex.join(self._args())}"])

    def apply(self, context, plan: Plan) -> dict | None:
        return self.remote_job(context, self.nodes, self.settings["db_host"], self.script, self._args(), plan)

    def job_done(self, context, plan: Plan, result) -> dict:
        super().job_done(context, plan, result)
        return {"restored": json.loads(result.stdout.strip().splitlines()[-1])}

    def verify(self, context, plan: Plan) -> Plan:
        return Plan()  # the script checked the file and restored it in one transaction


class ServicesOperator(SynnefoStepOperator):
    """The web services of one host (mapped over synnefo.params.service_hosts) stopped or
    started with `service`: the probe asks each one's status (LSB: 0 running, 3 stopped), so a
    retry or a second run touches only those still in the other state. A service the host does
    not have fails the step (a misnamed service must not pass as stopped).

    :param action: stop or start."""

    def __init__(self, *, action: str, **kwargs):
        super().__init__(**kwargs)
        if action not in ("stop", "start"):
            raise ValueError(f"action {action!r}: stop or start")
        self.action = action

    def _services(self) -> list[str]:
        services = self.node.get("services") if isinstance(self.node, dict) else None
        if not isinstance(services, list) or not all(isinstance(s, str) and SERVICE.fullmatch(s) for s in services):
            raise StepError(f"refusing services {services!r} of {self.node!r}")
        return services

    def probe(self, context) -> Plan:
        host, todo = self.node["address"], []
        for service in self._services():
            status = self.nodes.run(host, ["service", service, "status"], check=False, timeout=60)
            if status.exit_status not in (0, 3):
                raise StepError(f"{self.node['server_name']}: `service {service} status` exited "
                                f"{status.exit_status}: {(status.stdout + status.stderr).strip()[-300:]}")
            if (status.exit_status == 0) != (self.action == "start"):
                todo.append(service)
        return Plan([f"{self.node['server_name']}: service {s} {self.action}" for s in todo], work=todo)

    def apply(self, context, plan: Plan) -> dict:
        for service in plan.work:
            self.nodes.run(self.node["address"], ["service", service, self.action], timeout=300, log_output=True)
        return {"services": plan.work}
