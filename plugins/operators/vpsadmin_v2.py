"""Operators for the steps of the vpsAdmin upgrade that run against the v2.0 schema: the
migrations, the tables the runbook populates by hand, configuration files on the nodes,
old backups, the NAS remount, mail templates and the integrity check. Each keeps `execute`
short: hooks do the I/O, plugins/vpsadmin/ the logic."""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

from airflow.sdk.bases.skipmixin import SkipMixin
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from airlift import sql
from airlift.connections import VPSADMIN_API
from airlift.remote import NodeCommandError
from airlift.sql import INCLUDE_DIR
from operators.steps import GateOperator, step_record
from operators.vpsadmin import CrontabDisableOperator, _VpsAdminOperator
from vpsadmin import configs, crontab, environments

PINNED_VERSION = "20150630072821"
MIGRATION_STARTED = "migration_started"
API_ROOT = "/opt/vpsadminapi"


def _fail(step: str, exc: Exception) -> AirflowFailException:
    return AirflowFailException(f"{step}: {exc}")


class UpgradePhaseOperator(_VpsAdminOperator, SkipMixin):
    """Once the database is past the pinned migration, the v1.22 sections (prerequisites and
    database) have done their work and must not run again (they would, e.g., stop the 2.0
    daemons): their tasks are skipped, their reports still run. A fresh v1.22 world goes on."""

    inherits_from_skipmixin = True

    def __init__(self, *, v122_prefixes: tuple[str, ...], **kwargs):
        super().__init__(**kwargs)
        self.v122_prefixes = v122_prefixes

    def execute(self, context) -> dict:
        versions = {r["version"] for r in self.db().named("migrations.sql", "versions")}
        migrated = PINNED_VERSION in versions
        if migrated:
            tasks = [t for t in context["dag"].tasks
                     if t.task_id.startswith(self.v122_prefixes) and not t.task_id.endswith(".report")]
            self.log.info("schema_migrations has %s: the v1.22 sections are done; skipping %d task(s)",
                          PINNED_VERSION, len(tasks))
            self.skip(ti=context["ti"], tasks=tasks)
        return {"migrated": migrated, "latest": max(versions) if versions else None}


class RakeMigrateOperator(_VpsAdminOperator, SkipMixin):
    """`rake db:migrate [VERSION=...]` in the API checkout on the API host, when the schema is
    behind. A failed migration is not retried (MySQL DDL is not transactional: a half-applied
    migration needs the restore path, not a second try). In plan mode with migrations pending,
    the steps after it cannot probe tables that do not exist yet: they are skipped (section
    reports still run) and planned by a plan-mode run after the migration."""

    template_fields = ("settings", "dry_run")
    inherits_from_skipmixin = True

    def __init__(self, *, settings, step: str, version: str | None = None, dry_run=True, **kwargs):
        super().__init__(**kwargs)
        self.settings, self.step, self.version, self.dry_run = settings, step, version, dry_run

    def execute(self, context) -> dict:
        host = self.settings["api_host"]
        current = max((r["version"] for r in self.db().named("migrations.sql", "versions")), default="0")
        nodes = self.nodes()
        try:
            listing = nodes.run(host, f"ls {API_ROOT}/db/migrate", check=False)
            available = sorted(name.split("_", 1)[0] for name in listing.stdout.split() if name[:1].isdigit())
            target = self.version or (available[-1] if available else current)
            if current >= target:
                self.log.info("%s: schema at %s, target %s: nothing to migrate", self.step, current, target)
                return step_record(self.step, self.dry_run, [], False, version=current)
            command = f"cd {API_ROOT} && rake db:migrate" + (f" VERSION={int(self.version)}" if self.version else "")
            change = f"{host}: {command}  (schema {current} -> {target})"
            if self.dry_run:
                later = [t for t in context["task"].get_flat_relatives(upstream=False)
                         if not t.task_id.endswith(".report")]
                self.log.info("%s: plan: %s\nthe %d later step(s) need the migrated schema to plan: skipped",
                              self.step, change, len(later))
                self.skip(ti=context["ti"], tasks=later)
                return step_record(self.step, True, [change], False)
            context["ti"].xcom_push(key=MIGRATION_STARTED, value=current)  # the restore gate reads it
            result = nodes.run(host, command, check=False, timeout=6 * 3600, log_output=True)
        finally:
            nodes.close()
        after = max((r["version"] for r in self.db().named("migrations.sql", "versions")), default="0")
        if not result.ok:
            raise AirflowFailException(
                f"{self.step}: `{command}` on {host} exited {result.exit_status}; the schema stopped at {after}. "
                f"Approve the restore of the pre-upgrade backup, fix the cause, then run again.\n{result.tail(20)}")
        if after < target:
            raise AirflowFailException(f"{self.step}: schema at {after} after `{command}`, expected {target}")
        return step_record(self.step, False, [change], True, version=after)


