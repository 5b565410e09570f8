"""Preflight (not in the runbook): the trigger parameters checked and everything the run needs
reached before anything changes, the inventory from `servers`, the phase the cluster is in.
The full backup (step db.backup) is common.MysqlDumpOperator."""

from __future__ import annotations

import re
from collections.abc import Sequence

from airflow.sdk.bases.skipmixin import SkipMixin

from airlift.errors import StepError
from airlift.params import check_hostname, raise_if
from operators.runbook_step import plan_mode
from operators.vpsadmin_upgrade.common import VpsAdminStepOperator
from operators.vpsadmin_upgrade.db import FOUR_BYTE_REFUSAL, four_byte_text
from vpsadmin import inventory
from vpsadmin.params import check_abs_path, check_db_name, check_node_names, check_upgrade

DB_VERSION = 15  # sysconfig db_version of vpsAdmin v1.22
PINNED_VERSION = "20150630072821"  # the runbook's `rake db:migrate VERSION=...`
SHARENFS_TASK = "nodes.sharenfs"
RETIRED_PARAMS = {"require_approval": " (approval gates are a deployment setting now: [airlift] approval_gates, "
                                      "see plugins/airlift/settings.py)"}
UPGRADE_PARAMS = ("environments", "default_resources", "snapshot_download_base_url", "private_dataset_name",
                  "backup_timezone", "playground_environments", "sharenfs_subnets", "web_root",
                  "production_environment", "mount_proxy_dir", "download_mountpoint", "api_url")


class PreflightOperator(VpsAdminStepOperator):
    """Validates the trigger parameters and reaches the database, the API host and the DB host
    (backup directory, MySQL client tools) before anything changes. Returns the resolved
    settings the later steps use; pushes the API and DB hosts as nodes (XCom keys `api_node`,
    `db_node`) for the steps that run on one of them."""

    def __init__(self, **kwargs):
        kwargs.setdefault("script", "mysql/server-identity.sh")  # _check_dump_server runs it on the DB host
        super().__init__(**kwargs)

    def execute(self, context) -> dict:
        with self.step_errors():
            settings = self._settings({key: context["params"].get(key) for key in UPGRADE_PARAMS if
                                       key in context["params"]}, context)
        for key, host in (("api_node", settings["api_host"]), ("db_node", settings["db_host"])):
            context["ti"].xcom_push(key=key, value={"server_name": host, "address": host})
        self.log.info("preflight ok: %s", settings)
        return settings

    def _settings(self, upgrade: dict, context) -> dict:
        params = context["params"]
        api_host, db_host, backup_dir = params["api_host"], params["db_host"], params["backup_dir"]
        skip_nodes = params["skip_nodes"]
        errors = [f"{key}: not a parameter of this DAG" + (RETIRED_PARAMS.get(key, "")) for key in
                  sorted(set(params) - set(self.dag.params))]
        errors += check_abs_path("backup_dir", backup_dir) + check_node_names("skip_nodes", skip_nodes)
        for label, value in (("api_host", api_host), ("db_host", db_host)):
            if value:
                errors += check_hostname(label, value)
        errors += check_db_name("database of connection " + self.mysql_conn_id, self.db.database)
        try:  # a malformed vpsadmin_api connection is refused here, not at api.start after the database changed
            self.api  # noqa: B018 - building the hook checks the connection
        except StepError as exc:
            errors.append(str(exc))
        raise_if(errors)

        found = self.db.schema_version()
        if str(found) != str(DB_VERSION):
            raise_if([f"database {self.db.database} is not vpsAdmin v1.22 (sysconfig db_version {found!r}, "
                      f"expected {DB_VERSION})"])
        servers = self.db.servers()
        names = {n for s in servers for n in (s["server_name"], s["server_name"].split(".")[0])}
        raise_if([f"skip_nodes: no server named {n!r} in the servers table" for n in skip_nodes if n not in names]
                 + check_upgrade(upgrade, servers))

        api_host, db_host = api_host or self.nodes.default_host, db_host or self.db.host
        for label, address in (("api_host", api_host), ("db_host", db_host)):
            try:
                self.nodes.run(address, "true", timeout=30)
            except Exception as exc:  # refused, unknown host key, auth: all end the run here
                raise_if([f"cannot reach {label} {address} over SSH: {exc}"])
        if not self.nodes.run(db_host, ["test", "-d", backup_dir], check=False, timeout=30).ok:
            raise_if([f"backup_dir {backup_dir} does not exist on the DB host {db_host}"])
        tools = self.nodes.run(db_host, "command -v mysqldump mysql mysql_tzinfo_to_sql", check=False)
        if not tools.ok or len(tools.stdout.split()) < 3:
            raise_if([f"the DB host {db_host} lacks the MySQL client tools (mysqldump, mysql, mysql_tzinfo_to_sql)"])
        self._check_dump_server(db_host)
        skipped = [{"server_id": s["server_id"], "server_name": s["server_name"]} for s in servers
                   if s["server_name"] in skip_nodes or s["server_name"].split(".")[0] in skip_nodes]
        return {"api_host": api_host, "db_host": db_host, "database": self.db.database, "skipped_servers": skipped,
                "backup_dir": backup_dir.rstrip("/") or "/", **self._sharenfs(context, servers)}

    def _check_dump_server(self, db_host: str) -> None:
        """Dumps and restores run on the DB host with its ~/.my.cnf, which may name another
        server than connection vpsadmin_db: the backup would be of another database. The
        connection's session holds a lock with a name made for this check; the DB host's client
        must see that same session holding it."""
        with self.db.server_marker() as here:
            result = self.nodes.run_script(db_host, self.script, [here["lock"]], check=False, timeout=30)
        connection = f"{here['hostname']}:{here['port']} (server_id {here['server_id']})"
        if not result.ok:
            raise_if([f"the MySQL client on the DB host {db_host} reaches no server with its ~/.my.cnf (connection "
                      f"{self.mysql_conn_id} reaches {connection}): {result.tail(3)}"])
        fields = (result.stdout.strip().splitlines() or [""])[-1].split("\t")  # holder, hostname, port, server_id
        there = "{}:{} (server_id {})".format(*fields[1:]) if len(fields) == 4 else repr(result.stdout.strip())
        if fields[0] != str(here["connection_id"]):
            raise_if([f"the DB host {db_host}'s ~/.my.cnf reaches another MySQL server, {there}, than connection "
                      f"{self.mysql_conn_id}, {connection} (a lock held through the connection is not held there): "
                      "the dumps would not back up this database. Point both at the same server."])

    def _sharenfs(self, context, servers: list[dict]) -> dict:
        """The networks step nodes.sharenfs opens the pools to, and whether hypervisor pools too.
        There is no default: sharenfs gives them read-write access with no_root_squash, and no
        guess (such as each server's /24, which may hold customers' VPSes) is safe. A real run
        that shares pools refuses here without them; plan mode goes on and the step lists the
        refusal."""
        params = context["params"]
        subnets, hypervisor_pools = params.get("sharenfs_subnets") or [], bool(params.get("sharenfs_hypervisor_pools"))
        # primary and backup pools are on storage servers, hypervisor pools on nodes (migration
        # 20140927161700); a run without the step (a partial DAG) shares nothing
        types = ("storage", "node") if hypervisor_pools else ("storage",)
        sharing = sorted(s["server_name"] for s in servers if s["server_type"] in types)
        if not subnets and sharing and context["dag"].has_task(SHARENFS_TASK):
            problem = (f"sharenfs_subnets is empty: name the IPv4 networks (a.b.c.d/n) of the nodes that mount "
                       f"the pools of {', '.join(sharing)} over NFS")
            if not plan_mode(context):
                raise_if([problem])
            self.log.warning("%s (a real run stops here)", problem)
        return {"subnets": subnets, "sharenfs_hypervisor_pools": hypervisor_pools}


