"""The lab's PostgreSQL (Synnefo's databases): LAB_PG_URL, else the local server on
127.0.0.1:5432 as user postgres with trust auth.

A server is a libpq connection string without a database (URL or key=value form, as psycopg
takes it); the helpers connect to its `postgres` maintenance database for what has to run
outside a database (CREATE/DROP DATABASE), and to a named database for the rest.
"""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432"


def connect(server: str, dbname: str = "postgres", autocommit: bool = False) -> psycopg.Connection:
    return psycopg.connect(make_conninfo(server, dbname=dbname, connect_timeout=3), autocommit=autocommit)


def reachable(server: str) -> bool:
    try:
        connect(server).close()
        return True
    except psycopg.Error:
        return False


def resolve(url: str | None = None) -> str:
    """The server: `url`, else LAB_PG_URL, else the local one; SystemExit if it does not answer."""
    server = url or os.environ.get("LAB_PG_URL") or DEFAULT_URL
    if not reachable(server):
        raise SystemExit(f"no PostgreSQL reachable at {server!r}: start one or set LAB_PG_URL "
                         "(postgresql://user:password@host:port)")
    return server


def admin(server: str, statement: sql.Composable | str, params=None) -> list[tuple]:
    """One statement on the maintenance database, outside a transaction (CREATE DATABASE
    cannot run in one)."""
    with connect(server, autocommit=True) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []


def database_exists(server: str, name: str) -> bool:
    return bool(admin(server, "SELECT 1 FROM pg_database WHERE datname = %s", (name,)))


def create_database(server: str, name: str) -> None:
    """A database as Synnefo's install guide creates snf_apps and snf_pithos: UTF8 with the C
    collation, from template0 (the encoding and locale of template1 may differ)."""
    admin(server, sql.SQL("CREATE DATABASE {} WITH ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' "
                          "TEMPLATE template0").format(sql.Identifier(name)))


def _terminate_connections(server: str, name: str) -> None:
    admin(server, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                  "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))


def drop_database(server: str, name: str) -> None:
    """Drop `name` if it exists, ending its sessions first (a DAG's or a simulator's left open
    would make DROP DATABASE fail)."""
    _terminate_connections(server, name)
    admin(server, sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def copy_database(server: str, source: str, target: str) -> None:
    """`target` as a file-level copy of `source` (CREATE DATABASE ... TEMPLATE): far cheaper
    than seeding again, so a test module seeds once and copies per test. The copy needs
    `source` without sessions, so they are ended."""
    _terminate_connections(server, source)
    admin(server, sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(target), sql.Identifier(source)))


def run_sql(server: str, dbname: str, statements: str) -> None:
    """Run a script of statements (no parameters) in one transaction."""
    with connect(server, dbname) as conn:
        conn.execute(statements)


def run_sql_file(server: str, dbname: str, path: Path) -> None:
    run_sql(server, dbname, Path(path).read_text())


def query(server: str, dbname: str, statement: sql.Composable | str, params=None) -> list[tuple]:
    with connect(server, dbname) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []


def reset_sequences(conn: psycopg.Connection) -> None:
    """Move every serial column's sequence past the largest value in its column (after rows
    were inserted with explicit ids), so the next insert that takes the default does not
    collide."""
    columns = conn.execute("""
        SELECT table_name, column_name, pg_get_serial_sequence(quote_ident(table_name), column_name)
        FROM information_schema.columns
        WHERE table_schema = 'public' AND column_default LIKE 'nextval(%'""").fetchall()
    for table, column, sequence in columns:
        conn.execute(sql.SQL("SELECT setval(%s, COALESCE(MAX({}), 0) + 1, false) FROM {}").format(
            sql.Identifier(column), sql.Identifier(table)), (sequence,))
