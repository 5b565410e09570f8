"""vpsAdmind 2.0 for one lab node: the daemon a node runs once `git pull` in /opt/vpsadmind
has brought the 2.0 checkout (VERSION 2.x and bin/vpsadmind) and `service vpsadmind` says
running.

Facts it follows: research/vpsadmin.md §7 (upstream vpsAdmind 650b4908, `lib/vpsadmind/
daemon.rb`, `command.rb`, `commands/**`). Compared with 1.22 (vpsadmind_v1_22.py) it
- reads /etc/vpsadmin/vpsadmind.yml from the node for `queues`, `mounts_dir`,
  `check_interval`, `status_interval` (IMPLICIT_CONFIG defaults for what is absent);
- polls every check_interval with no UPDATE_TIME trick and executes
  `t_done = 0 AND t_server = <id> AND chain state 1 (queued) AND (no dependency or the
  dependency done)`, one transaction per chain at a time, by priority then t_id;
- saves `t_done=1, t_success, t_output, started_at, finished_at`, moves the chain's progress,
  closes it as done (2) or failed (4) and deletes its resource_locks; a failure fails the
  chain's later transactions with {"error": "Dependency failed"};
- upserts servers_status (vpsadmin_version 2.0.0, daemon 0) every status_interval;
- answers vpsadmindctl on the node's /var/run/vpsadmind.sock (lib/vpsadmind/remote_control.rb).

- applies the chain's transaction_confirmations when it closes (Command#save,
  lib/vpsadmind/confirmations.rb): row_pks and attr_changes are YAML (as the API's `serialize`
  writes them); executed, a confirmation follows its own transaction's t_success (create ->
  confirmed = 1, just_create -> kept, edit_after -> UPDATE, edit_before -> kept, destroy and
  just_destroy -> DELETE, increment/decrement); reversed (failed transaction, or a rolled-back
  chain) create/just_create -> DELETE, edit_before -> the original values, destroy ->
  confirmed = 1;
- keeps going past a failed keep_going transaction (Mail::Send).

Simplifications (said here so nobody relies on them): transactions run one after another
(queues only shape `vpsadmindctl status`); a failed transaction's chain is failed at once,
without running its earlier transactions' rollback handlers. The chain's confirmations are
then run as upstream runs them once that rollback is over: all reversed when the failed
transaction was reversible, else each by its own transaction's result (an irreversible
failure is not rolled back upstream either).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import socketserver
import threading
import time
from pathlib import Path

from lab.vpsadmin import integrity
from lab.vpsadmin.daemon import CommandFailed, NodeDaemon, utc_now

log = logging.getLogger(__name__)

VERSION = "2.0.0"
DB_VERSION = 15
CONFIG_PATH = "etc/vpsadmin/vpsadmind.yml"
SOCKET_PATH = "var/run/vpsadmind.sock"
KERNEL = "2.6.32-042stab108.8"
EXIT_STOP, EXIT_RESTART = 100, 150

# lib/vpsadmind/config.rb IMPLICIT_CONFIG, the parts the lab daemon uses.
IMPLICIT_QUEUES = {
    "general": {"threads": 6, "urgent": 6, "start_delay": 0},
    "storage": {"threads": 2, "urgent": 2, "start_delay": 0},
    "network": {"threads": 1, "urgent": 0, "start_delay": 0},
    "vps": {"threads": 4, "urgent": 4, "start_delay": 0},
    "zfs_send": {"threads": 1, "urgent": 0, "start_delay": 4 * 60 * 60},
    "mail": {"threads": 2, "urgent": 2, "start_delay": 0},
}
IMPLICIT_VPSADMIN = {"check_interval": 1, "status_interval": 30,
                     "mounts_dir": "/var/vpsadmin/mounts"}

COMMAND_DELAY = 0.2  # a real transaction takes a while; lets sensors watch the queue drain
SPOOL_MAIL = "var/spool/lab-mail"


def runs_v2_0(node_root: Path) -> bool:
    """True once the node's /opt/vpsadmind checkout is vpsAdmind 2.x."""
    version = node_root / "opt/vpsadmind/VERSION"
    try:
        text = version.read_text().strip()
    except FileNotFoundError:
        return False
    return text.startswith("2.") and (node_root / "opt/vpsadmind/bin/vpsadmind").exists()


def _plain_keys(value):
    """The Ruby config has symbol keys (`:vpsadmin:`); YAML gives them as ':vpsadmin'."""
    if isinstance(value, dict):
        return {str(k).lstrip(":"): _plain_keys(v) for k, v in value.items()}
    return value


