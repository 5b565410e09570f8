"""vpsadmin_upgrade_v2's v1.22 sections (preflight, prerequisites, database) end to end on
fresh lab worlds: real MariaDB, real SSH to sandboxed nodes, the lab's vpsAdmind executing
the queued transactions, real dag.test() runs. Only those sections run here
(DAG.partial_subset); test_whole_upgrade.py runs the whole DAG."""

from __future__ import annotations

import json
import threading
import time

import pytest

from lab.vpsadmin.v1_22.seed import KNOWN_TEXT
from lab.vpsadmin.world import CLUSTER_CRONTAB, site_crontab
from tests.e2e.vpsadmin_upgrade_v2 import DAG_ID, GATE, NAS_ROOT, real_run_conf
from tests.helpers import (
    diff_states,
    node_files,
    query,
    rendered_fields,
    run_dag,
    scalar,
    server_id,
    table_checksums,
    vpsadmind,
    world_state,
)

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("airflow_db")]

V122_ONLY = r"^(preflight|prereq|db)\."  # the sections this file tests
ENCODING_TABLES = ["members", "members_changes", "sysconfig", "vps"]


def node_file(lab, node: str, path: str):
    p = lab.node_root(node) / path.lstrip("/")
    return p.read_text() if p.exists() else None


def backup_mounted_running_vpses(lab) -> set[int]:
    return {r[0] for r in query(lab, """
        SELECT m.vps_id FROM vps_mount m INNER JOIN storage_export e ON m.storage_export_id = e.id
        INNER JOIN vps_status s ON s.vps_id = m.vps_id
        WHERE e.data_type = 'backup' AND m.`default` = 0 AND s.vps_up = 1""")}


def assert_world_upgraded(lab, umount_expected: set[int]) -> None:
    info = lab.info
    assert scalar(lab, "SELECT COUNT(*) FROM vps LEFT JOIN servers ON vps_server = server_id "
                       "WHERE server_id IS NULL") == 0
    assert not query(lab, "SELECT vps_id FROM vps WHERE vps_id IN %s", (info["stray_vps_ids"],))
    assert scalar(lab, "SELECT COUNT(*) FROM vps_ip WHERE vps_id = 0") == 0
    assert scalar(lab, "SELECT COUNT(*) FROM vps_ip ip LEFT JOIN vps v ON ip.vps_id = v.vps_id "
                       "WHERE ip.vps_id > 0 AND v.vps_id IS NULL") == 0
    freed = query(lab, "SELECT vps_id FROM vps_ip WHERE ip_id IN %s",
                  (info["zero_ip_ids"] + info["orphan_ip_ids"],))
    assert freed and all(vps_id is None for (vps_id,) in freed)
    engines = dict(query(lab, "SELECT TABLE_NAME, ENGINE FROM information_schema.tables WHERE "
                              "TABLE_SCHEMA = %s AND TABLE_NAME IN ('log','node_pubkey','transactions')",
                         (lab.cfg.vpsadmin_db,)))
    assert engines == {"log": "InnoDB", "node_pubkey": "InnoDB", "transactions": "InnoDB"}
    for table, column, key_column, key, text in KNOWN_TEXT:
        got = scalar(lab, f"SELECT `{column}` FROM `{table}` WHERE `{key_column}` = %s", (key,))
        assert got == text, (table, column, key, got)
    assert scalar(lab, "SELECT COUNT(*) FROM mysql.time_zone_name") > 0
    assert str(scalar(lab, "SELECT CONVERT_TZ('2015-01-01 12:00:00','Europe/Prague','UTC')")) == \
        "2015-01-01 11:00:00"
    assert json.loads(scalar(lab, "SELECT cfg_value FROM sysconfig WHERE cfg_name='maintenance_mode'")) is True
    for node in ("vpsadmin", "node1", "node2", "storage1", "backup1"):
        assert node_file(lab, node, "/var/lib/lab/services/vpsadmind").strip() == "stopped", node
        assert node_file(lab, node, "/var/lib/lab/rpm/nc"), node
    crontab = node_file(lab, "vpsadmin", "/var/spool/cron/root")
    jobs = [line for line in CLUSTER_CRONTAB.splitlines() if line and not line.startswith(("#", "MAILTO"))]
    for job in jobs:
        assert f"#airlift-disabled# {job}" in crontab.splitlines()
    active = [line for line in crontab.splitlines() if line.strip() and not line.startswith("#")
              and "=" not in line.split()[0]]
    assert active == site_crontab(lab.cfg).splitlines()[1:], "the site's own job stays on"
    assert node_file(lab, "vpsadmin", "/root/crontab.v1.22") == CLUSTER_CRONTAB + site_crontab(lab.cfg)
    # Every backup mount is gone and the transactions that deleted them finished.
    assert scalar(lab, "SELECT COUNT(*) FROM vps_mount m INNER JOIN storage_export e "
                       "ON m.storage_export_id = e.id WHERE e.data_type = 'backup'") == 0
    queued = query(lab, "SELECT t_type, t_vps, t_done, t_success, t_param FROM transactions "
                        "WHERE t_type IN (5301, 5303) AND t_m_id = 0 ORDER BY t_id")
    assert queued and all(t[2] == 1 and t[3] == 1 for t in queued), queued
    umounted = {t[1] for t in queued if t[0] == 5303}
    assert umounted == umount_expected
    for veid in umounted:
        node = next(n for n in ("node1", "node2") if node_file(lab, n, f"/etc/vz/conf/{veid}.conf"))
        assert "/mnt/backup" not in node_file(lab, node, "/var/lib/lab/mounts")
        assert "/mnt/backup" not in node_file(lab, node, f"/etc/vz/conf/{veid}.mount")
    backups = list((lab.node_root("db") / "var/backups/vpsadmin").iterdir())
    assert any(p.name.endswith(".sql.gz") for p in backups)
    assert any("encoding-latin1" in p.name for p in backups)


