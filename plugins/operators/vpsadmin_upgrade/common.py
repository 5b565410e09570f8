"""What several sections of the vpsAdmin upgrade share: the connections every step reaches the
cluster through, and the steps used in more than one section (the database dump, the rake
migration, the pool inventory, file and crontab edits on a host, the web server's NFS mounts).
Each step is probe -> apply (RunbookStepOperator); hooks do the I/O, plugins/vpsadmin/ the logic.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
from collections.abc import Sequence
from functools import cached_property

from airflow.sdk.bases.skipmixin import SkipMixin

from airlift.connections import VPSADMIN_API, VPSADMIN_DB, VPSADMIN_SSH
from airlift.errors import StepError
from airlift.remote import NodeCommandError
from operators.runbook_step import Plan, RunbookStepOperator, run_label
from vpsadmin import crontab, environments, inventory
from vpsadmin.params import ABS_PATH, DB_NAME

API_ROOT = "/opt/vpsadminapi"


class VpsAdminStepOperator(RunbookStepOperator):
    """A step of the vpsAdmin upgrade: the vpsAdmin database, the nodes over SSH and the 2.0
    API, each built on first use (parsing a DAG loads neither paramiko nor MySQLdb).

    :param mysql_conn_id: the vpsAdmin database. :param ssh_conn_id: SSH credentials for every
    node. :param api_conn_id: the 2.0 API (where it listens, an admin's login)."""

    def __init__(self, *, mysql_conn_id: str = VPSADMIN_DB, ssh_conn_id: str = VPSADMIN_SSH,
                 api_conn_id: str = VPSADMIN_API, **kwargs):
        super().__init__(**kwargs)
        self.mysql_conn_id, self.ssh_conn_id, self.api_conn_id = mysql_conn_id, ssh_conn_id, api_conn_id

    @cached_property
    def db(self):
        from hooks.vpsadmin_db import VpsAdminDbHook

        return VpsAdminDbHook(self.mysql_conn_id)

    @cached_property
    def nodes(self):
        from hooks.node import NodeHook

        return NodeHook(self.ssh_conn_id)

    @cached_property
    def api(self):
        from hooks.vpsadmin_api import VpsAdminApiHook

        return VpsAdminApiHook(self.api_conn_id)

    def job_nodes(self):
        return self.nodes

    def check_pool(self) -> None:
        """For a step mapped over pools: `node` came through XCom, so its id, filesystem and
        address are checked again (vpsadmin/inventory.py) before they reach a command."""
        errors = inventory.check_pool(self.node) if isinstance(self.node, dict) else [f"{self.node!r} is not a pool"]
        if errors:
            raise StepError("refusing a pool no command may use:\n- " + "\n- ".join(errors))

    def close(self) -> None:
        nodes = self.__dict__.pop("nodes", None)
        if nodes is not None:
            nodes.close()


class MysqlDumpOperator(VpsAdminStepOperator):
    """A dump of the database (or `tables` of it) on the DB host with include/scripts/mysql/
    dump.sh, verified there (read back whole: gzip's check, the completion trailer) and here:
    it creates every table of the database as connection vpsadmin_db sees it (or every one of
    `tables`). Returns its path, size, sha256, uncompressed bytes and tables. A retry of the
    same run keeps a dump that still verifies. Once it verifies, the older dumps of the same
    database and label beyond the newest `keep_dumps` are deleted.

    :param mode: `full` (consistent, gzip-compressed) or `latin1` (the encoding fix's dump).
    :param label: what the file name says the dump is for.
    :param keep_dumps: how many dumps of this database and label the backup directory keeps,
        this run's included (None: all). Only files named as this step names its dumps count;
        none is deleted while another run of the DAG is unfinished (one may be its dump)."""

    template_fields: Sequence[str] = (*RunbookStepOperator.template_fields, "settings", "keep_dumps")
    SUFFIX = {"full": ".sql.gz", "latin1": ".sql"}
    # A dump that failed (MySQL down, disk full) fails the task; cleared once the operator fixed
    # the DB host, it dumps anew instead of finding the failure again. dump.sh keeps a dump
    # that verifies and replaces a partial one, so running it again never dumps twice.
    rerun_failed_job = True
    UNFINISHED = ["queued", "running"]  # DAG run states

    def __init__(self, *, settings, mode: str, label: str, tables: Sequence[str] = (), keep_dumps=None, **kwargs):
        kwargs.setdefault("script", "mysql/dump.sh")
        super().__init__(**kwargs)
        self.settings, self.mode, self.file_label, self.tables = settings, mode, label, list(tables)
        self.keep_dumps = keep_dumps

    def _prefix(self) -> str:
        """`<database>-<label>-`: how every dump of this step's database and label is named
        (then the run's label and the suffix); the settings come from XCom, so checked here."""
        database, backup_dir = self.settings["database"], self.settings["backup_dir"]
        errors = inventory.check_address("db_host", self.settings["db_host"])
        if not isinstance(database, str) or not DB_NAME.fullmatch(database):
            errors.append(f"database {database!r} is not a plain database name")
        if not isinstance(backup_dir, str) or not ABS_PATH.fullmatch(backup_dir) or "/../" in f"{backup_dir}/":
            errors.append(f"backup_dir {backup_dir!r} is not an absolute path of letters, digits and ._+-")
        if self.keep_dumps is not None and (isinstance(self.keep_dumps, bool) or not isinstance(self.keep_dumps, int)
                                            or self.keep_dumps < 1):
            errors.append(f"keep_dumps {self.keep_dumps!r} is not a number of dumps (1 or more)")
        if errors:
            raise StepError("refusing to dump with these settings:\n- " + "\n- ".join(errors))
        return f"{database}-{self.file_label}-"

    def _args(self, context) -> list[str]:
        path = f"{self.settings['backup_dir'].rstrip('/')}/{self._prefix()}{run_label(context)}{self.SUFFIX[self.mode]}"
        return [self.mode, self.settings["database"], path, *self.tables]

    def probe(self, context) -> Plan:
        changes = [f"{self.settings['db_host']}: dump.sh {shlex.join(self._args(context))}"]
        if self.keep_dumps is not None:
            changes.append(f"{self.settings['db_host']}: then keep the newest {self.keep_dumps} of "
                           f"{self.settings['backup_dir']}/{self._prefix()}*{self.SUFFIX[self.mode]}")
        return Plan(changes)

    def apply(self, context, plan: Plan) -> dict | None:
        return self.remote_job(context, self.nodes, self.settings["db_host"], self.script, self._args(context), plan)

    def job_done(self, context, plan: Plan, result) -> dict:
        super().job_done(context, plan, result)
        dump = json.loads(result.stdout.strip().splitlines()[-1])
        database = self.settings["database"]
        missing = sorted((set(self.tables) or self.db.base_tables(database)) - set(dump["tables"]))
        if missing:
            raise StepError(f"{dump['path']} on {self.settings['db_host']} lacks {len(missing)} table(s) of {database} "
                            f"that connection {self.mysql_conn_id} sees: {', '.join(missing[:20])}. Is the DB host's "
                            "~/.my.cnf for another server? Remove the file before the next try.")
        self.log.info("%s: %s, %d bytes (%d uncompressed), %d tables, sha256 %s%s", self.label, dump["path"],
                      dump["size"], dump["bytes"], len(dump["tables"]), dump["sha256"],
                      " (kept from an earlier try)" if dump["reused"] else "")
        return {**dump, "removed": self._remove_old_dumps(context, dump["path"])}

    def _remove_old_dumps(self, context, current: str) -> list[str]:
        """Deletes this database's and label's dumps beyond the newest keep_dumps, never
        `current` (this run's); returns their paths."""
        if self.keep_dumps is None:
            return []
        unfinished = context["ti"].get_dr_count(dag_id=self.dag_id, states=self.UNFINISHED) - 1  # this run is one
        if unfinished > 0:
            self.log.warning("%s: %d other run(s) of %s are unfinished: no old dump removed", self.label, unfinished,
                             self.dag_id)
            return []
        host, directory, suffix = self.settings["db_host"], posixpath.dirname(current), self.SUFFIX[self.mode]
        listing = self.nodes.run(host, ["find", directory, "-maxdepth", "1", "-type", "f", "-name",
                                        f"{self._prefix()}*{suffix}", "-printf", "%T@ %f\\0"]).stdout
        names = old_dumps(listing, self._prefix(), suffix, self.keep_dumps, posixpath.basename(current))
        paths = [f"{directory}/{name}" for name in names]
        if paths:
            self.nodes.run(host, ["rm", "-f", "--", *paths])
            self.log.info("%s: removed %d old dump(s) (keep_dumps %d): %s", self.label, len(paths), self.keep_dumps,
                          ", ".join(paths))
        return paths

    def verify(self, context, plan: Plan) -> Plan:
        return Plan()  # dump.sh verified the file before it reported it


def old_dumps(listing: str, prefix: str, suffix: str, keep: int, current: str) -> list[str]:
    """The dumps to delete, oldest first, from `find -printf '%T@ %f\\0'` output: the files named
    `<prefix><run label><suffix>` beyond the newest `keep` (`current` counts as the newest and
    is never among them). Only run labels of the ids Airflow gives runs (`<run type>__...`)
    count: a dump of a run with an id of its own stays, and so does one whose label merely
    starts like this one (`before-v2` would otherwise take `before-v2-upgrade-manual__...`)."""
    own = re.compile(re.escape(prefix) + r"[a-z_]+__[A-Za-z0-9._-]+" + re.escape(suffix))
    dumps = []
    for entry in filter(None, listing.split("\0")):
        mtime, _, name = entry.partition(" ")
        if own.fullmatch(name) and name != current:
            dumps.append((float(mtime), name))
    newest_first = [name for _, name in sorted(dumps, reverse=True)]
    return newest_first[max(keep - 1, 0):][::-1]


class MigrationMixin:
    """What a migration step and the dump right before it share: the schema's version and the
    one the migration reaches (`version`, else the newest migration in the API checkout)."""

    settings: dict
    version: str | None

    def _schema(self) -> str:
        return max(self.db.migrations(), default="0")

    def _target(self) -> tuple[str, str]:
        """(the migration to reach, the command that gets there)."""
        listing = self.nodes.run(self.settings["api_host"], ["ls", f"{API_ROOT}/db/migrate"], check=False)
        available = sorted(name.split("_", 1)[0] for name in listing.stdout.split() if name[:1].isdigit())
        target = self.version or (available[-1] if available else self._schema())
        return target, f"cd {API_ROOT} && rake db:migrate" + (f" VERSION={int(self.version)}" if self.version else "")


class MigrationBackupOperator(MigrationMixin, MysqlDumpOperator):
    """The full dump right before a migration, taken once the cluster is quiet (the DAG puts it
    after maintenance mode, the drained queue and the stopped daemons): what the migration's
    restore loads, so a restore neither requeues executed transactions nor brings back what
    the earlier steps deleted. Nothing to dump once the schema is at the migration's target."""

    def __init__(self, *, version: str | None = None, **kwargs):
        kwargs.setdefault("mode", "full")
        super().__init__(**kwargs)
        self.version = version

    def probe(self, context) -> Plan:
        current, (target, _) = self._schema(), self._target()
        if current >= target:
            self.log.info("%s: schema at %s, target %s: no migration to back up for", self.label, current, target)
            return Plan(details={"version": current})
        return super().probe(context)


class RakeMigrateOperator(MigrationMixin, VpsAdminStepOperator, SkipMixin):
    """`rake db:migrate [VERSION=...]` in the API checkout on the API host, when the schema is
    behind, as a remote job: a retry after a lost connection or a killed worker attaches to
    the rake still running or takes its result; it never starts rake a second time. A rake
    that failed or was killed midway is not run again (MySQL DDL is not transactional: a
    half-applied migration needs the restore path, not a second try); the step records where
    rake runs, so the restore gate asks only when rake has certainly stopped short of the
    target. In plan mode with migrations pending, the steps after it cannot probe tables that
    do not exist yet: they are skipped (section reports still run) and planned by a plan-mode
    run after the migration."""

    template_fields: Sequence[str] = (*RunbookStepOperator.template_fields, "settings")
    inherits_from_skipmixin = True
    restart_died_job = False
    STARTED = "migration_started"  # XCom key the restore gate reads: {from, target, host, job}

    def __init__(self, *, settings, version: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.settings, self.version = settings, version

    def probe(self, context) -> Plan:
        current, (target, command) = self._schema(), self._target()
        if current >= target:
            self.log.info("%s: schema at %s, target %s: nothing to migrate", self.label, current, target)
            return Plan(details={"version": current})
        return Plan([f"{self.settings['api_host']}: {command}  (schema {current} -> {target})"])

    def execute(self, context) -> dict:
        record = super().execute(context)
        if record["dry_run"] and record["changes"]:
            later = [t for t in context["task"].get_flat_relatives(upstream=False) if not t.task_id.endswith(".report")]
            self.log.info("%s: the %d later step(s) need the migrated schema to plan: skipped", self.label, len(later))
            self.skip(ti=context["ti"], tasks=later)
        return record

    def apply(self, context, plan: Plan) -> dict | None:
        target, command = self._target()
        context["ti"].xcom_push(key=self.STARTED, value={
            "from": self._schema(), "target": target, "host": self.settings["api_host"], "job": self.job_key(context)})
        return self.remote_job(context, self.nodes, self.settings["api_host"], command, [], plan)

    def job_done(self, context, plan: Plan, result) -> dict:
        target, command = self._target()
        after = self._schema()
        for line in result.stdout.splitlines():
            self.log.info("[%s] %s", self.settings["api_host"], line)
        if not result.ok:
            raise StepError(f"`{command}` on {self.settings['api_host']} exited {result.exit_status}; the schema "
                            f"stopped at {after}. Approve the restore of the dump taken right before it, fix the cause, "
                            "then run again.\n" + result.tail(20))
        if after < target:
            raise StepError(f"schema at {after} after `{command}`, expected {target}")
        return {"version": after}

    def verify(self, context, plan: Plan) -> Plan:
        return Plan()  # job_done compared the schema with the target


class PoolInventoryOperator(VpsAdminStepOperator):
    """The storage pools (v2.0 `pools`) of some roles with the node holding each, for the
    per-pool steps; nodes in `skip_nodes` are left out. Reads only."""

    template_fields: Sequence[str] = ("skip_nodes",)
    ROLES = {"hypervisor": 0, "primary": 1, "backup": 2}

    def __init__(self, *, roles: Sequence[str] = ("hypervisor", "primary", "backup"), skip_nodes=(), **kwargs):
        super().__init__(**kwargs)
        self.roles, self.skip_nodes = tuple(roles), skip_nodes

    def execute(self, context) -> list[dict]:
        wanted, pools = {self.ROLES[r] for r in self.roles}, []
        with self.step_errors():  # the hook refuses pools whose filesystem or address is unsafe
            found = self.db.pools()
        for p in found:
            name = environments.short_name(p["server_name"])
            if p["role"] in wanted and p["server_name"] not in self.skip_nodes and name not in self.skip_nodes:
                pools.append({"pool_id": p["pool_id"], "filesystem": p["filesystem"], "role": p["role"],
                              "server_name": name, "address": p["address"]})
        self.log.info("%d pool(s): %s", len(pools), ", ".join(f"{p['server_name']}:{p['filesystem']}" for p in pools))
        return pools


class NodeFileEditOperator(VpsAdminStepOperator):
    """Edits one text file on one host: reads it, `transform`s it (pure), writes it back only
    when it changed, keeping the first original beside it as `<path><keep_suffix>`."""

    keep_suffix = ".v1.22"

    def path(self) -> str:
        raise NotImplementedError

    def transform(self, text: str) -> str:
        raise NotImplementedError

    def probe(self, context) -> Plan:
        current = self.nodes.run(self.node["address"], ["cat", self.path()], check=False)
        if not current.ok:
            raise StepError(f"cannot read {self.path()}: {current.tail(3)}")
        try:
            new = self.transform(current.stdout)
        except ValueError as exc:
            raise StepError(f"{self.path()}: {exc}") from exc
        if new == current.stdout:
            return Plan()
        return Plan([f"{self.node['server_name']}: rewrite {self.path()}"], work=new)

    def apply(self, context, plan: Plan) -> None:
        quoted, kept = shlex.quote(self.path()), shlex.quote(self.path() + self.keep_suffix)
        # umask 077: the new file (it may hold passwords) is root's alone from its first byte,
        # until it gets the original's mode
        self.nodes.run(self.node["address"], f"umask 077; test -e {kept} || cp -p {quoted} {kept}; "
                                             f"cat > {quoted}.airlift && chmod --reference={quoted} {quoted}.airlift "
                                             f"&& mv {quoted}.airlift {quoted}", stdin=plan.work)


class CrontabEditOperator(VpsAdminStepOperator):
    """Edits root's crontab on the API/web host (the cluster crontab) with `transform`, keeping
    the original in `saved_copy` (written once, never overwritten; None: keep none)."""

    template_fields: Sequence[str] = (*RunbookStepOperator.template_fields, "settings")
    saved_copy: str | None = None

    def __init__(self, *, settings, **kwargs):
        super().__init__(**kwargs)
        self.settings = settings

    def transform(self, text: str) -> tuple[str, list[str]]:
        """(new crontab, the changes); no changes when the crontab is as it should be."""
        raise NotImplementedError

    def probe(self, context) -> Plan:
        host = self.settings["api_host"]
        current = self.nodes.run(host, ["crontab", "-l"], check=False)
        if current.exit_status == 1 and "no crontab for" in current.stderr:
            self.log.info("%s: %s has no crontab", self.label, host)
            return Plan()
        if not current.ok:  # anything else is not "no crontab": crontab missing, a broken spool
            raise NodeCommandError(current)
        new_text, changes = self.transform(current.stdout)
        return Plan([f"{host}: {change}" for change in changes], work=(current.stdout, new_text))

    def apply(self, context, plan: Plan) -> dict:
        host, (original, new_text) = self.settings["api_host"], plan.work
        if self.saved_copy and not self.nodes.run(host, ["test", "-e", self.saved_copy], check=False).ok:
            self.nodes.run(host, f"umask 077; cat > {shlex.quote(self.saved_copy)}", stdin=original)
        self.nodes.run(host, ["crontab", "-"], stdin=new_text)
        return {"saved_copy": self.saved_copy}


class CrontabDisableOperator(CrontabEditOperator):
    """Comments out the runbook's jobs in the cluster crontab (root's crontab on the API/web
    host) with a `#airlift-disabled#` prefix; the site's other jobs stay as they are (the
    runbook says "disable all jobs", which would leave a site's own jobs off for good). The
    original is kept in /root/crontab.v1.22 (0600)."""

    saved_copy = "/root/crontab.v1.22"

    def transform(self, text: str) -> tuple[str, list[str]]:
        return crontab.disable_runbook_jobs(text)


class WebMountsOperator(VpsAdminStepOperator):
    """On the web server (the API host), `<node>:/<pool>/vpsadmin/<subdataset>` of every pool
    NFS-mounted read-only at `<mountpoint>/<pool id>`, and listed in its /etc/fstab."""

    template_fields: Sequence[str] = (*RunbookStepOperator.template_fields, "settings", "pools", "mountpoint")

    def __init__(self, *, settings, pools, subdataset: str, mountpoint: str, **kwargs):
        super().__init__(**kwargs)
        self.settings, self.pools, self.subdataset, self.mountpoint = settings, pools, subdataset, mountpoint

    def probe(self, context) -> Plan:
        errors = inventory.unsafe_pools(self.pools)  # from XCom: checked again before any line reaches fstab
        if errors:
            raise StepError("refusing pools that are unsafe in /etc/fstab and mount:\n- " + "\n- ".join(errors))
        host = self.settings["api_host"]
        table = self.nodes.run(host, ["mount"]).stdout
        fstab = self.nodes.run(host, "cat /etc/fstab 2>/dev/null || true").stdout.splitlines()
        mounted = {line.split(" on ", 1)[1].split(" type ", 1)[0] for line in table.splitlines() if " on " in line}
        changes, work = [], []
        for pool in self.pools:
            source = f"{pool['address']}:/{pool['filesystem']}/vpsadmin/{self.subdataset}"
            target = f"{self.mountpoint.rstrip('/')}/{int(pool['pool_id'])}"
            entry = f"{source} {target} nfs ro,vers=3,soft 0 0"
            if entry not in fstab:
                changes.append(f"{host}: /etc/fstab += {entry}")
                work.append(("fstab", entry))
            if target not in mounted:
                changes.append(f"{host}: mount -t nfs -o ro {source} {target}")
                work.append(("mount", (source, target)))
        return Plan(changes, work=work)

    def apply(self, context, plan: Plan) -> None:
        host = self.settings["api_host"]
        for kind, what in plan.work:
            if kind == "fstab":
                self.nodes.run(host, "cat >> /etc/fstab", stdin=what + "\n")
            else:
                source, target = what
                self.nodes.run(host, ["mkdir", "-p", target])
                self.nodes.run(host, ["mount", "-t", "nfs", "-o", "ro,vers=3,soft", source, target])
