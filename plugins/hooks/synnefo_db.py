"""SynnefoDbHook: one of Synnefo's PostgreSQL databases (`snf_apps`: Astakos, quotaholder and
Cyclades; `snf_pithos`: the Pithos backend), with the reads the upgrade's steps share.

The provider's PostgresHook with a statement timeout, so a hung server fails the task (and
Airflow retries it) instead of holding a worker slot. The connection names the database in
`schema`.
"""

from __future__ import annotations

import tempfile
from contextlib import closing

from airflow.providers.postgres.hooks.postgres import PostgresHook

from airlift.connections import SYNNEFO_APPS_DB


class SynnefoDbHook(PostgresHook):
    default_conn_name = SYNNEFO_APPS_DB
    hook_name = "Synnefo database"
    # One statement's bound: without it a hung server (or a lock a stray session holds) blocks
    # the task forever; with it the statement fails and Airflow retries. The connect timeout is
    # the connection's extra `connect_timeout` (libpq's own).
    STATEMENT_TIMEOUT_MS = 3600 * 1000

    def __init__(self, postgres_conn_id: str = default_conn_name, **kwargs):
        super().__init__(postgres_conn_id=postgres_conn_id, **kwargs)

    def get_conn(self):
        conn = super().get_conn()
        with closing(conn.cursor()) as cur:
            cur.execute(f"SET statement_timeout = {self.STATEMENT_TIMEOUT_MS}")
        conn.commit()
        return conn

    @property
    def location(self) -> dict:
        """Where the database is, as a dump on another host reaches it: server, port, user,
        database (the password stays in that host's ~/.pgpass)."""
        connection = self.get_connection(self.postgres_conn_id)
        return {"server": connection.host, "port": int(connection.port or 5432), "user": connection.login,
                "database": connection.schema}

    def frame(self, query: str):
        """A read as a pandas frame, through COPY (one round trip whatever the rows; see
        synnefo.duplicates.read_accounts_csv for the types)."""
        from synnefo.duplicates import read_accounts_csv

        with tempfile.NamedTemporaryFile(suffix=".csv") as f:
            self.copy_expert(f"COPY ({query}) TO STDOUT (FORMAT csv, HEADER)", f.name)
            return read_accounts_csv(f.name)

    def tables(self) -> list[str]:
        """The base tables of schema public (what a dump of the database must hold)."""
        rows = self.get_records("SELECT table_name FROM information_schema.tables "
                                "WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1")
        return [r[0] for r in rows]