def test_upgrade_then_rerun_changes_nothing(lab_world):
    lab = lab_world()
    umount_expected = backup_mounted_running_vpses(lab)
    assert umount_expected
    state, tis, answered = run_dag(DAG_ID, real_run_conf(), answers={GATE: "Approve"},
                                   task_regex=V122_ONLY)
    assert state == "success", tis
    assert answered == [(GATE, "Approve")]
    assert_world_upgraded(lab, umount_expected)

    before = world_state(lab)
    state, tis, answered = run_dag(DAG_ID, real_run_conf(), answers={GATE: "Approve"},
                                   task_regex=V122_ONLY)
    assert state == "success", tis
    assert answered == [], "a second run has nothing to approve"
    assert tis["db.encoding_dump"] == "skipped"
    assert diff_states(before, world_state(lab)) == []


def test_plan_mode_changes_nothing(lab_world):
    lab = lab_world()
    before = world_state(lab)
    state, tis, answered = run_dag(DAG_ID, {"dry_run": True, "skip_nodes": ["storage1"]})
    assert state == "success", tis
    assert answered == []
    assert diff_states(before, world_state(lab)) == []
    assert {t for t in tis if t.startswith("prereq.install_nc[")} == {
        f"prereq.install_nc[{name}]" for name in ("vpsadmin.prg.vpsfree.cz", "node1.prg.vpsfree.cz",
                                                         "node2.brq.vpsfree.cz", "backup1.brq.vpsfree.cz")
    }, "one task per node, labelled by its name, storage1 left out by skip_nodes"
    # The Rendered Template tab shows the SQL and the script a step ran.
    sql = rendered_fields(DAG_ID, "db.remove_stray_vps")["sql"]
    assert "DELETE vps FROM vps LEFT JOIN servers ON vps_server = server_id" in sql and "-- name: apply" in sql
    script = rendered_fields(DAG_ID, "prereq.install_nc", map_index=0)["script"]
    assert script.startswith("#!/bin/bash\n") and "yum -y install nc" in script


def test_reject_at_the_gate_leaves_the_tables_untouched(lab_world):
    lab = lab_world()
    at_gate = {}

    def snapshot(task_id):
        at_gate.update(table_checksums(lab, ENCODING_TABLES))

    state, tis, answered = run_dag(DAG_ID, real_run_conf(), answers={GATE: "Reject"}, on_gate=snapshot,
                                   task_regex=V122_ONLY)
    assert answered == [(GATE, "Reject")]
    assert tis["db.encoding_swap"] == "skipped"
    assert tis["db.timezones"] == "skipped"
    assert at_gate and table_checksums(lab, ENCODING_TABLES) == at_gate
    name_id = next(k for t, c, _, k, v in KNOWN_TEXT if t == "members" and c == "m_name")
    assert scalar(lab, "SELECT m_name FROM members WHERE m_id = %s", (name_id,)) != \
        next(v for t, c, _, k, v in KNOWN_TEXT if t == "members" and c == "m_name")


