"""vpsAdmind 1.22 for one lab node: executes that node's queued transactions.

Behaves as the 1.22 daemon does (shared facts: research/vpsadmin.md §1.3, §2): it runs only
while the node's `vpsadmind` service is running, waits for sysconfig db_version 15, polls
`transactions` when the table's UPDATE_TIME moves (the MyISAM-only trick that is why the
runbook stops every daemon before the InnoDB conversion), picks
`t_done = 0 AND t_server = <id>` rows whose dependency is done, highest priority first, and
writes the result with `t_done=1, t_success, t_output, t_real_start, t_end`.

Handlers act on the node: 5301 writes /etc/vz/conf/<veid>.mount/.umount, 5302/5303 mount and
unmount through the node's own tools inside its sandbox, 1001-1003 start/stop/restart the
container, 2008 and 9001 succeed.

This thread is the node's vpsAdmind whatever its version: once `git pull` brought the 2.0
checkout it runs vpsAdmind 2.0's loop (vpsadmind_v2_0.py) instead.
"""

from __future__ import annotations

import json
import logging
import shlex
import threading
import time
from pathlib import Path

from lab.vpsadmin.daemon import CommandFailed, NodeDaemon
from lab.vpsadmin.vpsadmind_v2_0 import VpsadmindV2_0, runs_v2_0

log = logging.getLogger(__name__)

DB_VERSION = "15"
CHECK_INTERVAL = 1.0
RESYNC_INTERVAL = 5.0  # the lab also re-reads the queue now and then, so a write landing in
                       # the same second as a poll (UPDATE_TIME has 1 s resolution) is not lost
COMMAND_DELAY = 0.3    # a real transaction takes a while; lets sensors watch the queue drain

QUEUE_SQL = """
SELECT t_id, t_vps, t_type, t_param, t_depends_on FROM transactions
WHERE t_done = 0 AND t_server = %s
  AND (t_depends_on IS NULL OR t_depends_on IN (SELECT t_id FROM (
        SELECT t_id FROM transactions WHERE t_done = 1) AS done))
ORDER BY t_priority DESC, t_id ASC
LIMIT 6
"""


def _words(options: str) -> str:
    """Mount options from the database as separate, quoted words (1.22 pasted them raw)."""
    return shlex.join(shlex.split(options or ""))


