"""MysqlDumpOperator without a lab: what its settings (from XCom) and keep_dumps must be before
anything runs, and which files old_dumps() picks (the lab tests run it on a DB host)."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException

from operators.vpsadmin_upgrade.common import MysqlDumpOperator, old_dumps
from tests.helpers import step_context
from tests.unit.operators.test_untrusted_values import RecordingNodes

SETTINGS = {"db_host": "127.0.1.3", "database": "vpsadmin", "backup_dir": "/var/backups/vpsadmin"}


def dump_step(settings=None, keep_dumps=None) -> MysqlDumpOperator:
    op = MysqlDumpOperator(task_id="backup", settings={**SETTINGS, **(settings or {})}, mode="full",
                           label="before-v2-upgrade", keep_dumps=keep_dumps)
    op.__dict__["nodes"] = RecordingNodes()
    return op


def test_the_plan_names_the_dump_and_what_is_kept():
    record = dump_step(keep_dumps=5).execute(step_context(run_id="manual__1", dry_run=True))
    assert record["changes"] == [
        "127.0.1.3: dump.sh full vpsadmin /var/backups/vpsadmin/vpsadmin-before-v2-upgrade-manual__1.sql.gz",
        "127.0.1.3: then keep the newest 5 of /var/backups/vpsadmin/vpsadmin-before-v2-upgrade-*.sql.gz"]


@pytest.mark.parametrize(("settings", "keep_dumps", "error"), [
    ({"database": "vpsadmin`; DROP DATABASE mysql; -- "}, None, "database .* is not a plain database name"),
    ({"database": "vpsadmin\n"}, None, "database .* is not a plain database name"),
    ({"backup_dir": "/var/backups/../../etc"}, None, "backup_dir .* is not an absolute path"),
    ({"backup_dir": "var/backups"}, None, "backup_dir .* is not an absolute path"),
    ({"db_host": "-oProxyCommand=id"}, None, "db_host .* is not a host name"),
    ({}, 0, "keep_dumps 0 is not a number of dumps"),
    ({}, "five", "keep_dumps 'five' is not a number of dumps"),
    ({}, True, "keep_dumps True is not a number of dumps"),
])
def test_bad_settings_are_refused_before_anything_runs(settings, keep_dumps, error):
    op = dump_step(settings, keep_dumps)
    nodes = op.nodes
    with pytest.raises(AirflowFailException, match="refusing to dump with these settings:\n- " + error):
        op.execute(step_context(run_id="manual__1", dry_run=True))
    assert nodes.commands == []


PREFIX, SUFFIX = "vpsadmin-before-v2-upgrade-", ".sql.gz"


def listing(names_and_mtimes: dict[str, float]) -> str:
    return "".join(f"{mtime} {name}\0" for name, mtime in names_and_mtimes.items())


def test_old_dumps_are_the_oldest_beyond_keep_this_run_counted_first():
    files = {f"{PREFIX}scheduled__{i}{SUFFIX}": float(i) for i in range(1, 6)}
    current = f"{PREFIX}manual__now{SUFFIX}"
    files[current] = 0.5  # oldest by time (a kept dump of a retry), still this run's
    assert old_dumps(listing(files), PREFIX, SUFFIX, 3, current) == [f"{PREFIX}scheduled__{i}{SUFFIX}"
                                                                      for i in (1, 2, 3)]
    assert old_dumps(listing(files), PREFIX, SUFFIX, 1, current)[-1] == f"{PREFIX}scheduled__5{SUFFIX}"
    assert old_dumps(listing(files), PREFIX, SUFFIX, 6, current) == []


@pytest.mark.parametrize("name", [
    f"{PREFIX}manual__x{SUFFIX}.partial", f"{PREFIX}my-own-run-id{SUFFIX}", f"{PREFIX}manual__x.sql",
    f"vpsadmin-before-v2-upgrade-b-manual__x{SUFFIX}", f"vpsadmin2-before-v2-upgrade-manual__x{SUFFIX}",
    f"{PREFIX}manual__x y{SUFFIX}", f"{PREFIX}manual__$(id){SUFFIX}", f"../{PREFIX}manual__x{SUFFIX}",
])
def test_only_files_named_as_the_step_names_its_dumps_are_ever_picked(name):
    assert old_dumps(listing({name: 1.0}), PREFIX, SUFFIX, 1, f"{PREFIX}manual__now{SUFFIX}") == []


def test_a_name_with_a_newline_is_one_entry_not_two():
    trick = f"x\n1 {PREFIX}manual__victim{SUFFIX}"
    assert old_dumps(listing({trick: 1.0}), PREFIX, SUFFIX, 1, f"{PREFIX}manual__now{SUFFIX}") == []