@pytest.mark.parametrize("conf, message", [
    # (host names with shell characters never get this far: the trigger form and the REST API
    # refuse them by the params' schema, tests/dags test_runs_with_shell_characters_are_refused)
    ({"backup_dir": "/srv/no-such-dir"}, "does not exist on the DB host"),
    ({"backup_dir": "var/backups", "require_approval": False},
     ("must be an absolute path", "require_approval: not a parameter of this DAG (approval gates are a deployment")),
    ({"skip_nodes": ["node9"]}, "no server named 'node9'"),
])
def test_bad_params_fail_first_and_change_nothing(lab_world, capfd, conf, message):
    lab = lab_world()
    before = world_state(lab)
    state, tis, _ = run_dag(DAG_ID, {**conf, "dry_run": False})
    assert state == "failed"
    assert tis["preflight.check_params"] == "failed"
    # the restore gates run after anything (all_done) and skip themselves: no migration ran; the
    # restores depend on the dumps they would load, which never ran; the run report says so
    for section in ("api", "finalize"):
        assert tis.pop(f"{section}.approve_restore") == "skipped"
        assert tis.pop(f"{section}.restore_database") == "upstream_failed"
    assert tis.pop("run_report") == "failed"
    assert all(s in ("upstream_failed", None) for t, s in tis.items() if t != "preflight.check_params"), tis
    out = capfd.readouterr().out
    assert [m for m in (message if isinstance(message, tuple) else (message,)) if m not in out] == []
    assert diff_states(before, world_state(lab)) == []


def test_a_failed_unmount_stops_the_run_and_names_the_transaction(lab_world, capfd):
    """A backup mount someone already unmounted by hand: vpsAdmind's umount fails (exit 32,
    as 1.22 accepts no other exit code there); the wait step names the failed transaction and
    the run stops before the database section."""
    lab = lab_world()
    veid = min(backup_mounted_running_vpses(lab))
    node = next(n for n in ("node1", "node2") if node_file(lab, n, f"/etc/vz/conf/{veid}.conf"))
    mtab = lab.node_root(node) / "var/lib/lab/mounts"
    mtab.write_text("".join(line for line in mtab.read_text().splitlines(keepends=True)
                            if f"/vz/root/{veid}/mnt/backup\t" not in line))
    state, tis, _ = run_dag(DAG_ID, real_run_conf(), task_regex=V122_ONLY)
    assert state == "failed"
    assert tis["prereq.wait_transactions"] == "failed"
    assert tis["db.remove_stray_vps"] == "upstream_failed"
    out = capfd.readouterr().out
    assert "type 5303 on node" in out and f"VPS {veid}" in out and "not mounted" in out