class RestoreGateOperator(GateOperator):
    """The approval before restoring the backup: asks only when `rake db:migrate` itself ran
    and failed (it records that it started, and returns only on success). A migration that
    succeeded, or never ran because something before it failed, skips the gate: `one_failed`
    alone would also fire on an upstream failure (e.g. bad params) and offer a restore."""

    def __init__(self, *, migrate_task_id: str, **kwargs):
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)
        self.migrate_task_id = migrate_task_id

    def execute(self, context):
        ti = context["ti"]
        started = ti.xcom_pull(task_ids=self.migrate_task_id, key=MIGRATION_STARTED)
        finished = ti.xcom_pull(task_ids=self.migrate_task_id)
        if started is None or finished is not None:
            raise AirflowSkipException("the migration did not fail: nothing to restore")
        return super().execute(context)


class DatabaseRestoreOperator(_VpsAdminOperator):
    """Restores the verified full dump of the preflight section: every table of the database
    is dropped (the failed migration created some) and the dump is loaded on the DB host."""

    template_fields = ("settings", "dump")

    def __init__(self, *, settings, dump, step: str, **kwargs):
        super().__init__(**kwargs)
        self.settings, self.dump, self.step = settings, dump, step

    def execute(self, context) -> dict:
        if not self.dump or not self.dump.get("path"):
            raise AirflowFailException(f"{self.step}: no verified dump from the preflight section to restore")
        nodes = self.nodes()
        try:
            nodes.run_script(self.settings["db_host"], "mysql_load.sh",
                             [self.dump["path"], self.settings["database"], self.dump["sha256"], "--replace"],
                             timeout=6 * 3600, log_output=True)
        except NodeCommandError as exc:
            raise _fail(self.step, exc) from exc
        finally:
            nodes.close()
        self.log.warning("%s: database %s restored from %s (sha256 %s). Fix the cause of the failed "
                         "migration, then trigger the DAG again.", self.step, self.settings["database"],
                         self.dump["path"], self.dump["sha256"])
        return step_record(self.step, False, [f"restore {self.dump['path']}"], True)


class EnvironmentsOperator(_VpsAdminOperator):
    """Environments as the `environments` param describes them, matched by label."""

    template_fields = ("environments", "dry_run")

    def __init__(self, *, environments, step: str, dry_run=True, **kwargs):
        super().__init__(**kwargs)
        self.environments, self.step, self.dry_run = environments, step, dry_run

    def execute(self, context) -> dict:
        db = self.db()
        existing = db.named("environments.sql", "environments")
        inserts, updates, others = environments.plan_environments(
            environments.environment_rows(self.environments), existing)
        for label in others:
            self.log.warning("%s: environment %r is in the database but not in the param; left as it is",
                             self.step, label)
        changes = [f"insert environment {r}" for r in inserts] + [f"update environment {r}" for r in updates]
        if not changes or self.dry_run:
            self.log.info("%s: %s", self.step, "\n".join(changes) or "environments as wanted")
            return step_record(self.step, self.dry_run, changes, False)
        db.execute_in_transaction(
            [(sql.statement("vpsadmin/environments.sql", "insert_environment"), r) for r in inserts]
            + [(sql.statement("vpsadmin/environments.sql", "update_environment"), r) for r in updates])
        self.log.info("%s:\n%s", self.step, "\n".join(changes))
        return step_record(self.step, False, changes, True)


class ServersOperator(_VpsAdminOperator):
    """Every server in the environment the param puts it in, named without its location
    domain (2.0 builds the FQDN from location and environment domains)."""

    template_fields = ("environments", "dry_run")

    def __init__(self, *, environments, step: str, dry_run=True, **kwargs):
        super().__init__(**kwargs)
        self.environments, self.step, self.dry_run = environments, step, dry_run

    def execute(self, context) -> dict:
        db = self.db()
        env_ids = {e["label"]: e["id"] for e in db.named("environments.sql", "environments")}
        missing = [e["label"] for e in self.environments if e["label"] not in env_ids]
        if missing and not self.dry_run:
            raise AirflowFailException(f"{self.step}: environments {missing} do not exist")
        env_ids.update({label: f"<new {label}>" for label in missing})  # plan mode only
        plan = environments.plan_servers(self.environments, env_ids, db.named("environments.sql", "servers"))
        changes = [f"server {c['server_id']}: {c['was']} (environment {c['was_environment_id']}, ve_private "
                   f"{c['was_ve_private']}) -> {c['server_name']} (environment {c['environment_id']}, "
                   f"ve_private {c['ve_private']})" for c in plan]
        if not changes or self.dry_run:
            self.log.info("%s: %s", self.step, "\n".join(changes) or "every server placed and named")
            return step_record(self.step, self.dry_run, changes, False)
        update = sql.statement("vpsadmin/environments.sql", "update_server")
        db.execute_in_transaction([(update, c) for c in plan])
        self.log.info("%s:\n%s", self.step, "\n".join(changes))
        return step_record(self.step, False, changes, True)


