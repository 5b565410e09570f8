"""MySqlTimeoutsHook's timeouts (VpsAdminDbHook, the SQL-file steps): a server that accepts the
connection and then says nothing fails the call (a retryable OperationalError) instead of
blocking the worker forever; the timeouts come from the connection's extra, with defaults."""

from __future__ import annotations

import json
import socket
import threading
import time

import MySQLdb
import pytest
from airflow.models.connection import Connection

from hooks.vpsadmin_db import VpsAdminDbHook


def connection(**extra) -> Connection:
    return Connection(conn_id="vpsadmin_db", conn_type="mysql", host="127.0.0.1", port=3306, login="vpsadmin",
                      password="secret", schema="vpsadmin", extra=json.dumps(extra))


def test_every_connection_gets_timeouts_by_default():
    config = VpsAdminDbHook()._get_conn_config_mysql_client(connection(charset="utf8mb4"))
    assert config["connect_timeout"] == 30 and config["read_timeout"] == 3600 and config["write_timeout"] == 600
    assert config["charset"] == "utf8mb4"  # the provider's own extras still apply


def test_the_extra_overrides_the_timeouts():
    config = VpsAdminDbHook()._get_conn_config_mysql_client(
        connection(connect_timeout=5, read_timeout="7200", write_timeout=60))
    assert (config["connect_timeout"], config["read_timeout"], config["write_timeout"]) == (5, 7200, 60)


@pytest.mark.parametrize("value", [0, -1, "soon", None, 1.5])
def test_a_timeout_that_is_not_a_positive_number_of_seconds_is_refused(value):
    with pytest.raises(ValueError, match="read_timeout .* is not a positive whole number of seconds"):
        VpsAdminDbHook()._get_conn_config_mysql_client(connection(read_timeout=value))


@pytest.fixture
def silent_server():
    """A TCP port that accepts connections and never sends the MySQL handshake (a hung
    server, or a firewall that lets SYNs through and drops the rest)."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def test_a_silent_server_fails_the_connection_instead_of_hanging(silent_server, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_VPSADMIN_DB", json.dumps({
        "conn_type": "mysql", "host": "127.0.0.1", "port": silent_server, "login": "vpsadmin", "schema": "vpsadmin",
        "extra": {"connect_timeout": 1}}))
    outcome = {}

    def connect():
        started = time.monotonic()
        try:
            VpsAdminDbHook().get_conn()
        except Exception as exc:  # noqa: BLE001 - the test looks at what it is
            outcome["error"] = exc
        outcome["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=connect, daemon=True)  # daemon: a hang must not keep pytest alive
    thread.start()
    thread.join(timeout=20)
    assert not thread.is_alive(), "get_conn() hung on a server that never answers"
    assert isinstance(outcome["error"], MySQLdb.OperationalError) and outcome["seconds"] < 10


def test_a_sql_file_step_gets_the_timeouts_too(silent_server, monkeypatch):
    """SqlStepOperator's steps (prereq.maintenance-mode, db.remove-stray-vps, ...) reach MySQL
    through MySqlTimeoutsHook as well: their probe fails on a silent server."""
    from operators.runbook_step import SqlStepOperator

    monkeypatch.setenv("AIRFLOW_CONN_VPSADMIN_DB", json.dumps({
        "conn_type": "mysql", "host": "127.0.0.1", "port": silent_server, "login": "vpsadmin", "schema": "vpsadmin",
        "extra": {"connect_timeout": 1}}))
    step = SqlStepOperator(task_id="stray", step="db.remove-stray-vps", conn_id="vpsadmin_db",
                           sql="-- name: probe\nSELECT 0 AS to_change\n-- name: apply\nSELECT 1")
    outcome = {}

    def probe():
        try:
            step.probe({})
        except Exception as exc:  # noqa: BLE001 - the test looks at what it is
            outcome["error"] = exc

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout=20)
    assert not thread.is_alive(), "the step's probe hung on a server that never answers"
    assert isinstance(outcome["error"], MySQLdb.OperationalError)
