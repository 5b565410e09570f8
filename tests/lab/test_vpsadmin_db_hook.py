"""VpsAdminDbHook against the lab's MariaDB: a statement the server does not answer within the
connection's read_timeout fails (a retryable OperationalError, the lost connection) instead of
blocking the task forever."""

from __future__ import annotations

import json
import os
import time

import MySQLdb
import pytest

from hooks.vpsadmin_db import VpsAdminDbHook

pytestmark = pytest.mark.lab


@pytest.fixture
def server(tmp_path_factory, monkeypatch):
    """The lab's MariaDB as connection vpsadmin_db, with a read timeout of 1 s."""
    from lab.core import mysql

    kwargs = mysql.resolve(tmp_path_factory.mktemp("mysql"), os.environ.get("LAB_MYSQL_URL"))
    monkeypatch.setenv("AIRFLOW_CONN_VPSADMIN_DB", json.dumps({
        "conn_type": "mysql", "host": kwargs["host"], "port": kwargs["port"], "login": kwargs["user"],
        "password": kwargs["passwd"], "extra": {"read_timeout": 1}}))
    return kwargs


def test_a_statement_the_server_does_not_answer_in_time_fails(server):
    hook = VpsAdminDbHook()
    assert hook.rows("SELECT 1 AS one") == [{"one": 1}]
    started = time.monotonic()
    with pytest.raises(MySQLdb.OperationalError, match="Lost connection"):
        hook.rows("SELECT SLEEP(30)")
    assert time.monotonic() - started < 10
