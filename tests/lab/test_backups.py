"""Backups on a lab world over real SSH and MariaDB: preflight compares the server the DB host's
~/.my.cnf reaches with connection vpsadmin_db's; the full dump holds every table the connection
sees (one that lacks a table fails the step); old dumps beyond keep_dumps are deleted, only
files named as the step names its dumps, never this run's, none while another run is
unfinished."""

from __future__ import annotations

import os
import time

import pytest
from airflow.sdk.exceptions import AirflowFailException

from lab.core.topology import host
from tests.helpers import StepTi, detached_step, node_shim, query, table_checksums

pytestmark = pytest.mark.lab

BACKUP_DIR = "/var/backups/vpsadmin"


@pytest.fixture
def env(lab, monkeypatch):
    """The module's lab (tests/lab/conftest.py) with its connections exported."""
    for name, value in lab.env().items():
        monkeypatch.setenv(name, value)
    yield lab
    for tool in ("mysql", "mysqldump"):  # shims a test put in front of the real tools
        (lab.node_root("db") / "usr/local/bin" / tool).unlink(missing_ok=True)


def backups(lab):
    return lab.node_root("db") / BACKUP_DIR.lstrip("/")


class RunsTi(StepTi):
    """A task instance that also answers how many runs of the DAG are unfinished (this one too)."""

    def __init__(self, unfinished: int = 1):
        super().__init__()
        self.unfinished = unfinished

    def get_dr_count(self, dag_id, states=None, **kwargs):
        assert states == ["queued", "running"]
        return self.unfinished


def context(run_id: str, unfinished: int = 1) -> dict:
    return {"run_id": run_id, "ti": RunsTi(unfinished), "params": {"dry_run": False}}


# -- preflight: the server behind the DB host's ~/.my.cnf ---------------------------------------

def preflight_step():
    from operators.vpsadmin_upgrade.preflight import PreflightOperator

    return detached_step(PreflightOperator, task_id="check_params")


def test_preflight_accepts_a_my_cnf_for_the_connections_server(env):
    op = preflight_step()
    op._check_dump_server(host("db").address)  # raises if not


def test_preflight_refuses_a_my_cnf_for_another_server(env):
    """Another server (in the lab: a client that answers as one would) does not see the lock."""
    shim = env.node_root("db") / "usr/local/bin/mysql"
    shim.write_text("#!/bin/bash\nprintf '0\\tdb2.example\\t3306\\t2\\n'\n")
    shim.chmod(0o755)
    with pytest.raises(Exception, match=r"the DB host 127\.0\.1\.3's ~/\.my\.cnf reaches another MySQL server, "
                                        r"db2\.example:3306 \(server_id 2\), than connection vpsadmin_db, .*:\d+ "
                                        r"\(server_id \d+\) .*the dumps would not back up this database"):
        preflight_step()._check_dump_server(host("db").address)


def test_preflight_refuses_a_my_cnf_that_reaches_no_server(env):
    cnf = env.node_root("db") / "root/.my.cnf"
    original = cnf.read_text()
    cnf.write_text(original.replace("port=", "port=1\n#"))
    try:
        with pytest.raises(Exception, match=r"the MySQL client on the DB host 127\.0\.1\.3 reaches no server with its "
                                            r"~/\.my\.cnf"):
            preflight_step()._check_dump_server(host("db").address)
    finally:
        cnf.write_text(original)


# -- the dump: every table, old ones removed -----------------------------------------------------

def dump_step(lab, keep_dumps=None, label="kept"):
    from operators.vpsadmin_upgrade.common import MysqlDumpOperator

    settings = {"db_host": host("db").address, "database": lab.cfg.vpsadmin_db, "backup_dir": BACKUP_DIR}
    return detached_step(MysqlDumpOperator, step="db.backup", settings=settings, mode="full", label=label,
                         keep_dumps=keep_dumps)


def test_the_dump_holds_every_table_the_connection_sees(env):
    record = dump_step(env).execute(context("manual__tables"))
    assert record["applied"] and record["bytes"] > record["size"] > 0
    assert set(record["tables"]) == set(table_checksums(env)), "every base table of the world is in the dump"


def test_a_dump_that_lacks_a_table_fails_the_step(env):
    """mysqldump leaving out a table (here: told to) cannot pass for a backup, however big it is."""
    node_shim(env, "db", "mysqldump", "")
    shim = env.node_root("db") / "usr/local/bin/mysqldump"
    shim.write_text(shim.read_text().replace('"$@"', f'--ignore-table={env.cfg.vpsadmin_db}.servers "$@"'))
    with pytest.raises(AirflowFailException, match=r"lacks 1 table\(s\) of .* that connection vpsadmin_db sees: "
                                                   r"servers\. Is the DB host's ~/\.my\.cnf for another server\?"):
        dump_step(env, label="short").execute(context("manual__lacking"))