class DefaultResourcesOperator(_VpsAdminOperator):
    """default_object_cluster_resources: Vps and User, every environment, every resource."""

    template_fields = ("environments", "default_resources", "dry_run")

    def __init__(self, *, environments, default_resources, step: str, dry_run=True, **kwargs):
        super().__init__(**kwargs)
        self.environments, self.default_resources = environments, default_resources
        self.step, self.dry_run = step, dry_run

    def execute(self, context) -> dict:
        db = self.db()
        env_ids = {e["label"]: e["id"] for e in db.named("environments.sql", "environments")}
        env_ids.update({e["label"]: f"<new {e['label']}>" for e in self.environments
                        if e["label"] not in env_ids})  # only in plan mode: envs not created yet
        resource_ids = {r["name"]: r["id"] for r in db.named("default_resources.sql", "cluster_resources")}
        inserts, updates = environments.plan_default_resources(
            self.environments, self.default_resources, env_ids, resource_ids,
            db.named("default_resources.sql", "defaults"))
        changes = [f"{'insert' if 'id' not in r else 'update'} {r['environment']} {r['class_name']} "
                   f"{r['resource']} = {r['value']}" for r in inserts + updates]
        if not changes or self.dry_run:
            self.log.info("%s: %s", self.step, "\n".join(changes) or "defaults as wanted")
            return step_record(self.step, self.dry_run, changes, False)
        db.execute_in_transaction(
            [(sql.statement("vpsadmin/default_resources.sql", "insert"), r) for r in inserts]
            + [(sql.statement("vpsadmin/default_resources.sql", "update"), r) for r in updates])
        return step_record(self.step, False, changes, True)


class SysconfigOperator(_VpsAdminOperator):
    """One sysconfig key, stored JSON-encoded as both 1.22 and 2.0 read it."""

    template_fields = ("value", "dry_run")

    def __init__(self, *, name: str, value, step: str, dry_run=True, **kwargs):
        super().__init__(**kwargs)
        self.name, self.value, self.step, self.dry_run = name, value, step, dry_run

    def execute(self, context) -> dict:
        db = self.db()
        if db.sysconfig(self.name) == self.value:
            self.log.info("%s: %s is already %r", self.step, self.name, self.value)
            return step_record(self.step, self.dry_run, [], False)
        encoded = json.dumps(self.value)
        change = f"sysconfig {self.name} = {encoded}"
        if not self.dry_run:
            db.execute_in_transaction([(sql.statement("vpsadmin/sysconfig.sql", "set"),
                                        {"name": self.name, "value": encoded})])
        self.log.info("%s: %s%s", self.step, "plan: " if self.dry_run else "", change)
        return step_record(self.step, self.dry_run, [change], not self.dry_run)


class StartApiOperator(_VpsAdminOperator):
    """Starts the API server on the API host (`thin ... start` in the API checkout, as the
    runbook does, daemonized) unless it answers already, then waits until it answers."""

    template_fields = ("settings", "dry_run")

    def __init__(self, *, settings, step: str, dry_run=True, api_conn_id: str = VPSADMIN_API,
                 wait: float = 120, **kwargs):
        super().__init__(**kwargs)
        self.settings, self.step, self.dry_run = settings, step, dry_run
        self.api_conn_id, self.wait = api_conn_id, wait

    def execute(self, context) -> dict:
        from hooks.vpsadmin_api import VpsAdminApiHook

        api = VpsAdminApiHook(self.api_conn_id)
        if api.version(timeout=5):
            self.log.info("%s: the API answers at %s", self.step, api.base_url)
            return step_record(self.step, self.dry_run, [], False)
        host = self.settings["api_host"]
        command = (f"cd {API_ROOT} && thin --address {shlex.quote(api.bind_host)} --port {int(api.bind_port)} "
                   "--environment production --log /var/log/vpsadminapi.log --daemonize start")
        if self.dry_run:
            self.log.info("%s: plan: on %s: %s", self.step, host, command)
            return step_record(self.step, True, [f"{host}: {command}"], False)
        nodes = self.nodes()
        try:
            nodes.run(host, command, timeout=120, log_output=True)
        except NodeCommandError as exc:
            raise _fail(self.step, exc) from exc
        finally:
            nodes.close()
        deadline = time.monotonic() + self.wait
        while not (version := api.version(timeout=5)):
            if time.monotonic() > deadline:
                raise AirflowFailException(f"{self.step}: the API at {api.base_url} does not answer "
                                           f"{self.wait:.0f}s after `{command}`; see /var/log/vpsadminapi.log on {host}")
            time.sleep(2)
        self.log.info("%s: the API answers: %s", self.step, version)
        return step_record(self.step, False, [f"{host}: {command}"], True)


class PoolInventoryOperator(_VpsAdminOperator):
    """The storage pools (v2.0 `pools`) of some roles with the node holding each, for the
    per-pool steps; nodes in `skip_nodes` are left out."""

    template_fields = ("skip_nodes",)
    ROLES = {"hypervisor": 0, "primary": 1, "backup": 2}

    def __init__(self, *, roles: tuple[str, ...] = ("hypervisor", "primary", "backup"), skip_nodes=(), **kwargs):
        super().__init__(**kwargs)
        self.roles, self.skip_nodes = roles, skip_nodes

    def execute(self, context) -> list[dict]:
        wanted = {self.ROLES[r] for r in self.roles}
        pools = []
        for p in self.db().named("pools.sql", "pools"):
            name = p["server_name"]
            if p["role"] not in wanted or name in self.skip_nodes or environments.short_name(name) in self.skip_nodes:
                continue
            pools.append({"pool_id": p["pool_id"], "filesystem": p["filesystem"], "role": p["role"],
                          "server_name": environments.short_name(name), "address": p["address"]})
        self.log.info("%d pool(s): %s", len(pools), ", ".join(f"{p['server_name']}:{p['filesystem']}" for p in pools))
        return pools


