"""VpsAdminDbHook: the vpsAdmin MySQL database, with typed methods for what the DAGs read.

Statements come from include/sql/vpsadmin/*.sql (airlift.sql); values always travel as
driver parameters. The connection (default `vpsadmin_db`) names the database in `schema`.
"""

from __future__ import annotations

import json
from contextlib import closing

from airflow.providers.mysql.hooks.mysql import MySqlHook

from airlift import sql
from airlift.connections import VPSADMIN_DB


class VpsAdminDbHook(MySqlHook):
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

    def named(self, file: str, name: str, parameters=None) -> list[dict]:
        return self.rows(sql.statement(f"vpsadmin/{file}", name), parameters)

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

    # -- typed reads ---------------------------------------------------------------------
    def servers(self) -> list[dict]:
        return self.named("inventory.sql", "servers")

    def queue_length(self, server_id: int | None = None) -> int:
        rows = self.named("transactions.sql", "pending", {"server_id": server_id})
        return int(rows[0]["pending"])

    def pending_by_server(self) -> dict[int, int]:
        return {r["t_server"]: int(r["pending"]) for r in self.named("transactions.sql", "pending_by_server")}

    def sysconfig(self, name: str):
        rows = self.named("sysconfig.sql", "get", {"name": name})
        return json.loads(rows[0]["cfg_value"]) if rows and rows[0]["cfg_value"] is not None else None

    def table_engines(self, tables: list[str]) -> dict[str, str]:
        rows = self.named("innodb.sql", "engines", {"database": self.database, "tables": tables})
        return {r["TABLE_NAME"]: r["ENGINE"] for r in rows}

    def text_columns(self, table: str) -> tuple[list[str], list[str]]:
        """(primary key columns, text columns) of a table."""
        rows = self.named("encoding.sql", "columns", {"database": self.database, "table": table})
        key = [r["COLUMN_NAME"] for r in rows if r["COLUMN_KEY"] == "PRI"]
        text = [r["COLUMN_NAME"] for r in rows if r["DATA_TYPE"] in
                ("char", "varchar", "tinytext", "text", "mediumtext", "longtext")]
        return key, text
