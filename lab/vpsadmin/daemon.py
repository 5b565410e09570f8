"""What the lab's vpsAdmind 1.22 (vpsadmind_v1_22.py) and 2.0 (vpsadmind_v2_0.py) share: the
node and server a daemon serves, its database connection, its `service vpsadmind` state and
the node commands its transaction handlers run.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from pathlib import Path

from lab.core.nodes import run_in_node


def utc_now() -> str:
    """Now as vpsAdmin 2.0 writes its DATETIME columns (UTC)."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


class CommandFailed(Exception):
    """A node command failed: a transaction saves it as vpsAdmind does, {cmd, exitstatus, error}."""

    def __init__(self, command: str, status: int, output: str):
        super().__init__(f"command '{command}' exited with code '{status}', output: '{output}'")
        self.command, self.status, self.output = command, status, output


class NodeDaemon:
    """The vpsAdmind of one server (a `servers` row) on its lab node."""

    def __init__(self, node_root: Path, server_id: int, mysql_kwargs: dict, db_name: str):
        self.node_root, self.server_id = Path(node_root), server_id
        self.mysql_kwargs, self.db_name = mysql_kwargs, db_name
        self.conn = None

    def service_running(self) -> bool:
        """The node's `service vpsadmind` state (initscripts' simulator keeps it)."""
        state = self.node_root / "var/lib/lab/services/vpsadmind"
        return state.exists() and state.read_text().strip() == "running"

    # -- database ------------------------------------------------------------------------
    def db(self):
        if self.conn is None:
            import MySQLdb

            self.conn = MySQLdb.connect(db=self.db_name, charset="utf8", autocommit=True,
                                        **self.mysql_kwargs)
            self.conn.cursor().execute("SET SESSION sql_mode = ''")
        return self.conn

    def drop_connection(self) -> None:
        """Forget the connection (the database went away, e.g. a re-seeded world): the next
        db() connects again."""
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
        self.conn = None

    @contextlib.contextmanager
    def transaction(self):
        """One database transaction on the daemon's (otherwise autocommitting) connection:
        committed at the end of the block, rolled back if it raises."""
        conn = self.db()
        conn.autocommit(False)
        try:
            yield conn
            conn.commit()
        except Exception:
            conn.rollback()
            raise
        finally:
            conn.autocommit(True)

    # -- the node ------------------------------------------------------------------------
    def sh(self, command: str) -> str:
        """Run a shell command inside the node; its output, or CommandFailed."""
        result = run_in_node(self.node_root, command)
        output = (result.stdout + result.stderr).decode(errors="replace")
        if result.returncode != 0:
            raise CommandFailed(command, result.returncode, output)
        return output