class NodeFileEditOperator(_VpsAdminOperator):
    """Edits one text file on one host: reads it, `transform`s it (pure), writes it back only
    when it changed, keeping the first original beside it as `<path><keep_suffix>`."""

    template_fields = ("node", "dry_run")
    path: str = ""
    keep_suffix = ".v1.22"

    def __init__(self, *, node, step: str, dry_run=True, **kwargs):
        super().__init__(**kwargs)
        self.node, self.step, self.dry_run = node, step, dry_run

    def transform(self, text: str, context) -> str:
        raise NotImplementedError

    def execute(self, context) -> dict:
        name, address, path = self.node["server_name"], self.node["address"], self.path
        nodes = self.nodes()
        try:
            current = nodes.run(address, ["cat", path], check=False)
            if not current.ok:
                raise AirflowFailException(f"{self.step} on {name}: cannot read {path}: {current.tail(3)}")
            try:
                new = self.transform(current.stdout, context)
            except ValueError as exc:
                raise AirflowFailException(f"{self.step} on {name}: {path}: {exc}") from exc
            if new == current.stdout:
                self.log.info("%s on %s: %s is up to date", self.step, name, path)
                return step_record(self.step, self.dry_run, [], False, node=name)
            change = f"{name}: rewrite {path}"
            self.log.info("%s: %s%s:\n%s", self.step, "plan: " if self.dry_run else "", change, new)
            if self.dry_run:
                return step_record(self.step, True, [change], False, node=name)
            quoted, kept = shlex.quote(path), shlex.quote(path + self.keep_suffix)
            nodes.run(address, f"test -e {kept} || cp -p {quoted} {kept}; "
                               f"cat > {quoted}.airlift && chmod --reference={quoted} {quoted}.airlift && "
                               f"mv {quoted}.airlift {quoted}", stdin=new)
        except NodeCommandError as exc:
            raise _fail(self.step, exc) from exc
        finally:
            nodes.close()
        return step_record(self.step, False, [change], True, node=name)


class VpsadmindConfigOperator(NodeFileEditOperator):
    """/etc/vpsadmin/vpsadmind.yml in its 2.0 form: :queues and :mounts_dir added, the
    1.22-only :threads, :handlers and :backuper removed (the runbook's "FIXME: revise")."""

    path = "/etc/vpsadmin/vpsadmind.yml"

    def transform(self, text: str, context) -> str:
        return configs.vpsadmind_v2(text)


class WebConfigOperator(NodeFileEditOperator):
    """config.php of the web interface gets API_URL and ENV_VPS_PRODUCTION_ID (the id of the
    environment labelled `production_environment`)."""

    template_fields = (*NodeFileEditOperator.template_fields, "api_url", "production_environment", "web_root")
    keep_suffix = ".v1.22"

    def __init__(self, *, api_url: str, production_environment: str, web_root: str, **kwargs):
        super().__init__(**kwargs)
        self.api_url, self.production_environment, self.web_root = api_url, production_environment, web_root

    @property
    def path(self) -> str:
        return f"{self.web_root.rstrip('/')}/config.php"

    def transform(self, text: str, context) -> str:
        envs = {e["label"]: e["id"] for e in self.db().named("environments.sql", "environments")}
        if self.production_environment not in envs:
            raise ValueError(f"no environment labelled {self.production_environment!r}")
        api_url = self.api_url
        if not api_url:  # the param's default: where the upgrade started the API
            from hooks.vpsadmin_api import VpsAdminApiHook

            api_url = VpsAdminApiHook(VPSADMIN_API).base_url
        return configs.php_defines(text, {"API_URL": api_url,
                                          "ENV_VPS_PRODUCTION_ID": int(envs[self.production_environment])})


