"""synnefo_upgrade_v013 when something is wrong, on one lab world (tests in order on it):
a settings file that is not valid Python stops the run in its first task with nothing
changed; a failed migration offers the restore of the dump taken right before it, and the
approved restore brings the database back to that dump; a malformed line in a quota export
stops the quota steps before Astakos holds anything of it."""

from __future__ import annotations

import pytest

from tests.e2e.synnefo_upgrade_v013 import (
    APPROVE_ALL,
    DAG_ID,
    REJECT_RESTORES,
    changed,
    conf,
    fingerprint,
    query,
    sh,
    synnefo_world,
    table_checksums,
)
from tests.helpers import run_dag

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("airflow_db")]
PITHOS_CONF = "/etc/synnefo/20-snf-pithos-app-settings.conf"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with synnefo_world(tmp_path_factory) as lab:
        sh(lab, "astakos", "mkdir -p -m 0700 /var/backups/synnefo")
        yield lab


def test_a_settings_file_that_is_not_python_stops_the_run_first(world, capfd):
    original = sh(world, "pithos", f"cat {PITHOS_CONF}")
    # the runbook's own 3.6 line, unquoted
    sh(world, "pithos", f"echo 'PITHOS_USER_LOGIN_URL = https://accounts.example.synnefo.org/login/' >> {PITHOS_CONF}")
    try:
        before = fingerprint(world)
        state, tasks, _ = run_dag(DAG_ID, conf())
        assert state == "failed" and tasks["stop.preflight"] == "failed"
        assert changed(before, fingerprint(world)) == []
        out = capfd.readouterr().out
        assert f"pithos:{PITHOS_CONF}, line {original.count(chr(10)) + 1}: not valid Python" in out
    finally:
        sh(world, "pithos", f"cat > {PITHOS_CONF} <<'EOF'\n{original}EOF")


def test_a_failed_migration_restores_the_dump_after_approval(world):
    """The deletion of part 2 and its check are marked done without running: the case duplicates
    remain, so
    im 0016 asks which user to keep, reads end of input and the migration fails."""
    before = table_checksums(world)
    state, tasks, answered = run_dag(DAG_ID, conf(), mark_success_pattern=r"users\.s2_(delete|recheck)_duplicates",
                                     answers={"users.approve_deletion": "Approve",
                                              "migrate.approve_restore": "Approve"})
    assert state == "failed"
    assert tasks["migrate.s3_migrate_astakos"] == "failed"
    assert ("migrate.approve_restore", "Approve") in answered
    assert tasks["migrate.restore_snf_apps"] == "success"
    assert tasks["settings.s3_quota_settings"] == "upstream_failed"
    # the dump taken right before the migration is what the database holds now
    dumps = sh(world, "astakos", "ls /var/backups/synnefo").split()
    assert [d for d in dumps if "-before-migrate-" in d and d.endswith(".dump")]
    assert {k: v for k, v in table_checksums(world).items() if k.startswith("snf_apps.")} == {
        k: v for k, v in before.items() if k.startswith("snf_apps.")}


def test_a_malformed_quota_export_line_stops_before_the_import(world, capfd):
    """After a whole upgrade, a Pithos quota that is not a number: the export line is refused
    with its number, nothing is imported."""
    state, tasks, _ = run_dag(DAG_ID, conf(), answers={**APPROVE_ALL, **REJECT_RESTORES})
    assert state == "success", {t: s for t, s in tasks.items() if s not in ("success", "skipped")}
    account = query(world, "snf_pithos", "SELECT n.path FROM nodes n JOIN policy p ON p.node = n.node "
                                         "WHERE n.parent = 0 AND p.key = 'quota' ORDER BY n.path LIMIT 1")[0][0]
    query(world, "snf_pithos", "UPDATE policy SET value = '10 GiB' WHERE key = 'quota' AND node = "
                               "(SELECT node FROM nodes WHERE parent = 0 AND path = %s)", (account,))
    quotas = query(world, "snf_apps", "SELECT user_id, resource_id, capacity FROM im_astakosuserquota ORDER BY 1, 2")
    capfd.readouterr()
    state, tasks, _ = run_dag(DAG_ID, conf(), answers={**APPROVE_ALL, **REJECT_RESTORES})
    assert state == "failed" and tasks["quotas.plan_quotas"] == "failed"
    assert tasks["quotas.import_quotas"] == "upstream_failed"
    out = capfd.readouterr().out
    assert "pithos-quota.txt, line " in out and "10 GiB" in out
    assert query(world, "snf_apps", "SELECT user_id, resource_id, capacity FROM im_astakosuserquota "
                                    "ORDER BY 1, 2") == quotas