def test_a_failed_dump_is_dumped_anew_once_the_db_host_is_fixed(env):
    """A dump that failed on the DB host (MySQL down) fails the task; cleared once the host is
    fixed, the same run's task dumps again instead of finding the failure. A dump that verified
    is kept."""
    down = env.node_root("db") / "root/mysql-down"
    node_shim(env, "db", "mysqldump", '[ -e /root/mysql-down ] && { echo "mysqldump: Got error: 2002: Can\'t '
                                      'connect to local server" >&2; exit 2; }')
    down.touch()
    with pytest.raises(AirflowFailException, match="exited 2"):
        dump_step(env, label="flaky").execute(context("manual__flaky"))
    assert [p.name for p in backups(env).iterdir() if "-flaky-" in p.name and not p.name.endswith(".partial")] == []
    down.unlink()
    record = dump_step(env, label="flaky").execute(context("manual__flaky"))
    assert record["applied"] and not record["reused"] and record["size"] > 0
    again = dump_step(env, label="flaky").execute(context("manual__flaky"))
    assert again["path"] == record["path"] and again["sha256"] == record["sha256"], "kept, not dumped twice"
    assert [p.name for p in backups(env).iterdir() if "-flaky-" in p.name] == [os.path.basename(record["path"])]


def make_dumps(lab, names_and_ages: dict[str, int]) -> None:
    """Files in the backup directory, each `age` seconds old."""
    for name, age in names_and_ages.items():
        path = backups(lab) / name
        path.write_text("old\n")
        os.utime(path, (time.time() - age, time.time() - age))


def test_old_dumps_beyond_keep_dumps_are_removed(env):
    db = env.cfg.vpsadmin_db
    own = {f"{db}-prune-scheduled__2025-01-0{i}T00_00_00_00_00.sql.gz": 1000 * i for i in range(1, 5)}
    others = {
        f"{db}-prune-manual__x.sql.gz.partial": 10,   # a dump being written
        f"{db}-prune-my_own_id.sql.gz": 9000,         # a run with an id of its own
        f"{db}-prune-b-manual__y.sql.gz": 9000,       # another label that starts like this one
        f"{db}-other-manual__z.sql.gz": 9000,         # another label
        "other_db-prune-manual__z.sql.gz": 9000,      # another database
        f"{db}-prune-manual__w.sql": 9000,            # another kind of dump
        "notes.txt": 9000,
    }
    make_dumps(env, {**own, **others})
    record = dump_step(env, keep_dumps=3, label="prune").execute(context("manual__prune"))
    this_run = f"{db}-prune-manual__prune.sql.gz"
    kept = sorted(own, key=own.get)[:2]  # the newest two, with this run's: three
    assert sorted(record["removed"]) == sorted(f"{BACKUP_DIR}/{n}" for n in own if n not in kept)
    left = {p.name for p in backups(env).iterdir()}
    assert left >= {this_run, *kept, *others} and not left & (set(own) - set(kept))


def test_no_dump_is_removed_while_another_run_is_unfinished(env):
    db = env.cfg.vpsadmin_db
    make_dumps(env, {f"{db}-busy-manual__old{i}.sql.gz": 1000 * i for i in range(1, 4)})
    record = dump_step(env, keep_dumps=1, label="busy").execute(context("manual__busy", unfinished=2))
    assert record["removed"] == []
    assert len(list(backups(env).glob(f"{db}-busy-*.sql.gz"))) == 4


def test_hostile_settings_are_refused_before_anything_runs(env):
    from operators.vpsadmin_upgrade.common import MysqlDumpOperator

    before = {p.name for p in backups(env).iterdir()}
    for bad in ({"database": "x`; DROP DATABASE mysql; -- "}, {"backup_dir": "/var/backups/../../etc"},
                {"db_host": "127.0.1.3; touch /tmp/x"}, {"database": f"{env.cfg.vpsadmin_db}\n"}):
        settings = {"db_host": host("db").address, "database": env.cfg.vpsadmin_db, "backup_dir": BACKUP_DIR, **bad}
        op = detached_step(MysqlDumpOperator, step="db.backup", settings=settings, mode="full", label="bad")
        with pytest.raises(AirflowFailException, match="refusing to dump with these settings"):
            op.execute(context("manual__bad"))
    assert {p.name for p in backups(env).iterdir()} == before
    assert query(env, "SELECT COUNT(*) FROM servers")[0][0] > 0
