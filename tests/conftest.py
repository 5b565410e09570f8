"""Test setup: a throw-away Airflow home (SQLite metadata, migrated once per session) that
sees the project's dags/ and plugins/, and lab clusters for the end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from lab.core.airflow_env import airflow_env
from tests.helpers import new_lab

ROOT = Path(__file__).resolve().parents[1]
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="airlift-airflow-"))
# Before anything imports airflow: the settings are read at import time.
os.environ.update(airflow_env(_AIRFLOW_HOME))
os.environ.update({
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
    "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
})


@pytest.fixture(scope="session")
def airflow_db():
    """A migrated metadata database (dag.test() needs one)."""
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True,
                   capture_output=True, env=os.environ.copy())
    return _AIRFLOW_HOME


@pytest.fixture(scope="session", autouse=True)
def keep_server_timezones(tmp_path_factory):
    """The lab worlds empty the server's mysql.time_zone* (v1.22 servers never loaded them);
    the machine's shared MariaDB gets them back after the session if it had them before."""
    from lab.core import mysql

    kwargs = mysql.resolve(tmp_path_factory.mktemp("mysql"), os.environ.get("LAB_MYSQL_URL"))
    had = mysql.admin(kwargs, "SELECT COUNT(*) FROM mysql.time_zone_name")[0][0]
    yield
    if had and not mysql.admin(kwargs, "SELECT COUNT(*) FROM mysql.time_zone_name")[0][0]:
        mysql.load_timezones(kwargs)


@pytest.fixture
def lab_world(tmp_path, monkeypatch):
    """Factory: a fresh lab cluster (v1.22 world, own database name, own SSH port), started,
    its connections exported as AIRFLOW_CONN_*; destroyed after the test."""
    from lab import Lab

    labs = []

    def make(scale: int = 1, wait_for_queue: bool = True) -> Lab:
        lab = new_lab(tmp_path / f"lab{len(labs)}", scale=scale)
        labs.append(lab)
        lab.info = lab.seed(reset_timezones=True)
        lab.start()
        for name, value in lab.env().items():
            monkeypatch.setenv(name, value)
        if wait_for_queue:
            from tests.helpers import wait_for_empty_queue

            wait_for_empty_queue(lab)
        return lab

    yield make
    for lab in labs:
        lab.destroy()