def load_config(node_root: Path) -> dict:
    """vpsadmind.yml of the node merged over the implicit config (only the keys used here)."""
    import yaml

    try:
        raw = _plain_keys(yaml.safe_load((node_root / CONFIG_PATH).read_text()) or {})
    except (FileNotFoundError, yaml.YAMLError):
        raw = {}
    vpsadmin = dict(IMPLICIT_VPSADMIN)
    vpsadmin.update({k: v for k, v in (raw.get("vpsadmin") or {}).items() if k != "queues"})
    queues = {name: dict(q) for name, q in IMPLICIT_QUEUES.items()}
    for name, q in ((raw.get("vpsadmin") or {}).get("queues") or {}).items():
        queues.setdefault(name, {"threads": 1, "urgent": 0, "start_delay": 0}).update(q or {})
    vpsadmin["queues"] = queues
    return {"vpsadmin": vpsadmin}


class HandlerError(Exception):
    """A handler raised something else (upstream saves `err.inspect` as the error)."""


class VpsadmindV2_0(NodeDaemon):
    """The 2.0 daemon of one server. The node's daemon thread (VpsadmindV1_22) calls
    `tick()` every check interval while the node runs 2.0, and `shutdown()` when it does not."""

    def __init__(self, node_root: Path, server_id: int, mysql_kwargs: dict, db_name: str):
        super().__init__(node_root, server_id, mysql_kwargs, db_name)
        self.started_at: float | None = None
        self.last_status = 0.0
        self.exit_status = 0           # EXIT_STOP / EXIT_RESTART once scheduled over the socket
        self.config = load_config(self.node_root)
        self.remote: RemoteControl | None = None
        self.lock = threading.Lock()   # the socket's commands and the loop share the DB

    # -- database ------------------------------------------------------------------------
    def rows(self, sql: str, params=None) -> list[dict]:
        import MySQLdb.cursors

        cur = self.db().cursor(MySQLdb.cursors.DictCursor)
        cur.execute(sql, params)
        return list(cur.fetchall() or [])

    def execute_sql(self, sql: str, params=None) -> int:
        cur = self.db().cursor()
        cur.execute(sql, params)
        return cur.lastrowid

    def columns(self, table: str) -> set[str]:
        return {r["Field"] for r in self.rows(f"SHOW COLUMNS FROM `{table}`")}

    # -- life cycle ----------------------------------------------------------------------
    def check_interval(self) -> float:
        return float(self.config["vpsadmin"].get("check_interval") or 1)

    def start(self) -> None:
        self.config = load_config(self.node_root)
        self.started_at = time.time()
        self.exit_status = 0
        self.last_status = 0.0
        if self.remote is None:
            self.remote = RemoteControl(self)
            self.remote.start()
        log.info("vpsadmind 2.0 on server %s started", self.server_id)

    def shutdown(self) -> None:
        if self.remote is not None:
            self.remote.stop()
            self.remote = None
        if self.started_at is not None:
            log.info("vpsadmind 2.0 on server %s stopped", self.server_id)
        self.started_at = None
        self.drop_connection()

    def tick(self) -> None:
        """One round of the daemon loop: status, then the queue."""
        if self.started_at is None:
            self.start()
        with self.lock:
            version = self.rows("SELECT cfg_value FROM sysconfig WHERE cfg_name = 'db_version'")
            if not version or str(version[0]["cfg_value"]).strip('"') != str(DB_VERSION):
                return
            if time.monotonic() - self.last_status >= float(self.config["vpsadmin"]["status_interval"]):
                self.update_status(kernel=self.last_status == 0.0)
                self.last_status = time.monotonic()
        while self.exit_status == 0:
            with self.lock:
                batch = self.select_commands()
            if not batch:
                break
            for row in batch:
                if self.exit_status or not self.service_running():
                    break
                self.run_command(row)
        if self.exit_status == EXIT_STOP:
            # The real daemon exits once its workers are done; its init script's state goes
            # with it.
            self.shutdown()
            (self.node_root / "var/lib/lab/services/vpsadmind").write_text("stopped\n")
        elif self.exit_status == EXIT_RESTART:
            self.shutdown()
            self.start()

    def update_status(self, kernel: bool = False) -> None:
        """Daemon#update_status: the servers_status row 2.0 keeps per server."""
        now = utc_now()
        load = round(os.getloadavg()[1], 2)
        cols = self.columns("servers_status")
        time_col, time_val = ("created_at", now) if "created_at" in cols else ("timestamp", int(time.time()))
        self.execute_sql(
            f"INSERT INTO servers_status SET server_id = %s, {time_col} = %s, cpu_load = %s, "
            "daemon = 0, vpsadmin_version = %s, kernel = %s "
            f"ON DUPLICATE KEY UPDATE {time_col} = %s, cpu_load = %s, daemon = 0, "
            "vpsadmin_version = %s",
            (self.server_id, time_val, load, VERSION, KERNEL, time_val, load, VERSION))
        if kernel:
            self.execute_sql("UPDATE servers_status SET kernel = %s WHERE server_id = %s",
                             (KERNEL, self.server_id))

    # -- the queue -----------------------------------------------------------------------
    def select_commands(self) -> list[dict]:
        """Daemon#select_commands, execution half: per chain, its first runnable transaction."""
        rows = self.rows(
            """
            SELECT t.*, ch.state AS chain_state, ch.progress AS chain_progress,
                   ch.size AS chain_size
            FROM transactions t
            INNER JOIN transaction_chains ch ON ch.id = t.transaction_chain_id
            LEFT JOIN transactions d ON d.t_id = t.t_depends_on
            WHERE t.t_done = 0 AND t.t_server = %s AND ch.state = 1
              AND (t.t_depends_on IS NULL OR d.t_done = 1)
            ORDER BY t.t_priority DESC, t.t_id ASC""", (self.server_id,))
        chosen, seen = [], set()
        for row in rows:
            if row["transaction_chain_id"] not in seen:
                seen.add(row["transaction_chain_id"])
                chosen.append(row)
        return chosen

    def run_command(self, trans: dict) -> None:
        started = utc_now()
        time.sleep(COMMAND_DELAY)
        output: dict = {}
        try:
            params = json.loads(trans["t_param"] or "{}")
        except ValueError:
            status, output = 0, {"error": "Bad param syntax"}
        else:
            try:
                status, output = self.handle(int(trans["t_type"]), trans, params)
            except CommandFailed as e:
                status, output = 0, {"cmd": e.command, "exitstatus": e.status, "error": e.output}
            except Exception as e:  # upstream: @output[:error] = err.inspect
                log.exception("transaction %s", trans["t_id"])
                status, output = 0, {"error": f"#<{type(e).__name__}: {e}>"}
        with self.lock:
            self.save(trans, status, output, started, utc_now())

    def save(self, trans: dict, status: int, output: dict, started: str, finished: str) -> None:
        """Command#save: the transaction, then the chain (inside one DB transaction)."""
        chain_id, t_id = trans["transaction_chain_id"], trans["t_id"]
        reversible = int(trans.get("reversible") if trans.get("reversible") is not None else 1)
        with self.transaction():
            self.execute_sql(
                "UPDATE transactions SET t_done = 1, t_success = %s, t_output = %s, "
                "started_at = %s, finished_at = %s WHERE t_id = %s",
                (status, json.dumps(output), started, finished, t_id))
            if status != 0 or reversible == 2:  # done, or failed but keep_going
                if int(trans["chain_size"]) == int(trans["chain_progress"]) + 1:
                    self.run_confirmations(chain_id, "execute")
                    self.close_chain(chain_id, 2 if status != 0 else 4, progress="`progress` + 1")
                else:
                    self.execute_sql("UPDATE transaction_chains SET `progress` = `progress` + 1 "
                                     "WHERE id = %s", (chain_id,))
            else:
                self.execute_sql(
                    "UPDATE transactions SET t_done = 1, t_success = 0, t_output = %s "
                    "WHERE transaction_chain_id = %s AND t_id > %s",
                    (json.dumps({"error": "Dependency failed"}), chain_id, t_id))
                self.run_confirmations(chain_id, "rollback" if reversible == 1 else "execute")
                self.close_chain(chain_id, 4, progress="0")

    # Confirmations#run / #confirm ----------------------------------------------------------
    def run_confirmations(self, chain_id: int, direction: str) -> None:
        rows = self.rows(
            "SELECT c.table_name, c.row_pks, c.attr_changes, c.confirm_type, t.t_success "
            "FROM transactions t INNER JOIN transaction_confirmations c ON t.t_id = c.transaction_id "
            "WHERE t.transaction_chain_id = %s AND c.done = 0 ORDER BY c.id", (chain_id,))
        for row in rows:
            self.confirm(row, direction)
        self.execute_sql(
            "UPDATE transaction_confirmations c INNER JOIN transactions t ON t.t_id = c.transaction_id "
            "SET c.done = 1 WHERE t.transaction_chain_id = %s AND c.done = 0", (chain_id,))

    def confirm(self, row: dict, direction: str) -> None:
        success = int(row["t_success"]) > 0 and direction == "execute"
        table = "`" + str(row["table_name"]).replace("`", "") + "`"
        pks = confirmation_value(row["row_pks"]) or {}
        where = " AND ".join(f"`{k}` = %s" for k in pks)
        keys = [sql_value(v) for v in pks.values()]
        kind = int(row["confirm_type"])

        def update(attrs: dict) -> None:
            sets = ", ".join(f"`{k}` = %s" for k in attrs)
            self.execute_sql(f"UPDATE {table} SET {sets} WHERE {where}",
                             [sql_value(v) for v in attrs.values()] + keys)
        if kind == 0:  # create
            if success:
                self.execute_sql(f"UPDATE {table} SET confirmed = 1 WHERE {where}", keys)
            else:
                self.execute_sql(f"DELETE FROM {table} WHERE {where}", keys)
        elif kind == 1:  # just_create
            if not success:
                self.execute_sql(f"DELETE FROM {table} WHERE {where}", keys)
        elif kind == 2:  # edit_before
            if not success:
                update(confirmation_value(row["attr_changes"]) or {})
        elif kind == 3:  # edit_after
            if success:
                update(confirmation_value(row["attr_changes"]) or {})
        elif kind == 4:  # destroy
            if success:
                self.execute_sql(f"DELETE FROM {table} WHERE {where}", keys)
            else:
                self.execute_sql(f"UPDATE {table} SET confirmed = 1 WHERE {where}", keys)
        elif kind == 5:  # just_destroy
            if success:
                self.execute_sql(f"DELETE FROM {table} WHERE {where}", keys)
        elif kind in (6, 7) and success:  # decrement, increment
            attr = "`" + str(confirmation_value(row["attr_changes"])).replace("`", "") + "`"
            self.execute_sql(f"UPDATE {table} SET {attr} = {attr} {'-' if kind == 6 else '+'} 1 "
                             f"WHERE {where}", keys)

    def close_chain(self, chain_id: int, state: int, progress: str) -> None:
        self.execute_sql(f"UPDATE transaction_chains SET `state` = %s, `progress` = {progress} "
                         "WHERE id = %s", (state, chain_id))
        self.execute_sql("DELETE FROM resource_locks WHERE transaction_chain_id = %s", (chain_id,))
        if "port_reservations" in {r[f"Tables_in_{self.db_name}"] for r in self.rows("SHOW TABLES")}:
            self.execute_sql("UPDATE port_reservations SET transaction_chain_id = NULL, addr = NULL "
                             "WHERE transaction_chain_id = %s", (chain_id,))

    # -- handlers ------------------------------------------------------------------------
    def handle(self, t_type: int, trans: dict, params: dict) -> tuple[int, dict]:
        veid = trans["t_vps"]
        if t_type == 5301:
            self.write_mounts(int(veid), params["mounts"])
        elif t_type == 5302:
            if self.vps_running(int(veid)):
                for mnt in params["mounts"]:
                    self.mount(int(veid), mnt)
        elif t_type == 5303:
            if self.vps_running(int(veid)):
                for mnt in params["mounts"]:
                    self.umount(int(veid), mnt)
        elif t_type == 1001:  # Vps#start: vzctl start (32: already running is fine)
            self.try_harder(lambda: self.sh_rc(f"vzctl start {int(veid)}", (32,)))
            self.update_vps_status(int(veid))
        elif t_type == 1002:  # Vps#stop
            self.try_harder(lambda: self.sh(f"vzctl stop {int(veid)}"))
            self.update_vps_status(int(veid))
        elif t_type == 1003:
            self.sh(f"vzctl restart {int(veid)}")
            self.update_vps_status(int(veid))
        elif t_type == 2007:
            self.ip_del(int(veid), params)
        elif t_type == 3002:
            self.destroy_vps(int(veid))
        elif t_type == 5005:
            self.remove_download(params)
        elif t_type == 5203:  # Dataset#destroy(pool_fs, name, false)
            self.sh(f"zfs destroy  {params['pool_fs']}/{params['name']}")
        elif t_type == 5207:
            self.sh(f"zfs destroy  {params['pool_fs']}/{params['dataset_name']}/{params['tree']}/"
                    f"{params['branch']}")
        elif t_type == 5212:
            self.destroy_snapshot(params)
        elif t_type == 5214:
            self.sh(f"zfs destroy  {params['pool_fs']}/{params['dataset_name']}/{params['tree']}")
        elif t_type == 5218:
            self.sh(f"zfs destroy  {params['pool_fs']}/vpsadmin/mount/{params['snapshot_id']}.snapshot")
        elif t_type == 9001:
            self.spool_mail(params)
        elif t_type == 10001:
            pass
        elif t_type == 6005:
            integrity.check_storage(self, params)
        elif t_type == 6006:
            integrity.check_vps(self, params)
        elif t_type == 6001:
            integrity.finalize(self, params)
        else:
            return 0, {"error": "Unsupported command"}
        return 1, {}

    def sh_rc(self, command: str, valid_rcs: tuple[int, ...] = ()) -> str:
        """syscmd with valid exit codes besides 0."""
        try:
            return self.sh(command)
        except CommandFailed as e:
            if e.status in valid_rcs:
                return e.output
            raise

    @staticmethod
    def try_harder(action, attempts: int = 3, pause: float = 5):
        """Utils::System#try_harder: a failing command is tried three times, 5 s apart."""
        for attempt in range(attempts):
            try:
                return action()
            except CommandFailed:
                if attempt == attempts - 1:
                    raise
                time.sleep(pause)

    def update_vps_status(self, veid: int) -> None:
        """Commands::Vps::Stop#post_save (Vps#update_status): the container's vps_status row."""
        running = self.vps_running(veid)
        now = utc_now()
        with self.lock:
            self.execute_sql(
                "INSERT INTO vps_status (vps_id, created_at, vps_up, vps_nproc, vps_admin_ver) "
                "VALUES (%s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE created_at = %s, vps_up = %s, "
                "vps_nproc = %s, vps_admin_ver = %s",
                (veid, now, int(running), 23 if running else 0, VERSION,
                 now, int(running), 23 if running else 0, VERSION))

    # 3002 Vps::Destroy --------------------------------------------------------------------
    def destroy_vps(self, veid: int) -> None:
        """rmdir of the container's root, its configs and mounts file renamed *.destroyed.

        The lab keeps a container's mount points (and its NFS mounts in the mount table) under
        /vz/root/<veid> on the node itself, where OpenVZ mounts the container's root on start
        and unmounts it (its mounts with it) on stop: for a stopped container the lab first
        clears what that stop would have left unmounted, so that rmdir meets the empty
        directory it meets upstream."""
        root = f"/vz/root/{veid}"
        if not self.vps_running(veid):
            mtab = self.node_file("/var/lib/lab/mounts")
            targets = []
            if mtab.exists():
                for line in mtab.read_text().splitlines():
                    fields = line.split("\t")
                    if len(fields) > 1 and fields[1].startswith(root + "/"):
                        targets.append(fields[1])
            for target in sorted(targets, key=len, reverse=True):
                self.sh(f"umount {shlex.quote(target)}")
            if self.node_file(root).is_dir():
                self.sh(f"find {shlex.quote(root)} -mindepth 1 -depth -type d -empty -delete")
        self.sh(f"rmdir {root}")
        for ext in ("mount", "umount", "conf"):
            cfg = f"/etc/vz/conf/{veid}.{ext}"
            if self.node_file(cfg).exists():
                self.sh(f"mv {cfg} {cfg}.destroyed")
        mounts_path = f"{self.config['vpsadmin']['mounts_dir'].rstrip('/')}/{veid}.mounts"
        if self.node_file(mounts_path).exists():
            self.sh(f"mv {mounts_path} {mounts_path}.destroyed")

    # 2007 Vps::IpDel ----------------------------------------------------------------------
    def ip_del(self, veid: int, params: dict) -> None:
        """Vps#ip_del: the address's accounting rules go (Firewall#unreg_ip) and the container
        forgets it. The lab's vzctl has no `set`: the config's IP_ADDRESS is edited as
        `vzctl set <veid> --ipdel <addr> --save` would."""
        addr = params["addr"]
        if params.get("unregister"):
            name = "accounting" if int(params.get("version") or 4) == 4 else "accounting6"
            chain = self.node_root / "var/lib/lab/iptables" / name
            if chain.exists():
                rules = [r for r in chain.read_text().splitlines()
                         if f" -s {addr} " not in r and f" -d {addr} " not in r]
                chain.write_text("\n".join(rules) + "\n")
        conf = self.node_file(f"/etc/vz/conf/{veid}.conf")
        if not conf.exists():
            raise CommandFailed(f"vzctl set {veid} --ipdel {addr} --save", 44,
                                "Container config file does not exist")
        text = conf.read_text()
        found = re.search(r'^IP_ADDRESS="([^"]*)"', text, re.MULTILINE)
        if found:
            kept = " ".join(a for a in found.group(1).split() if a != addr)
            text = text[:found.start(1)] + kept + text[found.end(1):]
            conf.write_text(text)

    # 5005 Dataset::RemoveDownload ----------------------------------------------------------
    def remove_download(self, params: dict) -> None:
        secret_dir = f"/{params['pool_fs']}/vpsadmin/download/{params['secret_key']}"
        path = f"{secret_dir}/{params['file_name']}"
        if self.node_file(path).exists():
            self.sh(f"rm -f {shlex.quote(path)}")
        if not self.node_file(secret_dir).exists():
            # upstream's exec then returns nil: "did not return expected value"
            raise CommandFailed("process handler return value", 1,
                                "VpsAdmind::Commands::Dataset::RemoveDownload did not return expected value")
        self.sh(f"rmdir {shlex.quote(secret_dir)}")

    # 5212 Dataset::DestroySnapshot ---------------------------------------------------------
    def destroy_snapshot(self, params: dict) -> None:
        snapshot = params["snapshot"]
        if snapshot.get("confirmed") == 1:
            name = snapshot["name"]
        else:  # the API sends the enum's name, so upstream always asks the database
            with self.lock:
                rows = self.rows("SELECT name FROM snapshots WHERE id = %s", (snapshot["id"],))
            if not rows:
                raise HandlerError("undefined method `[]' for nil:NilClass")
            name = rows[0]["name"]
        if params.get("branch"):
            self.sh(f"zfs destroy  {params['pool_fs']}/{params['dataset_name']}/{params['tree']}/"
                    f"{params['branch']}@{name}")
        else:
            self.sh(f"zfs destroy  {params['pool_fs']}/{params['dataset_name']}@{name}")

    def ve_private(self, veid: int) -> str:
        """Utils::Vps#ve_private: servers.ve_private with %{veid} filled in."""
        rows = self.rows("SELECT ve_private FROM servers WHERE server_id = %s", (self.server_id,))
        template = (rows[0]["ve_private"] if rows else None) or "/vz/private/%{veid}"
        return template.replace("%{veid}", str(veid))

    def vps_running(self, veid: int) -> bool:
        """Utils::Vps#status: the third word of `vzctl status`."""
        words = self.sh(f"vzctl status {veid}").split()
        return len(words) > 4 and words[4] == "running"

    # 5301 Vps::Mounts -----------------------------------------------------------------
    def write_mounts(self, veid: int, mounts: list[dict]) -> None:
        conf = f"/etc/vz/conf/{veid}"
        mounts_path = f"{self.config['vpsadmin']['mounts_dir'].rstrip('/')}/{veid}.mounts"
        for path in (f"{conf}.mount", f"{conf}.umount", mounts_path):
            if self.node_file(path).exists():
                self.sh(f"cp -p {shlex.quote(path)} {shlex.quote(path + '.backup')}")
                self.node_file(path).unlink()
        for action in ("mount", "umount"):
            self.write_node_file(f"{conf}.{action}.new", action_script(action, veid, mounts_path))
            self.sh(f"chmod +x {shlex.quote(conf + '.' + action + '.new')}")
        new_mounts = self.node_file(mounts_path + ".new")
        if not new_mounts.parent.is_dir():  # File.open(..., 'w') in a missing directory
            raise HandlerError(f"No such file or directory @ rb_sysopen - {mounts_path}.new")
        new_mounts.write_text(f"MOUNTS = {ruby_inspect(mounts)}\n")
        os.replace(new_mounts, self.node_file(mounts_path))
        for action in ("mount", "umount"):
            os.replace(self.node_file(f"{conf}.{action}.new"), self.node_file(f"{conf}.{action}"))

    def node_file(self, path: str) -> Path:
        return self.node_root / path.lstrip("/")

    def write_node_file(self, path: str, text: str) -> None:
        target = self.node_file(path)
        if not target.parent.is_dir():
            raise HandlerError(f"No such file or directory @ rb_sysopen - {path}")
        target.write_text(text)

    # 5302 / 5303: Mounter#mount_cmd, #umount_cmd (oneshot: a failure fails the transaction)
    def mount(self, veid: int, mnt: dict) -> None:
        dst = f"/vz/root/{veid}/{mnt['dst']}"
        if mnt["type"] == "dataset_local":
            src = f"/{mnt['pool_fs']}/{mnt['dataset_name']}/private"
        elif mnt["type"] == "dataset_remote":
            src = f"{mnt['src_node_addr']}:/{mnt['pool_fs']}/{mnt['dataset_name']}/private"
        elif mnt["type"] == "snapshot_local":
            src = None
            cmd = f"mount -t zfs {mnt['pool_fs']}/{mnt['dataset_name']}@{mnt['snapshot']} {dst}"
        else:
            raise HandlerError(f"unknown mount type '{mnt['type']}'")
        if src is not None:
            cmd = f"mount {mnt.get('mount_opts') or ''} -o{mnt['mode']} {src} {dst}"
        self.sh(f"mkdir -p {shlex.quote(dst)}")
        try:
            self.sh(cmd)
        except CommandFailed as e:
            if "is busy or already mounted" not in e.output:
                raise
            log.info("server %s: %s already mounted", self.server_id, dst)

    def umount(self, veid: int, mnt: dict) -> None:
        dst = f"/vz/root/{veid}/{mnt['dst']}"
        if not self.node_file(dst).exists():
            return
        try:
            self.sh(f"umount {mnt.get('umount_opts') or ''} {dst}")
        except CommandFailed as e:
            # upstream lets `rc == 1, not mounted` pass; the lab's umount says it with 32
            if e.status not in (1, 32) or "not mounted" not in e.output:
                raise

    # 9001 Mail::Send ------------------------------------------------------------------
    def spool_mail(self, params: dict) -> None:
        if not (params.get("text_plain") or params.get("text_html")):
            raise HandlerError("Message body missing")
        headers = [("From", params.get("from")), ("To", params.get("to")), ("Cc", params.get("cc")),
                   ("Bcc", params.get("bcc")), ("Reply-To", params.get("reply_to")),
                   ("Return-Path", params.get("return_path")),
                   ("Message-ID", params.get("message_id")), ("Subject", params.get("subject")),
                   ("X-Mailer", "vpsAdmin")]
        lines = [f"From vpsadmin {time.strftime('%a %b %d %H:%M:%S %Y')}"]
        for name, value in headers:
            if value:
                lines.append(f"{name}: {', '.join(value) if isinstance(value, list) else value}")
        body = params.get("text_plain") or params.get("text_html")
        # mboxrd: a body line starting with (>*)From gets one more '>'
        body = re.sub(r"^(>*From )", r">\1", body.rstrip("\n"), flags=re.MULTILINE)
        text = "\n".join(lines) + "\n\n" + body + "\n\n"
        spool = self.node_root / SPOOL_MAIL
        spool.parent.mkdir(parents=True, exist_ok=True)
        with open(spool, "a") as f:
            f.write(text)

    # -- what vpsadmindctl asks ----------------------------------------------------------
    def remote_command(self, command: str, params: dict) -> dict:
        """RemoteControl handlers: {'status': 'ok', 'response': ...} or failed + error."""
        if command == "ping":
            return {"status": "ok", "response": {"pong": "pong"}}
        if command == "status":
            return {"status": "ok", "response": self.status()}
        if command in ("stop", "restart"):
            self.exit_status = EXIT_STOP if command == "stop" else EXIT_RESTART
            return {"status": "ok", "response": None}
        if command in ("reinit", "init", "flush"):
            result = {}
            for resource in params.get("resources") or []:
                if resource == "fw":
                    with self.lock:
                        result["fw"] = firewall(self, command)
                elif resource == "shaper":
                    result["shaper"] = True
            return {"status": "ok", "response": result}
        return {"status": "failed", "error": "Unsupported command"}

    def status(self) -> dict:
        with self.lock:
            queue_size = self.rows("SELECT COUNT(t_id) AS cnt FROM transactions "
                                   "WHERE t_server = %s AND t_done = 0", (self.server_id,))[0]["cnt"]
        started = self.started_at or time.time()
        queues = {name: {"threads": q["threads"], "urgent": q["urgent"],
                         "start_delay": q["start_delay"],
                         "started": time.time() >= started + q["start_delay"], "workers": {}}
                  for name, q in self.config["vpsadmin"]["queues"].items()}
        return {"state": {"run": self.exit_status == 0, "pause": None, "status": self.exit_status},
                "queues": queues, "export_console": False, "consoles": {}, "subprocesses": {},
                "delayed_mounts": {}, "start_time": int(started), "queue_size": int(queue_size)}