class InventoryOperator(VpsAdminStepOperator):
    """The nodes of the cluster, from the `servers` table, except `skip_nodes`. Each must answer
    over SSH and run vpsAdmind (or have it stopped by this upgrade's db.stop-daemons, which marks
    that on the node): a dead node would stop a real run halfway (queue waits that never drain,
    steps that cannot reach it). A real run fails here, before any change, naming every such
    node; plan mode lists them as refusals and goes on. Skip a dead node with `skip_nodes`."""

    STOPPED_MARK = "/var/lib/airlift/vpsadmind-stopped-by-upgrade"  # include/scripts/vpsadmin/db/stop-daemons.sh

    template_fields: Sequence[str] = ("skip_nodes",)

    def __init__(self, *, skip_nodes, **kwargs):
        super().__init__(**kwargs)
        self.skip_nodes = skip_nodes

    def execute(self, context) -> list[dict]:
        nodes, errors = [], []
        for s in self.db.servers():
            name = s["server_name"]
            if name in self.skip_nodes or name.split(".")[0] in self.skip_nodes:
                self.log.warning("skipping %s as asked (skip_nodes)", name)
                continue
            errors += check_hostname(f"servers.server_ip4 of {name}", s["server_ip4"])
            nodes.append({"server_id": s["server_id"], "server_name": name,
                          "server_type": s["server_type"], "address": s["server_ip4"]})
        with self.step_errors():
            raise_if(errors)
            refusals = [problem for node in nodes if (problem := self._unfit(node))]
            if refusals and not plan_mode(context):
                raise_if(refusals + ["(skip a dead node with skip_nodes)"])
        for problem in refusals:
            self.log.warning("refused (a real run stops here): %s", problem)
        self.log.info("%d node(s): %s", len(nodes), ", ".join(n["server_name"] for n in nodes))
        return nodes

    def _unfit(self, node: dict) -> str | None:
        """Why a node cannot take part, or None."""
        probe = f"service vpsadmind status >/dev/null 2>&1; echo $?; test -e {self.STOPPED_MARK} && echo marked || true"
        try:
            answer = self.nodes.run(node["address"], probe, timeout=30, check=False).stdout.split()
        except Exception as exc:  # refused, timed out, unknown host key, auth
            return f"{node['server_name']} ({node['address']}) does not answer over SSH: {exc}"
        if answer[:1] != ["0"] and "marked" not in answer:
            return (f"{node['server_name']}: vpsAdmind is not running (`service vpsadmind status` exited "
                    f"{answer[0] if answer else '?'}) and this upgrade did not stop it")
        return None