class CrontabReplaceOperator(CrontabDisableOperator):
    """The cluster crontab for 2.0: savetransfers.rb enabled again, the jobs 2.0 replaces
    marked with what replaces them (they stay disabled)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("saved_copy", None)  # the v1.22 original was kept by prereq.disable-cron
        super().__init__(**kwargs)

    def transform(self, text: str) -> tuple[str, list[str]]:
        return crontab.replace_for_v2(text)


class MailTemplatesOperator(_VpsAdminOperator):
    """Creates the mail templates 2.0 needs (include/mail_templates.json) that do not exist."""

    template_fields = ("dry_run",)

    def __init__(self, *, step: str, dry_run=True, **kwargs):
        super().__init__(**kwargs)
        self.step, self.dry_run = step, dry_run

    def execute(self, context) -> dict:
        templates = json.loads((Path(INCLUDE_DIR) / "mail_templates.json").read_text())
        db = self.db()
        existing = {r["name"] for r in db.named("mail_templates.sql", "names")}
        missing = [t for t in templates if t["name"] not in existing]
        changes = [f"create mail template {t['name']}" for t in missing]
        for name in sorted(existing & {t["name"] for t in templates}):
            self.log.info("%s: %s exists; left as it is", self.step, name)
        if not missing or self.dry_run:
            self.log.info("%s: %s", self.step, "\n".join(changes) or "every template exists")
            return step_record(self.step, self.dry_run, changes, False)
        insert = sql.statement("vpsadmin/mail_templates.sql", "insert")
        db.execute_in_transaction([(insert, t) for t in missing])
        return step_record(self.step, False, changes, True)


class RegisterBackupsOperator(_VpsAdminOperator):
    """Registers old backups as trees, branches and snapshots (include/sql/vpsadmin/
    register_backups.sql) in one transaction, after checking every snapshot it registers
    exists in the rearranged ZFS layout of its backup pool."""

    template_fields = ("timezone", "dry_run")

    def __init__(self, *, timezone: str, step: str, dry_run=True, **kwargs):
        super().__init__(**kwargs)
        self.timezone, self.step, self.dry_run = timezone, step, dry_run

    def execute(self, context) -> dict:
        db = self.db()
        if not db.named("register_backups.sql", "vps_backups_exists")[0]["n"]:
            self.log.info("%s: vps_backups is gone (final migration done): nothing left to register", self.step)
            return step_record(self.step, self.dry_run, [], False)
        statements = sql.load("vpsadmin/register_backups.sql")
        with db.get_conn() as conn:
            cur = conn.cursor()
            cur.execute("SET SESSION time_zone = '+00:00'")
            cur.execute(statements["drop"])
            cur.execute(statements["collect"], {"tz": self.timezone})
            cur.execute(statements["unnamed"])
            if cur.fetchone()[0]:
                raise AirflowFailException(f"{self.step}: time zone {self.timezone!r} unknown to the server")
            cur.execute(statements["pending"])
            names = [d[0] for d in cur.description]
            pending = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
            changes = [f"VPS {p['vps_id']}: tree.0/branch-{p['oldest']}.0 with {p['snapshots']} snapshot(s) "
                       f"in {p['filesystem']}" for p in pending]
            if not pending or self.dry_run:
                self.log.info("%s: %s", self.step, "\n".join(changes) or "every backup is registered")
                return step_record(self.step, self.dry_run, changes, False)
            self._check_zfs(pending)
            counts = {}
            for name in ("trees", "branches", "snapshots", "snapshot_in_pools", "snapshot_in_branches"):
                cur.execute(statements[name])
                counts[name] = cur.rowcount
            conn.commit()
        self.log.info("%s: registered %s", self.step, counts)
        return step_record(self.step, False, changes, True, rows=counts)

    def _check_zfs(self, pending: list[dict]) -> None:
        pools = {(p["pool_id"], p["filesystem"]) for p in pending}
        addresses = {p["pool_id"]: p["address"] for p in self.db().named("pools.sql", "pools")}
        found = set()
        nodes = self.nodes()
        try:
            for pool_id, fs in pools:
                listing = nodes.run(addresses[pool_id], ["zfs", "list", "-H", "-t", "snapshot", "-o", "name", "-r", fs])
                found.update(listing.stdout.split("\n"))
        except NodeCommandError as exc:
            raise _fail(self.step, exc) from exc
        finally:
            nodes.close()
        missing = [f"{p['filesystem']}/{p['full_name']}/tree.0/branch-{p['oldest']}.0@{name}"
                   for p in pending for name in p["names"].split(",")
                   if f"{p['filesystem']}/{p['full_name']}/tree.0/branch-{p['oldest']}.0@{name}" not in found]
        if missing:
            raise AirflowFailException(
                f"{self.step}: {len(missing)} backup snapshot(s) are not in the rearranged layout, nothing "
                "registered (rearrange first, or check backup_timezone):\n" + "\n".join(missing[:20]))


class RenamePrivateOperator(_VpsAdminOperator):
    """Datasets named `private` (reserved in 2.0) of one pool renamed to `new_name`, in ZFS
    and in the database. A dataset renamed in ZFS by an interrupted run only gets its
    database row updated."""

    template_fields = ("node", "new_name", "dry_run")

    def __init__(self, *, node, new_name: str, step: str, dry_run=True, **kwargs):
        super().__init__(**kwargs)
        self.node, self.new_name, self.step, self.dry_run = node, new_name, step, dry_run

    def execute(self, context) -> dict:
        pool, address, fs = self.node, self.node["address"], self.node["filesystem"]
        db = self.db()
        rows = db.named("pools.sql", "private_datasets", {"pool_id": pool["pool_id"]})
        nodes = self.nodes()
        try:
            listing = nodes.run(address, ["zfs", "list", "-H", "-r", "-o", "name", fs]).stdout.split("\n")
            in_zfs = {n for n in listing if n}
            in_db = {f"{fs}/{r['full_name']}": r for r in rows}
            stray = [n for n in in_zfs if n.rsplit("/", 1)[-1] == "private" and n not in in_db]
            if stray:
                self.log.warning("%s: %s has datasets named private that the database does not know; "
                                 "left alone: %s", self.step, fs, ", ".join(stray))
            changes, renames, updates = [], [], []
            for old, row in sorted(in_db.items()):
                new = f"{old.rsplit('/', 1)[0]}/{self.new_name}"
                if new in in_zfs and old in in_zfs:
                    raise AirflowFailException(f"{self.step}: both {old} and {new} exist on {pool['server_name']}")
                if old in in_zfs:
                    renames.append((old, new))
                    changes.append(f"{pool['server_name']}: zfs rename {old} {new}")
                full_name = f"{row['full_name'].rsplit('/', 1)[0]}/{self.new_name}" if "/" in row["full_name"] else self.new_name
                updates.append({"id": row["id"], "name": self.new_name, "full_name": full_name})
                changes.append(f"datasets {row['id']}: {row['full_name']} -> {full_name}")
            if not changes or self.dry_run:
                self.log.info("%s: %s", self.step, "\n".join(changes) or f"no dataset named private in {fs}")
                return step_record(self.step, self.dry_run, changes, False, node=pool["server_name"])
            for old, new in renames:
                nodes.run(address, ["zfs", "rename", old, new])
        except NodeCommandError as exc:
            raise _fail(self.step, exc) from exc
        finally:
            nodes.close()
        db.execute_in_transaction([(sql.statement("vpsadmin/pools.sql", "rename_dataset"), u) for u in updates])
        self.log.info("%s:\n%s", self.step, "\n".join(changes))
        return step_record(self.step, False, changes, True, node=pool["server_name"])


class NasUmountOperator(_VpsAdminOperator):
    """On one hypervisor, `umount -f` every mount (v2.0 `mounts`) of its VPSes that is
    mounted, as the runbook's script does before the NAS data moves; only while some NAS pool
    still has data to move (nas_move_data.sh --check), so a later run leaves the remounted
    mounts alone."""

    template_fields = ("node", "nas_pools", "dry_run")

    def __init__(self, *, node, nas_pools, step: str, dry_run=True, **kwargs):
        super().__init__(**kwargs)
        self.node, self.nas_pools, self.step, self.dry_run = node, nas_pools, step, dry_run

    def _data_to_move(self, nodes) -> list[str]:
        pending = []
        for pool in self.nas_pools:
            result = nodes.run_script(pool["address"], "nas_move_data.sh", ["--check", pool["filesystem"]],
                                      check=False)
            if result.exit_status not in (0, 10):
                raise NodeCommandError(result)
            if result.exit_status == 10:
                pending.append(f"{pool['server_name']}:{pool['filesystem']}")
        return pending

    def execute(self, context) -> dict:
        name, address = self.node["server_name"], self.node["address"]
        rows = self.db().named("nas.sql", "node_mounts", {"server_id": self.node["server_id"]})
        targets = [f"/vz/root/{int(r['vps_id'])}/{r['dst'].lstrip('/')}".rstrip("/") for r in rows]
        nodes = self.nodes()
        try:
            if not self._data_to_move(nodes):
                self.log.info("%s: every NAS dataset's data is in private/ already; mounts on %s stay",
                              self.step, name)
                return step_record(self.step, self.dry_run, [], False, node=name)
            table = nodes.run(address, ["mount"]).stdout
            mounted = {line.split(" on ", 1)[1].split(" type ", 1)[0] for line in table.splitlines() if " on " in line}
            todo = [t for t in targets if t in mounted]
            changes = [f"{name}: umount -f {t}" for t in todo]
            if not todo or self.dry_run:
                self.log.info("%s: %d mount(s) of VPSes on %s; %s", self.step, len(targets), name,
                              "\n".join(changes) or "none mounted")
                return step_record(self.step, self.dry_run, changes, False, node=name)
            for target in todo:
                nodes.run(address, ["umount", "-f", target])
        except NodeCommandError as exc:
            raise _fail(self.step, exc) from exc
        finally:
            nodes.close()
        self.log.info("%s: %d mounts, %d umounted on %s", self.step, len(targets), len(todo), name)
        return step_record(self.step, False, changes, True, node=name)


class IntegrityCheckOperator(_VpsAdminOperator):
    """Starts the integrity check through the API with both the storage and the VPS checks
    (plain `integrity_check new` checks nothing, research/vpsadmin.md §6), waits for it to
    finish, and summarises broken objects and false facts in the log and XCom. Fails when a
    high-severity fact is false, unless `allow_high` says to go on."""

    template_fields = ("allow_high", "dry_run")
    HIGH = 2

    def __init__(self, *, step: str, allow_high=False, dry_run=True, api_conn_id: str = VPSADMIN_API,
                 poll: float = 3, timeout: float = 3600, **kwargs):
        super().__init__(**kwargs)
        self.step, self.allow_high, self.dry_run = step, allow_high, dry_run
        self.api_conn_id, self.poll, self.timeout = api_conn_id, poll, timeout

    def execute(self, context) -> dict:
        from hooks.vpsadmin_api import VpsAdminApiError, VpsAdminApiHook

        if self.dry_run:
            change = "POST /v1/integrity_checks storage=true vps=true"
            self.log.info("%s: plan: %s", self.step, change)
            return step_record(self.step, True, [change], False)
        api = VpsAdminApiHook(self.api_conn_id)
        try:
            check_id = api.create_integrity_check(storage=True, vps=True)
            deadline = time.monotonic() + self.timeout
            while (check := api.integrity_check(check_id))["status"] == "pending":
                if time.monotonic() > deadline:
                    raise AirflowFailException(f"{self.step}: integrity check {check_id} still pending after "
                                               f"{self.timeout:.0f}s")
                self.log.info("%s: check %d: %s/%s objects checked", self.step, check_id,
                              check.get("checked_objects"), check.get("integral_objects"))
                time.sleep(self.poll)
            facts = api.integrity_facts(check_id, status=False)
        except VpsAdminApiError as exc:
            raise _fail(self.step, exc) from exc
        summary = {k: check.get(k) for k in ("status", "checked_objects", "integral_objects", "broken_objects",
                                             "checked_facts", "true_facts", "false_facts")}
        high = [f for f in facts if f.get("severity") in (self.HIGH, "high")]
        for fact in facts:
            self.log.info("false fact [%s] %s: %s expected %s, is %s %s", fact.get("severity"),
                          fact.get("object"), fact.get("name"), fact.get("expected_value"),
                          fact.get("actual_value"), fact.get("message") or "")
        self.log.info("%s: integrity check %d: %s", self.step, check_id, summary)
        record = step_record(self.step, False, [f"integrity check {check_id}"], True, check_id=check_id,
                             summary=summary, high_false_facts=len(high),
                             false_facts=[{k: f.get(k) for k in ("object", "name", "severity", "message")}
                                          for f in facts[:100]])
        if high and not self.allow_high:
            raise AirflowFailException(f"{self.step}: {len(high)} high-severity fact(s) are false in integrity "
                                       f"check {check_id} (set integrity_allow_high to go on):\n"
                                       + "\n".join(f"{f.get('object')}: {f.get('name')}: {f.get('message')}"
                                                   for f in high[:20]))
        return record


class SharenfsOperator(_VpsAdminOperator):
    """sharenfs of one pool allows every subnet of `settings['subnets']`, its other options kept."""

    template_fields = ("node", "settings", "dry_run")

    def __init__(self, *, node, settings, step: str, dry_run=True, **kwargs):
        super().__init__(**kwargs)
        self.node, self.settings, self.step, self.dry_run = node, settings, step, dry_run

    def execute(self, context) -> dict:
        name, address, fs = self.node["server_name"], self.node["address"], self.node["filesystem"]
        nodes = self.nodes()
        try:
            current = nodes.run(address, ["zfs", "get", "-H", "-o", "value", "sharenfs", fs]).stdout.strip()
            wanted = configs.sharenfs(current, self.settings["subnets"])
            if wanted == current:
                self.log.info("%s: %s:%s sharenfs=%s", self.step, name, fs, current)
                return step_record(self.step, self.dry_run, [], False, node=name)
            change = f"{name}: zfs set sharenfs={wanted} {fs}  (was {current})"
            if not self.dry_run:
                nodes.run(address, ["zfs", "set", f"sharenfs={wanted}", fs])
        except NodeCommandError as exc:
            raise _fail(self.step, exc) from exc
        finally:
            nodes.close()
        self.log.info("%s: %s%s", self.step, "plan: " if self.dry_run else "", change)
        return step_record(self.step, self.dry_run, [change], not self.dry_run, node=name)


class WebMountsOperator(_VpsAdminOperator):
    """On the web server (the API host), `<node>:/<pool>/vpsadmin/<subdataset>` of every pool
    NFS-mounted read-only at `<mountpoint>/<pool id>`, and listed in its /etc/fstab."""

    template_fields = ("settings", "pools", "mountpoint", "dry_run")

    def __init__(self, *, settings, pools, subdataset: str, mountpoint: str, step: str, dry_run=True, **kwargs):
        super().__init__(**kwargs)
        self.settings, self.pools, self.subdataset = settings, pools, subdataset
        self.mountpoint, self.step, self.dry_run = mountpoint, step, dry_run

    def execute(self, context) -> dict:
        host = self.settings["api_host"]
        nodes = self.nodes()
        changes = []
        try:
            table = nodes.run(host, ["mount"]).stdout
            fstab = nodes.run(host, "cat /etc/fstab 2>/dev/null || true").stdout
            mounted = {line.split(" on ", 1)[1].split(" type ", 1)[0] for line in table.splitlines() if " on " in line}
            for pool in self.pools:
                source = f"{pool['address']}:/{pool['filesystem']}/vpsadmin/{self.subdataset}"
                target = f"{self.mountpoint.rstrip('/')}/{int(pool['pool_id'])}"
                entry = f"{source} {target} nfs ro,vers=3,soft 0 0"
                if entry not in fstab.splitlines():
                    changes.append(f"{host}: /etc/fstab += {entry}")
                    if not self.dry_run:
                        nodes.run(host, "cat >> /etc/fstab", stdin=entry + "\n")
                if target not in mounted:
                    changes.append(f"{host}: mount -t nfs -o ro {source} {target}")
                    if not self.dry_run:
                        nodes.run(host, ["mkdir", "-p", target])
                        nodes.run(host, ["mount", "-t", "nfs", "-o", "ro,vers=3,soft", source, target])
        except NodeCommandError as exc:
            raise _fail(self.step, exc) from exc
        finally:
            nodes.close()
        self.log.info("%s: %s%s", self.step, "plan:\n" if self.dry_run and changes else "",
                      "\n".join(changes) or f"every pool's vpsadmin/{self.subdataset} is mounted")
        return step_record(self.step, self.dry_run, changes, bool(changes) and not self.dry_run)


class NasRemountOperator(_VpsAdminOperator):
    """The runbook's remount script as SQL: one transaction chain (named `nas_remount`) with,
    per VPS in (node, id) order, a 5301 Vps::Mounts (mount scripts and the mounts file) and,
    if it runs, a 5302 Mount; each VPS locked for the chain, each transaction after the
    previous. Fired once: a chain that is done is not fired again, one still open is waited
    for (its id is returned), a failed one is fired anew."""

    template_fields = ("dry_run",)
    DONE, FAILED_STATES = 2, (4, 5)

    def __init__(self, *, step: str, dry_run=True, **kwargs):
        super().__init__(**kwargs)
        self.step, self.dry_run = step, dry_run

    def execute(self, context) -> dict:
        db = self.db()
        previous = db.named("nas.sql", "remount_chain")
        if previous and previous[0]["state"] == self.DONE:
            self.log.info("%s: chain %s remounted everything already", self.step, previous[0]["id"])
            return step_record(self.step, self.dry_run, [], False, chain_id=None)
        if previous and previous[0]["state"] not in self.FAILED_STATES:
            self.log.info("%s: chain %s is still running; waiting for it", self.step, previous[0]["id"])
            return step_record(self.step, self.dry_run, [], False, chain_id=previous[0]["id"])
        transactions = self._plan(db)
        changes = [f"VPS {t['vps_id']} on node {t['server']}: {t['t_type']} ({len(json.loads(t['param'])['mounts'])} "
                   "mount(s))" for t in transactions]
        if self.dry_run:
            self.log.info("%s: plan: chain nas_remount:\n%s", self.step, "\n".join(changes))
            return step_record(self.step, True, changes, False, chain_id=None)
        locked = {r["row_id"] for r in db.named("nas.sql", "locked")} & {t["vps_id"] for t in transactions}
        if locked:
            raise AirflowFailException(f"{self.step}: VPSes locked by another chain: {sorted(locked)}")
        statements = sql.load("vpsadmin/nas.sql")
        with db.get_conn() as conn:
            cur = conn.cursor()
            cur.execute(statements["insert_chain"], {"size": len(transactions)})
            chain_id, previous_id = cur.lastrowid, None
            for vps_id in dict.fromkeys(t["vps_id"] for t in transactions):
                cur.execute(statements["lock_vps"], {"vps_id": vps_id, "chain_id": chain_id})
            for t in transactions:
                cur.execute(statements["insert_transaction"], {**t, "chain_id": chain_id, "depends_on": previous_id})
                previous_id = cur.lastrowid
            cur.execute(statements["queue_chain"], {"chain_id": chain_id})
            conn.commit()
        self.log.info("%s: chain %d with %d transaction(s) queued", self.step, chain_id, len(transactions))
        return step_record(self.step, False, changes, True, chain_id=chain_id)

    @staticmethod
    def _plan(db) -> list[dict]:
        by_vps: dict[int, list[dict]] = {}
        for m in db.named("nas.sql", "mounts"):
            local = m["pool_server"] == m["vps_server"]
            by_vps.setdefault(m["vps_id"], []).append({
                "id": m["id"], "type": "dataset_local" if local else "dataset_remote",
                "pool_fs": m["pool_fs"], "dataset_name": m["dataset_name"], "src_node_addr": m["src_node_addr"],
                "dst": m["dst"], "mount_opts": m["mount_opts"] or "", "umount_opts": m["umount_opts"] or "",
                "mode": m["mode"]})
        transactions = []
        for vps in db.named("nas.sql", "vpses"):
            mounts = by_vps.get(vps["vps_id"], [])
            param = json.dumps({"mounts": mounts})
            transactions.append({"server": vps["vps_server"], "vps_id": vps["vps_id"], "t_type": 5301, "param": param})
            if vps["running"]:
                transactions.append({"server": vps["vps_server"], "vps_id": vps["vps_id"], "t_type": 5302,
                                     "param": param})
        return transactions