def when_the_run_has_started(action) -> threading.Thread:
    """`action` in a thread, once the DAG's run is running (the queue waits come later)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    def wait_then_act():
        with create_session() as session:
            before = session.scalar(select(func.count()).select_from(DagRun).where(DagRun.dag_id == DAG_ID))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with create_session() as session:
                if session.scalar(select(func.count()).select_from(DagRun).where(DagRun.dag_id == DAG_ID)) > before:
                    break
            time.sleep(0.5)
        action()

    thread = threading.Thread(target=wait_then_act, daemon=True)
    thread.start()
    return thread


def test_a_transaction_that_fails_while_the_queue_drains_stops_the_run(lab_world, capfd):
    """A transaction queued before the run (not by the DAG) that fails while the run waits for
    the queue: named, and the run stops before the database section."""
    lab = lab_world()
    vpsadmind(lab, "node1", "stop")
    node1 = server_id(lab, "node1")
    query(lab, "INSERT INTO transactions (t_time, t_m_id, t_server, t_vps, t_type, t_urgent, t_priority, "
               "t_success, t_done, t_param) VALUES (UNIX_TIMESTAMP(), 1, %s, 99999, 1003, 0, 0, 0, 0, '[]')",
          (node1,))
    t_id = scalar(lab, "SELECT MAX(t_id) FROM transactions")
    starter = when_the_run_has_started(lambda: vpsadmind(lab, "node1", "start"))
    state, tis, _ = run_dag(DAG_ID, real_run_conf(), task_regex=V122_ONLY)
    starter.join()
    assert scalar(lab, "SELECT t_done + t_success FROM transactions WHERE t_id = %s", (t_id,)) == 1, "it failed"
    assert state == "failed"
    assert tis["prereq.no_transactions"] == "failed"
    assert tis["db.remove_stray_vps"] == "upstream_failed" and tis["prereq.delete_backup_mounts"] == "upstream_failed"
    out = capfd.readouterr().out
    assert "1 transaction(s) failed since the run started" in out and f"t_id {t_id} type 1003 on node {node1}" in out


def test_a_skipped_node_gets_nothing_queued_waited_on_or_changed(lab_world, capfd):
    """node2 is dead (no vpsAdmind) and skipped: its VPSes' backup mounts stay, nothing is
    queued for it, the queue waits do not wait for its queue, and the report says what was
    left for it."""
    lab = lab_world()
    vpsadmind(lab, "node2", "stop")
    node2 = server_id(lab, "node2")
    last_t_id = scalar(lab, "SELECT MAX(t_id) FROM transactions")
    node2_backup_mounts = scalar(lab, "SELECT COUNT(*) FROM vps_mount m JOIN vps v ON v.vps_id = m.vps_id "
                                      "JOIN storage_export e ON m.storage_export_id = e.id "
                                      "WHERE e.data_type = 'backup' AND v.vps_server = %s", (node2,))
    assert node2_backup_mounts
    query(lab, "INSERT INTO transactions (t_time, t_m_id, t_server, t_vps, t_type, t_urgent, t_priority, "
               "t_success, t_done, t_param) VALUES (UNIX_TIMESTAMP(), 1, %s, 0, 2008, 0, 0, 0, 0, '{}')", (node2,))
    last_t_id += 1  # queued for node2 before the run: it stays queued
    node2_files = {path: digest for path, digest in node_files(lab).items() if path.startswith("node2/")}
    state, tis, answered = run_dag(DAG_ID, real_run_conf(skip_nodes=["node2"]), answers={GATE: "Approve"},
                                   task_regex=V122_ONLY)
    assert state == "success", {t: s for t, s in tis.items() if s != "success"}
    assert scalar(lab, "SELECT COUNT(*) FROM transactions WHERE t_id > %s AND t_server = %s",
                  (last_t_id, node2)) == 0, "nothing queued for the skipped node"
    assert scalar(lab, "SELECT COUNT(*) FROM vps_mount m JOIN vps v ON v.vps_id = m.vps_id "
                       "JOIN storage_export e ON m.storage_export_id = e.id "
                       "WHERE e.data_type = 'backup'") == node2_backup_mounts, "only node2's backup mounts stay"
    assert {path: digest for path, digest in node_files(lab).items() if path.startswith("node2/")} == node2_files, \
        "nothing changed on the skipped node"
    out = capfd.readouterr().out
    assert "Prerequisites: " in out and "left: #" in out and "(node skipped)" in out
    assert "transaction(s) queued on node2" in out


def test_a_node_whose_daemon_died_is_a_refusal_in_the_plan_and_stops_a_real_run_first(lab_world, capfd):
    """vpsAdmind dead on node2 (not stopped by the upgrade): plan mode lists the refusal and
    plans everything else; a real run stops in preflight before any change."""
    lab = lab_world()
    vpsadmind(lab, "node2", "stop")
    before = world_state(lab)
    state, tis, _ = run_dag(DAG_ID, {"dry_run": True}, task_regex=V122_ONLY)
    assert state == "success", {t: s for t, s in tis.items() if s != "success"}
    assert "refused (a real run stops here): node2.brq.vpsfree.cz: vpsAdmind is not running" in capfd.readouterr().out
    state, tis, _ = run_dag(DAG_ID, real_run_conf(), task_regex=V122_ONLY)
    assert state == "failed" and tis["preflight.inventory"] == "failed"
    assert tis["preflight.db_backup"] == "upstream_failed" and tis["prereq.maintenance_mode"] == "upstream_failed"
    out = capfd.readouterr().out
    assert "node2.brq.vpsfree.cz: vpsAdmind is not running" in out and "skip a dead node with skip_nodes" in out
    assert diff_states(before, world_state(lab)) == []


def test_text_the_encoding_fix_cannot_hold_is_a_refusal_before_the_first_change(lab_world, capfd):
    """A member name with an emoji, double-encoded as v1.22 stored it: the repaired text needs
    4-byte UTF-8, which the utf8 tables cannot hold. Plan mode lists the row as a refusal; a
    real run stops in preflight, before the first change."""
    import MySQLdb

    lab = lab_world()
    m_id = scalar(lab, "SELECT MIN(m_id) FROM members")
    conn = MySQLdb.connect(db=lab.cfg.vpsadmin_db, charset="latin1", **lab.cfg.mysql_kwargs())  # as v1.22's PHP
    try:
        conn.cursor().execute("UPDATE members SET m_name = %s WHERE m_id = %s", ("Jan 😀 Novák".encode(), m_id))
        conn.commit()
    finally:
        conn.close()
    before = world_state(lab)
    state, tis, _ = run_dag(DAG_ID, {"dry_run": True}, task_regex=V122_ONLY)
    assert state == "success", {t: s for t, s in tis.items() if s != "success"}
    refusal = "refused (a real run stops here): text that repairs to a 4-byte character"
    out = capfd.readouterr().out
    assert refusal in out and f"- members m_id={m_id}: m_name" in out
    state, tis, _ = run_dag(DAG_ID, real_run_conf(), task_regex=V122_ONLY)
    assert state == "failed" and tis["preflight.upgrade_phase"] == "failed"
    assert tis["prereq.maintenance_mode"] == "upstream_failed"
    assert f"- members m_id={m_id}: m_name" in capfd.readouterr().out
    assert diff_states(before, world_state(lab)) == []


def test_a_nas_entry_that_would_land_on_one_under_private_is_a_refusal_before_the_first_change(lab_world, capfd):
    """A member already keeps a README.txt under private/ next to the one nas.move-data would
    move there: the move refuses to overwrite it, hours into a real run. Plan mode lists the
    path as a refusal; a real run stops in preflight, before the first change."""
    lab = lab_world()
    root = lab.node_root("storage1") / NAS_ROOT
    member = next(d for d in sorted(root.iterdir()) if (d / "README.txt").exists() and not (d / "private").exists())
    (member / "private").mkdir()
    (member / "private/README.txt").write_text("already here\n")
    collision = f"storage1.prg.vpsfree.cz: {NAS_ROOT}/{member.name}: /{NAS_ROOT}/{member.name}/private/README.txt exists"
    before = world_state(lab)
    state, tis, _ = run_dag(DAG_ID, {"dry_run": True}, task_regex=V122_ONLY)
    assert state == "success", {t: s for t, s in tis.items() if s != "success"}
    out = capfd.readouterr().out
    assert "refused (a real run stops here): NAS entries that nas.move-data would move onto" in out
    assert f"- {collision}" in out
    state, tis, _ = run_dag(DAG_ID, real_run_conf(), task_regex=V122_ONLY)
    assert state == "failed" and tis["preflight.upgrade_phase"] == "failed"
    assert tis["prereq.maintenance_mode"] == "upstream_failed"
    assert f"- {collision}" in capfd.readouterr().out
    assert diff_states(before, world_state(lab)) == []


def test_a_retried_gate_does_not_ask_again(lab_world, monkeypatch):
    """The worker is lost right after the approver answered (the task fails after the answer
    arrived): the retried gate takes the answer it was given and asks nobody again."""
    from airflow.providers.standard.operators.hitl import ApprovalOperator

    lab_world()
    real_complete, lost = ApprovalOperator.execute_complete, []

    def complete_then_lose_the_worker(self, context, event):
        if not lost:
            lost.append(self.task_id)
            raise RuntimeError("injected: the worker was lost after the answer arrived")
        return real_complete(self, context, event)

    monkeypatch.setattr(ApprovalOperator, "execute_complete", complete_then_lose_the_worker)
    state, tis, answered = run_dag(DAG_ID, real_run_conf(), answers={GATE: "Approve"}, task_regex=V122_ONLY)
    assert lost == [GATE], "the first try failed after the answer"
    assert state == "success", {t: s for t, s in tis.items() if s != "success"}
    assert answered == [(GATE, "Approve")], "asked once"
    assert tis["db.encoding_swap"] == "success"