class UpgradePhaseOperator(VpsAdminStepOperator, SkipMixin):
    """Once the database is past migration 20150630072821 the v1.22 sections are done and
    must not run again (they would, e.g., stop the 2.0 daemons): their tasks (and the API
    shutdown) are skipped, their reports still run. A fresh v1.22 world goes on, unless its
    text holds what the encoding fix cannot (4-byte characters) or a NAS entry would collide
    with one already under its dataset's private/ (nas.move-data refuses to overwrite, hours
    into the upgrade): a real run stops here, before the first change, naming the rows and
    paths; plan mode lists them as refusals."""

    inherits_from_skipmixin = True
    # move-data.sh's refusal of a private/ that is a child dataset's mountpoint: storage.rename-
    # private renames that child before the move, so it is not one here.
    RENAMED_LATER = re.compile(r"is the mountpoint of dataset .* \(rename it first\)$")

    def __init__(self, *, v1_22_prefixes: Sequence[str], **kwargs):
        kwargs.setdefault("sql", "preflight/nas-roots.sql")
        kwargs.setdefault("script", "nas/move-data.sh")  # its --check, as nas.move_plan runs it
        super().__init__(**kwargs)
        self.v1_22_prefixes = tuple(v1_22_prefixes)

    def execute(self, context) -> dict:
        versions = self.db.migrations()
        migrated = PINNED_VERSION in versions
        if migrated:
            tasks = [t for t in context["dag"].tasks
                     if t.task_id.startswith(self.v1_22_prefixes) and not t.task_id.endswith(".report")]
            self.log.info("schema_migrations has %s: the v1.22 sections are done; skipping %d task(s)",
                          PINNED_VERSION, len(tasks))
            self.skip(ti=context["ti"], tasks=tasks)
        else:
            with self.step_errors():
                refusals = []
                four_byte = four_byte_text(self.db, self.db.database)
                if four_byte:
                    refusals.append(FOUR_BYTE_REFUSAL + "\n- ".join(four_byte))
                collisions = self._nas_collisions(context["params"].get("skip_nodes") or [])
                if collisions:
                    refusals.append("NAS entries that nas.move-data would move onto ones already under private/ "
                                    "(move or rename them first):\n- " + "\n- ".join(collisions))
                if refusals and not plan_mode(context):
                    raise StepError("\n".join(refusals))
            for refusal in refusals:
                self.log.warning("refused (a real run stops here): %s", refusal)
        return {"migrated": migrated, "latest": versions[-1] if versions else None}

    def _nas_collisions(self, skip_nodes: list[str]) -> list[str]:
        """move-data.sh --check on every NAS storage root not on a skipped node: its refusals
        (`<node>: <dataset>: <path> exists; ...`), but those the rename of `private` datasets
        clears first."""
        collisions = []
        for root in self.db.rows(self.statements["nas_roots"]):
            if root["server_name"] in skip_nodes or root["server_name"].split(".")[0] in skip_nodes:
                continue
            where = f"of storage_root {root['id']} (node {root['server_name']!r})"
            raise_if(inventory.check_address(f"servers.server_ip4 {where}", root["address"])
                     + inventory.check_filesystem(f"storage_root.root_dataset {where}", root["root_dataset"]))
            result = self.nodes.run_script(root["address"], self.script, ["--check", root["root_dataset"]],
                                           check=False)
            refused = [line.removeprefix("refused: ") for line in result.stderr.splitlines()
                       if line.startswith("refused: ")]
            if result.exit_status not in (0, 10) and not (result.exit_status == 1 and refused):
                raise StepError(f"{root['server_name']}: move-data.sh --check {root['root_dataset']} exited "
                                f"{result.exit_status}: {result.tail()}")
            collisions += [f"{root['server_name']}: {line}" for line in refused if not self.RENAMED_LATER.search(line)]
        return collisions