class VpsadmindV1_22(NodeDaemon, threading.Thread):
    """The daemon thread of one vpsAdmin server: 1.22's loop, or 2.0's (VpsadmindV2_0.tick)
    while the node's checkout is 2.0."""

    def __init__(self, node_root: Path, server_id: int, mysql_kwargs: dict, db_name: str,
                 stopping: threading.Event):
        threading.Thread.__init__(self, name=f"vpsadmind-{server_id}", daemon=True)
        NodeDaemon.__init__(self, node_root, server_id, mysql_kwargs, db_name)
        self.stopping = stopping

    # -- database ------------------------------------------------------------------------
    def query(self, sql: str, params=None) -> list[tuple]:
        cur = self.db().cursor()
        cur.execute(sql, params)
        return list(cur.fetchall() or [])

    # -- main loop -----------------------------------------------------------------------
    def run(self) -> None:
        # One daemon per server at a time: once `git pull` brought the 2.0 checkout, this
        # thread runs vpsAdmind 2.0's loop instead of the 1.22 one.
        v2_0 = VpsadmindV2_0(self.node_root, self.server_id, self.mysql_kwargs, self.db_name)
        last_change, last_poll = object(), 0.0
        while not self.stopping.wait(v2_0.check_interval() if v2_0.started_at else CHECK_INTERVAL):
            if not self.service_running():
                last_change = object()
                v2_0.shutdown()
                continue
            if runs_v2_0(self.node_root):
                try:
                    v2_0.tick()
                except Exception as exc:  # schema not there yet, world re-seeded: next round
                    log.debug("vpsadmind 2.0 %s: %s", self.server_id, exc)
                    v2_0.drop_connection()
                continue
            v2_0.shutdown()
            try:
                version = self.query("SELECT cfg_value FROM sysconfig WHERE cfg_name = 'db_version'")
                if not version or json.loads(version[0][0]) not in (15, DB_VERSION):
                    continue
                change = self.query(
                    "SELECT UNIX_TIMESTAMP(UPDATE_TIME) FROM information_schema.tables "
                    "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = 'transactions'", (self.db_name,))
                if change == last_change and time.monotonic() - last_poll < RESYNC_INTERVAL:
                    continue
                last_change, last_poll = change, time.monotonic()
                for row in self.query(QUEUE_SQL, (self.server_id,)):
                    if self.stopping.is_set() or not self.service_running():
                        break
                    self.execute(*row)
            except Exception as exc:  # database gone (world re-seeded), reconnect next round
                log.debug("vpsadmind %s: %s", self.server_id, exc)
                self.drop_connection()
        v2_0.shutdown()

    def execute(self, t_id, veid, t_type, t_param, depends_on) -> None:
        started = int(time.time())
        if depends_on is not None:
            dep = self.query("SELECT t_success FROM transactions WHERE t_id = %s", (depends_on,))
            if dep and dep[0][0] == 0:
                self.save(t_id, 0, {"error": "Dependency failed"}, started)
                return
        time.sleep(COMMAND_DELAY)
        params = json.loads(t_param) if t_param else {}
        try:
            status, output = self.handle(int(t_type), veid, params)
        except CommandFailed as e:
            status, output = 0, {"cmd": e.command, "exitstatus": e.status, "error": e.output}
        self.save(t_id, status, output, started)

    def save(self, t_id, status: int, output: dict, started: int) -> None:
        self.query(
            "UPDATE transactions SET t_done = 1, t_success = %s, t_output = %s, "
            "t_real_start = %s, t_end = %s WHERE t_id = %s",
            (status, json.dumps(output), started, int(time.time()), t_id))

    # -- handlers ------------------------------------------------------------------------
    def handle(self, t_type: int, veid, params: dict) -> tuple[int, dict]:
        ve_root = f"/vz/root/{veid}"
        if t_type == 5301:
            self.write_mount_scripts(veid, params.get("mounts", []))
        elif t_type == 5302:
            self.runscript(veid, params, "premount")
            self.sh(f"mkdir -p {shlex.quote(ve_root + '/' + params['dst'].lstrip('/'))}")
            self.sh(f"mount {_words(params['mount_opts'])} -o {shlex.quote(params['mode'])} "
                    f"{shlex.quote(params['src'])} {shlex.quote(ve_root + '/' + params['dst'].lstrip('/'))}")
            self.runscript(veid, params, "postmount")
        elif t_type == 5303:
            self.runscript(veid, params, "preumount")
            self.sh(f"umount {_words(params.get('umount_opts', ''))} "
                    f"{shlex.quote(ve_root + '/' + params['dst'].lstrip('/'))}")
            self.runscript(veid, params, "postumount")
        elif t_type in (1001, 1002, 1003):
            action = {1001: "start", 1002: "stop", 1003: "restart"}[t_type]
            self.sh(f"vzctl {action} {int(veid)}")
        elif t_type in (2008, 9001, 10001):
            pass
        else:
            return 0, {"error": f"Unsupported command {t_type}"}
        return 1, {}

    def runscript(self, veid, params: dict, script: str) -> None:
        if params.get(script):
            self.sh(params[script])

    def write_mount_scripts(self, veid, mounts: list[dict]) -> None:
        conf = self.node_root / "etc/vz/conf"
        conf.mkdir(parents=True, exist_ok=True)
        for suffix, text in zip(("mount", "umount"), mount_scripts(mounts), strict=False):
            path = conf / f"{int(veid)}.{suffix}"
            path.write_text(text)
            path.chmod(0o755)


def mount_scripts(mounts: list[dict]) -> tuple[str, str]:
    """The <veid>.mount and <veid>.umount scripts vpsAdmind 1.22 renders for these mounts."""
    head = "#!/bin/bash\n. /etc/vz/vz.conf\n. ${VE_CONFFILE}\n\n"
    mount_lines = [
        f'SRC="{m["src"]}"\nDST="{m["dst"]}"\n'
        "if [ ! -e ${VE_ROOT}${DST} ]; then mkdir -p ${VE_ROOT}${DST}; fi\n"
        f'mount {m["mount_opts"]} -o {m["mode"]} ${{SRC}} ${{VE_ROOT}}${{DST}}\n'
        for m in mounts]
    umount_lines = [f'umount {m.get("umount_opts", "")} ${{VE_ROOT}}{m["dst"]}\n' for m in reversed(mounts)]
    return (head + "".join(mount_lines) + "\nexit 0\n", head + "".join(umount_lines) + "\nexit 0\n")
