"""Test setup: a throw-away Airflow home (SQLite metadata, migrated once per session) that
sees the project's dags/ and plugins/, and lab clusters for the end-to-end tests."""

from __future__ import annotations

import os
import shutil
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
    """A migrated metadata database (dag.test() needs one); beside it, MIGRATED_DB: the same
    before any test wrote to it, for an `airflow standalone` of a test's own (runs that
    earlier tests left behind must not count against a DAG's max_active_runs there)."""
    from tests.helpers import MIGRATED_DB

    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True,
                   capture_output=True, env=os.environ.copy())
    if not (_AIRFLOW_HOME / MIGRATED_DB).exists():
        shutil.copy(_AIRFLOW_HOME / "airflow.db", _AIRFLOW_HOME / MIGRATED_DB)
    return _AIRFLOW_HOME


# `make test` runs the modules on two pytest-xdist workers (--dist loadfile: a module's shared
# world is seeded once, on one worker). The MariaDB server's time zone tables are one set for
# the whole server (v1.22 worlds empty them; the upgrade and rake's UTC migration need them),
# so every worker but the first has a MariaDB of its own (LAB_MYSQL_URL, whatever it was),
# and one worker's world never empties another's time zones.
_PRIVATE_MYSQL = pytest.StashKey[Path]()


def pytest_configure(config):
    worker = getattr(config, "workerinput", {}).get("workerid")
    if worker and worker != "gw0":
        from lab.core import mysql
        from lab.core.config import free_port

        directory = Path(tempfile.mkdtemp(prefix=f"airlift-mysql-{worker}-"))
        config.stash[_PRIVATE_MYSQL] = directory
        port = mysql.start_private(directory, free_port())["port"]
        os.environ["LAB_MYSQL_URL"] = f"mysql://root@127.0.0.1:{port}"


# `make test` hands modules to its two workers in collection order (`--no-loadscope-reorder`;
# xdist's default puts the modules with most tests first, which left these, minutes each with
# one or two tests, to the end, and one worker idle while the other ran them). So the longest
# go first (longest first, as measured in CI), then the other end-to-end modules, the lab's,
# the unit tests.
LONGEST_FIRST = (
    "tests/e2e/deployment/test_production_shape.py",
    "tests/e2e/vpsadmin_upgrade_v2/test_whole_upgrade.py",
    "tests/e2e/openvz_fleet_migration/test_fleet.py",
    "tests/e2e/vpsadmin_upgrade_v2/test_v1_22_sections.py",
    "tests/e2e/test_standalone_scheduler.py",
    "tests/e2e/openvz_fleet_migration/test_killed_worker.py",
)


def pytest_collection_modifyitems(config, items):
    def rank(item) -> tuple[int, int]:
        module = item.nodeid.split("::")[0]
        if module in LONGEST_FIRST:
            return 0, LONGEST_FIRST.index(module)
        return next(i for i, tier in enumerate(("tests/e2e/", "tests/lab/", ""), 1) if module.startswith(tier)), 0

    items.sort(key=rank)  # stable: a module's own order (and its parameters' grouping) is kept


def pytest_unconfigure(config):
    if _PRIVATE_MYSQL in config.stash:
        from lab.core import mysql

        mysql.stop_private(config.stash[_PRIVATE_MYSQL])
        shutil.rmtree(config.stash[_PRIVATE_MYSQL], ignore_errors=True)


_TIME_ZONES = pytest.StashKey[tuple]()


def _server_time_zones():
    from lab.core import mysql

    directory = Path(tempfile.mkdtemp(prefix="airlift-mysql-"))
    kwargs = mysql.resolve(directory, os.environ.get("LAB_MYSQL_URL"))
    return kwargs, mysql.admin(kwargs, "SELECT COUNT(*) FROM mysql.time_zone_name")[0][0]


def pytest_sessionstart(session):
    """The lab worlds empty the server's mysql.time_zone* (v1.22 servers never loaded them);
    the machine's shared MariaDB gets them back after the session if it had them before.
    Done once, by the process that runs the session (xdist's controller, not its workers)."""
    if not hasattr(session.config, "workerinput"):
        session.config.stash[_TIME_ZONES] = _server_time_zones()


def pytest_sessionfinish(session, exitstatus):
    if _TIME_ZONES in session.config.stash:
        from lab.core import mysql

        kwargs, had = session.config.stash[_TIME_ZONES]
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
