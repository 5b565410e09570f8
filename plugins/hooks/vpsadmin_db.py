"""VpsAdminDbHook: the vpsAdmin MySQL database, with typed methods for what several steps read.

The statements behind the typed reads are in include/sql/vpsadmin/hook/; a step's own
statements are in its step's file and reach the hook as text (`rows`, `execute_in_transaction`).
Values always travel as driver parameters. The connection (default `vpsadmin_db`) names the
database in `schema`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager

from airlift import sql
from airlift.connections import VPSADMIN_DB
from airlift.errors import StepError
from hooks.mysql import MySqlTimeoutsHook
from vpsadmin import inventory


class VpsAdminDbHook(MySqlTimeoutsHook):
    default_conn_name = VPSADMIN_DB
    hook_name = "vpsAdmin database"

    def __init__(self, mysql_conn_id: str = default_conn_name, **kwargs):
        super().__init__(mysql_conn_id=mysql_conn_id, **kwargs)

    @property
    def database(self) -> str:
        return self.schema or self.get_connection(self.mysql_conn_id).schema

    @property
    def host(self) -> str:
        return self.get_connection(self.mysql_conn_id).host

    # -- generic -------------------------------------------------------------------------
    def rows(self, statement: str, parameters=None) -> list[dict]:
        with closing(self.get_conn()) as conn, closing(conn.cursor()) as cur:
            cur.execute(statement, parameters)
            names = [d[0] for d in cur.description or ()]
            return [dict(zip(names, r, strict=False)) for r in cur.fetchall()]

    def execute_in_transaction(self, statements: list[tuple[str, object]]) -> list[int]:
        """Run statements in one transaction; returns the affected row counts."""
        with closing(self.get_conn()) as conn, closing(conn.cursor()) as cur:
            counts = []
            try:
                for statement, parameters in statements:
                    cur.execute(statement, parameters)
                    counts.append(cur.rowcount)
                conn.commit()
            except Exception:
                conn.rollback()
                raise
            return counts

    def _read(self, file: str, name: str, parameters=None) -> list[dict]:
        return self.rows(sql.statement(f"vpsadmin/hook/{file}", name), parameters)

    # -- typed reads ---------------------------------------------------------------------
    def servers(self) -> list[dict]:
        return self._read("servers.sql", "servers")

    def schema_version(self):
        """sysconfig db_version (1.22 counts its schema upgrades: 15 is v1.22), or None."""
        rows = self._read("servers.sql", "schema_version")
        return json.loads(rows[0]["db_version"]) if rows else None

    def migrations(self) -> list[str]:
        """The applied migrations of the 2.0 schema (schema_migrations), oldest first."""
        return [r["version"] for r in self._read("migrations.sql", "versions")]

    def environments(self) -> list[dict]:
        return self._read("environments.sql", "environments")

    def pools(self) -> list[dict]:
        """Every storage pool with its node's id, name and address. Refused when a pool's
        filesystem or its node's address could not safely reach a command (vpsadmin/inventory.py)."""
        pools = self._read("pools.sql", "pools")
        errors = inventory.unsafe_pools(pools)
        if errors:
            raise StepError("the database holds pools no command may use; fix them first:\n- " + "\n- ".join(errors))
        return pools

    def pending_by_server(self) -> dict[int, int]:
        return {r["t_server"]: int(r["pending"]) for r in self._read("transactions.sql", "pending_by_server")}

    def failed_since(self, first_id: int | None = None, since: int | None = None) -> list[dict]:
        """v1.22 transactions that finished and failed: from `first_id` on, or that ended at
        unix time `since` or later."""
        return self._read("transactions.sql", "failed_since", {
            "first_id": None if first_id is None else int(first_id), "since": None if since is None else int(since)})

    def next_transaction_id(self) -> int:
        return int(self._read("transactions.sql", "next_id")[0]["next_id"])

    def chain(self, chain_id: int) -> dict | None:
        rows = self._read("transactions.sql", "chain", {"chain_id": int(chain_id)})
        return rows[0] if rows else None

    def chains(self, chain_ids: list[int]) -> list[dict]:
        if not chain_ids:
            return []
        return self._read("transactions.sql", "chains", {"ids": tuple(int(i) for i in chain_ids)})

    def open_chains(self) -> list[dict]:
        """2.0 transaction chains not in a final state (staged, queued, running, rolling back)."""
        return self._read("transactions.sql", "open_chains")

    def chain_failures(self, chain_id: int) -> list[dict]:
        return self._read("transactions.sql", "chain_failures", {"chain_id": int(chain_id)})

    def sysconfig(self, name: str):
        rows = self._read("sysconfig.sql", "get", {"name": name})
        return json.loads(rows[0]["cfg_value"]) if rows and rows[0]["cfg_value"] is not None else None

    def tables(self, database: str, tables: list[str]) -> set[str]:
        """Which of `tables` exist in `database`."""
        rows = self._read("schema.sql", "tables", {"database": database, "tables": tables})
        return {r["TABLE_NAME"] for r in rows}

    def base_tables(self, database: str) -> set[str]:
        """Every table of `database` (not the views)."""
        return {r["TABLE_NAME"] for r in self._read("schema.sql", "base_tables", {"database": database})}

    @contextmanager
    def server_marker(self) -> Iterator[dict]:
        """Holds a lock with a name made for this call, in one session, while the block runs;
        yields the lock's name and that session's id (what only this server can tell another
        client) and the server's hostname, port and server_id (for messages)."""
        lock = f"airlift-{uuid.uuid4().hex}"
        with closing(self.get_conn()) as conn, closing(conn.cursor()) as cur:
            cur.execute(sql.statement("vpsadmin/hook/server.sql", "take_lock"), {"lock": lock})
            taken, connection_id, hostname, port, server_id = cur.fetchone()
            if taken != 1:
                raise RuntimeError(f"GET_LOCK({lock!r}) returned {taken!r}")
            yield {"lock": lock, "connection_id": int(connection_id), "hostname": hostname, "port": int(port),
                   "server_id": int(server_id)}  # the lock ends with the session

    def table_engines(self, tables: list[str]) -> dict[str, str]:
        rows = self._read("schema.sql", "engines", {"database": self.database, "tables": tables})
        return {r["TABLE_NAME"]: r["ENGINE"] for r in rows}

    def running_queries(self) -> list[dict]:
        """Statements other connections are running on the database now (the processlist)."""
        return self._read("schema.sql", "queries", {"database": self.database})

    def text_columns(self, table: str) -> tuple[list[str], list[str]]:
        """(primary key columns, text columns) of a table."""
        rows = self._read("schema.sql", "columns", {"database": self.database, "table": table})
        key = [r["COLUMN_NAME"] for r in rows if r["COLUMN_KEY"] == "PRI"]
        text = [r["COLUMN_NAME"] for r in rows if r["DATA_TYPE"] in
                ("char", "varchar", "tinytext", "text", "mediumtext", "longtext")]
        return key, text
