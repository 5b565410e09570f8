"""The whole vpsadmin_upgrade_v2 DAG on a fresh lab world: a v1.22 cluster becomes a working
v2.0 cluster (real MariaDB, real SSH, the lab's simulators and daemons, dag.test()), a second
run changes nothing; a failed migration is restored to the pre-upgrade database; a run under
injected faults ends in the same world as the fault-free one (fault_injection.py)."""

from __future__ import annotations

import os

import pytest

from tests.e2e.vpsadmin_upgrade_v2 import (
    APPROVE_ALL,
    DAG_ID,
    GATE,
    MOVE_GATE,
    real_run_conf,
)
from tests.e2e.vpsadmin_upgrade_v2.fault_injection import (
    AT_LEAST,
    SEED,
    Chaos,
    assert_recorded_dumps_intact,
    diff,
    fingerprint,
    quick_retries,
)
from tests.e2e.vpsadmin_upgrade_v2.integrity import task_result
from tests.e2e.vpsadmin_upgrade_v2.v2_world import assert_v2_world, live_changes_left_out, world_before
from tests.helpers import (
    AirflowApiServer,
    dag_is_paused,
    diff_states,
    lab_secrets,
    query,
    register_dags,
    rendered_fields,
    run_artifacts,
    run_dag,
    scalar,
    secret_holders,
    table_checksums,
    world_state,
)

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("airflow_db")]

# Where the database password belongs (each readable by root only), and nowhere else.
SECRET_HOLDERS = {"db/root/.my.cnf", "vpsadmin/opt/vpsadminapi/config/database.yml", "vpsadmin/var/spool/cron/root",
                  "vpsadmin/root/crontab.v1.22", *(f"{node}/etc/vpsadmin/vpsadmind.yml{suffix}"
                                                   for node in ("vpsadmin", "node1", "node2", "storage1", "backup1")
                                                   for suffix in ("", ".v1.22"))}


@pytest.fixture(scope="module")
def fault_free() -> dict:
    """The fingerprint of this module's fault-free whole upgrade, which the run under injected
    faults must end in: the suite pays for one fault-free run, not two."""
    return {}


def test_whole_upgrade_then_rerun_changes_nothing(lab_world, capfd, monkeypatch, fault_free):
    lab = lab_world()
    before = world_before(lab)
    register_dags()
    assert dag_is_paused("vpsadmin_lifetimes") and dag_is_paused("vpsadmin_daily_report"), "created paused"
    with AirflowApiServer(monkeypatch):
        state, tis, answered = run_dag(DAG_ID, real_run_conf(members_expiration=True), answers=APPROVE_ALL)
    assert state == "success", {t: s for t, s in tis.items() if s != "success"}
    assert answered == [(GATE, "Approve"), (MOVE_GATE, "Approve")]
    # the scheduled DAGs replace the lifetimes and report cron jobs: unpaused, not in cron
    assert not dag_is_paused("vpsadmin_lifetimes") and not dag_is_paused("vpsadmin_daily_report")
    assert tis["api.restore_database"] == "skipped"

    # no secret in a task log, an XCom, a rendered field or an approval; on the nodes only
    # where it belongs, readable by root only
    secrets, output = lab_secrets(lab), capfd.readouterr()
    shown = output.out + output.err + run_artifacts(DAG_ID)
    assert "vpsadmind.yml" in shown and len(shown) > 100_000, "the logs and XComs were read"
    assert [name for name, value in secrets.items() if value in shown] == []
    holders = secret_holders(lab, secrets)
    assert set(holders) == SECRET_HOLDERS
    assert {path: oct(mode) for path, mode in holders.items() if mode & 0o077} == {}

    assert [s for t, s in tis.items() if t.startswith("finalize.nas_snapshot_release")] == ["success"]
    assert_v2_world(lab, before, task_result(DAG_ID, "finalize.integrity_check"))

    # a script with bash's `${#array[@]}` is shown (Rendered Template) exactly as it ran
    moves = rendered_fields(DAG_ID, "nas.move_data", map_index=0)["script"]
    assert "${#entries[@]}" in moves and "{% raw %}" not in moves

    fault_free["fingerprint"] = fingerprint(lab)

    before = world_state(lab)
    chains = scalar(lab, "SELECT COUNT(*) FROM transaction_chains "
                             "WHERE type NOT LIKE 'TransactionChains::IntegrityCheck::%%'")
    state, tis, answered = run_dag(DAG_ID, real_run_conf(members_expiration=True), answers=APPROVE_ALL)
    assert state == "success", {t: s for t, s in tis.items() if s != "success"}
    assert answered == [], "nothing left to move: the move gate does not ask"
    assert tis["db.encoding_probe"] == "skipped" and tis["api.migrate_pinned"] == "success"
    # only the v1.22 sections, the API shutdown and the restore branch are skipped: every v2.0
    # step ran again and found nothing to do
    skipped = {t.split("[")[0] for t, s in tis.items() if s == "skipped"}
    assert {t for t in skipped if not t.startswith(("prereq.", "db."))} == {
        "api.shutdown", "api.approve_restore", "api.restore_database", "finalize.approve_restore",
        "finalize.restore_database"}
    after = world_state(lab)
    assert live_changes_left_out(diff_states(before, after)) == []
    assert scalar(lab, "SELECT COUNT(*) FROM transaction_chains "
                             "WHERE type NOT LIKE 'TransactionChains::IntegrityCheck::%%'") == chains