def firewall(daemon: VpsadmindV2_0, command: str) -> dict:
    """Firewall#reinit/#init/#flush on the node's accounting chain, kept as iptables rule
    lines in /var/lib/lab/iptables/accounting (IPv4) and accounting6 (IPv6).
    Returns {version: number of addresses} as upstream (ctl prints it as "N rules")."""
    state = daemon.node_root / "var/lib/lab/iptables"
    state.mkdir(parents=True, exist_ok=True)
    result = {}
    for version, name in ((4, "accounting"), (6, "accounting6")):
        chain = state / name
        if command in ("reinit", "flush"):
            chain.unlink(missing_ok=True)  # cleanup: -F accounting, -D FORWARD, -X accounting
        if command == "flush" or (command == "init" and chain.exists()):
            continue
        ips = [r["ip_addr"] for r in daemon.rows(
            "SELECT ip_addr FROM vps_ip, vps WHERE vps_server = %s AND vps_ip.vps_id = vps.vps_id "
            "AND ip_v = %s", (daemon.server_id, version))]
        rules = ["-N accounting", "-A FORWARD -j accounting"]
        for ip in ips:
            for proto in ("tcp", "udp", "all"):
                rules.append(f"-A accounting -s {ip} -p {proto} -j ACCEPT")
                rules.append(f"-A accounting -d {ip} -p {proto} -j ACCEPT")
        chain.write_text("\n".join(rules) + "\n")
        result[str(version)] = len(ips)
    return result


