"""Preflight (not in the runbook): the trigger parameters checked, and every host and both
databases reached, before anything changes."""

from __future__ import annotations

from airlift.errors import StepError
from airlift.params import ParamError
from operators.synnefo_upgrade.common import DATABASE_CONNECTIONS, SynnefoStepOperator
from synnefo import params
from synnefo import settings as conf

DUMP_TOOLS = ("pg_dump", "pg_restore", "psql", "sha256sum")


class PreflightOperator(SynnefoStepOperator):
    """Checks the trigger parameters (synnefo/params.py: every problem at once), reads where
    the two databases are from their connections, and reaches each host over SSH, the DB
    host's PostgreSQL tools and its backup directory, and reads every Synnefo settings file
    (/etc/synnefo/*.conf): one that is not valid Python breaks every snf-manage command, and is
    for a person to fix before anything changes. Changes nothing; returns the run's settings,
    which every later step gets."""

    def execute(self, context) -> dict:
        with self.step_errors():
            unknown = sorted(set(context["params"]) - set(self.dag.params))
            if unknown:
                raise ParamError("invalid parameters:\n- " + "\n- ".join(f"{k}: not a parameter of this DAG"
                                                                          for k in unknown))
            databases = {name: self.db(name).location for name in DATABASE_CONNECTIONS}
            settings = params.check(context["params"], databases)
            for name in DATABASE_CONNECTIONS:
                if not self.db(name).tables():
                    raise StepError(f"database {name} of connection {DATABASE_CONNECTIONS[name]} has no tables: "
                                    "is it the right database?")
            for role, host in [*settings["hosts"].items(), *(("ganeti", n) for n in settings["ganeti_nodes"])]:
                self.nodes.run(host, ["true"], timeout=60)
                self.log.info("%s (%s): reached", role, host)
            for role, host in settings["hosts"].items():
                files = self.nodes.settings_files(host)
                for path, text in files.items():
                    conf.parse(text, f"{role}:{path}")
                self.log.info("%s: %d settings files, valid Python", role, len(files))
            db_host = settings["db_host"]
            missing = self.nodes.run(db_host, "for t in " + " ".join(DUMP_TOOLS) + "; do command -v $t >/dev/null "
                                     "|| echo $t; done", timeout=60).stdout.split()
            if missing:
                raise StepError(f"{db_host} lacks {', '.join(missing)}: the backups of every phase run there")
            found = self.nodes.run(db_host, ["test", "-d", settings["backup_dir"]], check=False, timeout=60)
            if found.exit_status != 0:
                raise StepError(f"backup_dir {settings['backup_dir']} is not a directory on {db_host}: create it "
                                "(root only, mode 0700) on a file system with room for the dumps")
        self.log.info("preflight ok: hosts %s, databases %s", settings["hosts"],
                      {k: f"{v['database']} on {v['server']}:{v['port']}" for k, v in databases.items()})
        return settings