def checksums_of_dump(lab, path) -> dict[str, tuple]:
    """table_checksums() of the database a dump holds (loaded into a scratch database)."""
    import gzip
    import subprocess

    scratch, kwargs = f"{lab.cfg.vpsadmin_db}_dump", lab.cfg.mysql_kwargs()
    query(lab, f"CREATE DATABASE `{scratch}`")
    try:
        subprocess.run(["mysql", f"--host={kwargs['host']}", f"--port={kwargs['port']}", f"--user={kwargs['user']}",
                        scratch], input=gzip.decompress(path.read_bytes()), check=True,
                       env={**os.environ, "MYSQL_PWD": kwargs["passwd"] or ""})
        rows = query(lab, "SELECT TABLE_NAME, ENGINE, TABLE_COLLATION FROM information_schema.tables "
                          "WHERE TABLE_SCHEMA = %s", (scratch,))
        return {name: (engine, collation, query(lab, f"CHECKSUM TABLE `{scratch}`.`{name}` EXTENDED")[0][1])
                for name, engine, collation in rows}
    finally:
        query(lab, f"DROP DATABASE `{scratch}`")


def test_failed_migration_restores_the_dump_taken_right_before_it(lab_world, capfd):
    """The timezone step marked done without running leaves the time zone tables empty (as a
    v1.22 server has them): the datetime migration fails, the gate is approved, the restore
    brings every table back to the dump taken right before the migration, after the cluster
    was quiesced: what the prerequisites and the database section did stays done (restoring
    the pre-upgrade backup would requeue executed transactions and bring back deleted
    backup mounts)."""
    lab = lab_world()
    before = table_checksums(lab)
    state, tis, answered = run_dag(DAG_ID, real_run_conf(), mark_success_pattern=r"db\.timezones",
                                   answers={GATE: "Approve", "api.approve_restore": "Approve"})
    assert state == "failed"
    assert tis["api.migrate_pinned"] == "failed"
    assert ("api.approve_restore", "Approve") in answered
    assert tis["api.restore_database"] == "success"
    assert tis["api.environments"] == "upstream_failed"
    # the run report names the step that stopped the run and what it left
    assert tis["run_report"] == "failed"
    out = capfd.readouterr().out
    assert "FAILED api.migrate_pinned; left: " in out and "rake db:migrate VERSION=20150630072821" in out
    after = table_checksums(lab)
    assert set(after) == set(before), "the migration's tables are gone"
    dumps = list((lab.node_root("db") / "var/backups/vpsadmin").glob("*-before-migrate-pinned-*.sql.gz"))
    assert len(dumps) == 1 and checksums_of_dump(lab, dumps[0]) == after, "the restore loaded that dump"
    assert scalar(lab, "SELECT COUNT(*) FROM vps_mount m INNER JOIN storage_export e ON m.storage_export_id = e.id "
                       "WHERE e.data_type = 'backup'") == 0, "the prerequisites' work stays done"
    assert scalar(lab, "SELECT COUNT(*) FROM transactions WHERE t_done = 0") == 0, "nothing requeued"
    assert scalar(lab, "SELECT COUNT(*) FROM vps LEFT JOIN servers ON vps_server = server_id "
                       "WHERE server_id IS NULL") == 0, "the database section's work stays done"


def test_the_upgrade_survives_injected_faults_and_ends_in_the_same_world(lab_world, fault_free, capsys):
    """The whole upgrade under faults injected from SEED: it succeeds after retries and ends in
    the fault-free run's world, every dump it recorded intact."""
    conf = real_run_conf(members_expiration=True)
    if "fingerprint" not in fault_free:  # run on its own: a fault-free run of its own first
        baseline = lab_world()
        state, tis, _ = run_dag(DAG_ID, conf, answers=APPROVE_ALL)
        assert state == "success", {t: s for t, s in tis.items() if s != "success"}
        fault_free["fingerprint"] = fingerprint(baseline)
    expected = fault_free["fingerprint"]

    lab = lab_world()
    with Chaos(lab, SEED) as chaos:
        state, tis, _ = run_dag(DAG_ID, conf, answers=APPROVE_ALL, adjust=quick_retries)
    assert state == "success", (SEED, chaos.hits, {t: s for t, s in tis.items() if s != "success"})
    found = fingerprint(lab)
    assert diff(expected["tables"], found["tables"]) == []
    assert found["nas"] == expected["nas"] and found["snapshots"] == expected["snapshots"]
    assert_recorded_dumps_intact(lab)
    with capsys.disabled():
        print(f"\nfault injection, seed {SEED}: {len(chaos.hits)} fault(s) injected, all survived:\n  "
              + "\n  ".join(chaos.hits))
    assert len(chaos.hits) >= AT_LEAST