def action_script(action: str, veid: int, mounts_path: str) -> str:
    """templates/ve_mount.erb and ve_umount.erb of vpsAdmind 2.0, rendered."""
    call = ("VpsAdmind::Mounter.mount_all(VEID, MOUNTS, false)" if action == "mount"
            else "VpsAdmind::Mounter.umount_all(VEID, MOUNTS.reverse)")
    return (f'#!/usr/bin/env ruby\nENV[\'CONFIG\'] = "/{CONFIG_PATH}"\n'
            "require '/opt/vpsadmind/lib/vpsadmind/standalone'\n\n"
            f"VEID = {veid}\nload '{mounts_path}'\n\n"
            'puts "Executing #{$0}"\n' f"{call}\n\nexit(0)\n")


def ruby_inspect(value) -> str:
    """Ruby's inspect of parsed JSON (what `PP.pp` writes into <veid>.mounts)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{ruby_inspect(k)}=>{ruby_inspect(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",\n ".join(ruby_inspect(v) for v in value) + "]"
    if value is None:
        return "nil"
    if value is True or value is False:
        return str(value).lower()
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("#{", "\\#{")
    return str(value)


class RemoteControl:
    """The daemon's Unix socket (RemoteControl): greets with {"version"}, reads one JSON line
    {"command", "params"}, answers one JSON line."""

    def __init__(self, daemon: VpsadmindV2_0):
        self.daemon = daemon
        self.path = daemon.node_root / SOCKET_PATH
        self.server = None

    def start(self) -> None:
        daemon = self.daemon

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                self.wfile.write((json.dumps({"version": VERSION}) + "\n").encode())
                line = self.rfile.readline()
                try:
                    request = json.loads(line)
                    command = str(request["command"])
                except (ValueError, KeyError, TypeError):
                    reply = {"status": "failed", "error": "Syntax error"}
                else:
                    try:
                        reply = daemon.remote_command(command, request.get("params") or {})
                    except CommandFailed as e:
                        reply = {"status": "failed", "error": {"cmd": e.command,
                                 "exitstatus": e.status, "error": e.output}}
                self.wfile.write((json.dumps(reply) + "\n").encode())

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.unlink(missing_ok=True)
        # Bound through the directory's descriptor: an AF_UNIX path has at most 107 bytes, and
        # a node's directory under a test's temporary path can be longer than that.
        directory = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            self.server = socketserver.ThreadingUnixStreamServer(f"/proc/self/fd/{directory}/{self.path.name}",
                                                                 Handler)
        finally:
            os.close(directory)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, name=f"vpsadmind-sock-{daemon.server_id}",
                         daemon=True).start()

    def stop(self) -> None:
        # The socket file stays, as after the real daemon exits: a client then gets
        # "Connection refused".
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def confirmation_value(text):
    """A row_pks / attr_changes value as the API serialized it (YAML; symbol keys `:name`
    become plain names, times UTC)."""
    import yaml

    if text is None:
        return None
    value = yaml.safe_load(text)
    if isinstance(value, dict):
        return {str(k).lstrip(":"): v for k, v in value.items()}
    if isinstance(value, str):
        return value.lstrip(":")
    return value


def sql_value(value):
    """Confirmations#sql_val, as a query parameter: times in UTC."""
    import datetime as dt

    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if value is True or value is False:
        return int(value)
    return value
