"""DAGs vpsadmin_lifetimes and vpsadmin_daily_report on one lab world brought to vpsAdmin 2.0,
its users and VPSes put at every point of their lifetime (lab/vpsadmin/lifetimes.py CASES) and
moved forward in time: plan mode changes nothing; the scheduled run moves exactly the objects
computed here by hand from the seeded dates and sends exactly the expected mails; a second run
that day changes nothing; a locked object waits for the next run; the report's figures are the
database's. One world for the module: the tests run in order on it."""

from __future__ import annotations

from collections import Counter
from contextlib import closing
from datetime import UTC, datetime, timedelta

import pytest

from tests.helpers import (
    AirflowApiServer,
    db_conn,
    diff_states,
    query,
    run_dag,
    scalar,
    started_lab,
    wait_for_empty_queue,
    world_state,
)

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("airflow_db")]

LIFETIMES, REPORT = "vpsadmin_lifetimes", "vpsadmin_daily_report"
TRAVEL_DAYS = 2  # the world is seeded as of now, then the clock moves this far forward
MAIL_DAYS, GRACE, USER_NEW, VPS_NEW = 7, 14, 14, 7  # the DAG's defaults (the runbook's numbers)
STATES = ("active", "suspended", "soft_delete", "hard_delete", "deleted")
LIVE_TABLES = ("servers_status", "vps_status", "transaction_chains", "transactions", "resource_locks")
LIVE_NODE_FILES = ("var/log/", "var/run/", "var/lib/lab/vpsadmind")


def changes(before: dict, after: dict) -> list[str]:
    """What differs in the world but what the running cluster rewrites by itself."""
    return [c for c in diff_states(before, after) if not c.startswith(tuple(f"tables: {t}" for t in LIVE_TABLES))
            and not any(f"/{p}" in c for p in LIVE_NODE_FILES)]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A started lab at vpsAdmin 2.0 (tests/lab/v2_0_cluster.py's short way), the 2.0 mail
    templates installed, the lifetime cases seeded as of now and the clock moved TRAVEL_DAYS
    forward; its connections in the environment for the module."""
    from lab.vpsadmin import lifetimes
    from tests.lab.v2_0_cluster import upgrade_to_v2_0

    with started_lab(tmp_path_factory.mktemp("lab"), reset_timezones=True) as lab:
        wait_for_empty_queue(lab)
        upgrade_to_v2_0(lab)
        lifetimes.finish_short_upgrade(lab)
        with closing(db_conn(lab)) as conn:
            lifetimes.install_mail_templates(conn)
            cases = lifetimes.seed_lifetimes(conn, datetime.now(UTC).replace(tzinfo=None))
            lifetimes.travel(conn, TRAVEL_DAYS)
        yield lab, cases


def fast_waits(dag) -> None:
    for task in dag.tasks:
        task.poll_interval, task.retry_delay = 0.5, timedelta(seconds=1)


def scheduled(minutes: int = 0) -> datetime:
    """When the scheduler makes a run (its run_after and logical date), `minutes` from now: the
    runs of one test fall on one day unless the test starts just before midnight UTC."""
    return datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=minutes)


def objects(lab) -> dict[tuple[str, int], tuple[str, datetime | None]]:
    """(class, id) -> (state, expiration) of every user and VPS."""
    rows = [("User", *r) for r in query(lab, "SELECT m_id, object_state, expiration_date FROM members")]
    rows += [("Vps", *r) for r in query(lab, "SELECT vps_id, object_state, expiration_date FROM vps")]
    return {(cls, i): (STATES[state], expires) for cls, i, state, expires in rows}


def running(lab) -> set[int]:
    """The containers running on the hypervisors (`vzlist -H -o ctid`)."""
    from lab.core.nodes import run_in_node

    ids = set()
    for node in ("node1", "node2"):
        result = run_in_node(lab.node_root(node), "vzlist -H -o ctid")
        ids |= {int(word) for word in result.stdout.decode().split()}
    return ids


def mail_logs(lab, since_id: int = 0) -> Counter:
    """(template, user id) of the mails logged after mail_logs.id `since_id`."""
    return Counter(query(lab, "SELECT t.name, l.user_id FROM mail_logs l INNER JOIN mail_templates t "
                              "ON t.id = l.mail_template_id WHERE l.id > %s", (since_id,)))


def expected_run(lab, cases) -> tuple[dict, Counter]:
    """By hand from CASES and TRAVEL_DAYS: {(class, id): new state} and the mails (template,
    user) of the runbook's six jobs in their order."""
    from lab.vpsadmin.lifetimes import CASE

    owner = dict(query(lab, "SELECT vps_id, m_id FROM vps"))
    vps_of = {}
    for vps_id, m_id in owner.items():
        vps_of.setdefault(m_id, []).append(vps_id)
    before = objects(lab)
    moves, mails = {}, Counter()
    for name, (cls, object_id) in cases.items():
        case = CASE[name]
        days = None if case.days is None else case.days - TRAVEL_DAYS
        user = object_id if cls == "User" else owner[object_id]
        if cls == "User" and case.state == "active" and days is not None and days < MAIL_DAYS and case.mailer:
            mails["expiration_user_active", user] += 1
        if cls == "Vps" and case.state == "active" and days is not None and days < MAIL_DAYS and case.mailer:
            mails["expiration_vps_active", user] += 1
        if days is None or days >= 0:
            continue
        if cls == "User" and case.state == "active" and days < -GRACE:
            moves[cls, object_id] = "suspended"
            mails["user_suspend", user] += 1
        # User::SoftDelete and User::HardDelete take the user's VPSes along; 2.0.0 compares
        # object_state with the states' names, which MySQL reads as 0: only the active ones
        elif cls == "User" and case.state == "suspended":
            moves[cls, object_id] = "soft_delete"
            mails["user_soft_delete", user] += 1
            for vps_id in vps_of.get(object_id, []):
                if before["Vps", vps_id][0] == "active":
                    moves["Vps", vps_id] = "soft_delete"
        elif cls == "User" and case.state == "soft_delete":
            moves[cls, object_id] = "hard_delete"
            for vps_id in vps_of.get(object_id, []):
                if before["Vps", vps_id][0] == "active":
                    moves["Vps", vps_id] = "hard_delete"
        elif cls == "Vps":
            moves[cls, object_id] = STATES[STATES.index(case.state) + 1]
            if case.state == "active":
                mails["vps_suspend", user] += 1
    return moves, mails


def record(dag_id: str, task_id: str) -> dict:
    from tests.e2e.vpsadmin_upgrade_v2.integrity import task_result

    return task_result(dag_id, task_id)


def test_plan_mode_lists_what_a_run_would_do_and_changes_nothing(world):
    lab, cases = world
    before, mails_before = world_state(lab), scalar(lab, "SELECT COUNT(*) FROM mail_logs")
    moves, mails = expected_run(lab, cases)

    state, tis, _ = run_dag(LIFETIMES, {"dry_run": True}, adjust=fast_waits)
    assert state == "success", tis
    assert changes(before, world_state(lab)) == []
    assert scalar(lab, "SELECT COUNT(*) FROM mail_logs") == mails_before
    planned = record(LIFETIMES, "lifetimes.progress_vps")["planned"]["Vps"]
    assert {int(i): target for i, (_, target) in planned.items()} == {
        i: s for (cls, i), s in moves.items() if cls == "Vps" and ("Vps", i) in cases.values()}
    mailed = record(LIFETIMES, "lifetimes.mail_users")["changes"]
    assert len(mailed) == sum(n for (t, _), n in mails.items() if t == "expiration_user_active")


def test_the_scheduled_run_moves_exactly_the_expected_objects_and_mails_their_owners(world, capfd):
    from lab.vpsadmin.lifetimes import mails as delivered
    from tests.helpers import lab_secrets, run_artifacts, secret_holders

    lab, cases = world
    secrets = lab_secrets(lab)
    holders = secret_holders(lab, secrets)
    locked_vps = cases["vps_suspended_expired"][1]
    running_before = running(lab)
    moves, mails = expected_run(lab, cases)
    assert len(moves) >= 8 and sum(mails.values()) >= 7, "every kind of move and mail is in the world"
    before, last_mail = objects(lab), scalar(lab, "SELECT COALESCE(MAX(id), 0) FROM mail_logs")
    spooled = len(delivered(lab))
    # another chain holds one of the VPSes: it must wait for the next run, the DAG not fail
    chain = query(lab, "INSERT INTO transaction_chains (name, type, state, size, progress, created_at, updated_at) "
                       "VALUES ('test_lock', 'TransactionChains::Test', 1, 0, 0, UTC_TIMESTAMP(), UTC_TIMESTAMP()) "
                       "RETURNING id")[0][0]
    query(lab, "INSERT INTO resource_locks (resource, row_id, transaction_chain_id, created_at, updated_at) "
               "VALUES ('Vps', %s, %s, UTC_TIMESTAMP(), UTC_TIMESTAMP())", (locked_vps, chain))

    started = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    state, tis, _ = run_dag(LIFETIMES, None, run_after=scheduled(), adjust=fast_waits)
    assert state == "success", tis

    after = objects(lab)
    changed = {key: after[key][0] for key in after if after[key][0] != before[key][0]}
    held = {("Vps", locked_vps): moves.pop(("Vps", locked_vps))}
    assert changed == moves
    assert record(LIFETIMES, "lifetimes.progress_vps")["left"] == [
        f"Vps {locked_vps}: resource locked by another chain; the next run moves it"]
    for (cls, object_id), new_state in moves.items():
        expires = after[cls, object_id][1]
        if (cls, new_state) == ("User", "suspended"):
            assert started + timedelta(days=USER_NEW) <= expires <= datetime.now(UTC).replace(
                tzinfo=None) + timedelta(days=USER_NEW), (object_id, expires)
        elif cls == "Vps" and (cls, object_id) in cases.values():
            assert started + timedelta(days=VPS_NEW) <= expires <= datetime.now(UTC).replace(
                tzinfo=None) + timedelta(days=VPS_NEW), (object_id, expires)
    # suspended users' VPSes, and every VPS that left `active`, are stopped; the others run on
    stopped = {i for (cls, i), new in moves.items() if cls == "Vps"} | {
        vps_id for (vps_id,) in query(lab, "SELECT vps_id FROM vps WHERE m_id IN %s", (
            tuple(i for (cls, i), new in moves.items() if cls == "User" and new == "suspended") or (0,),))}
    assert stopped & running_before, "the run stops VPSes that were running"
    assert running(lab) == running_before - stopped
    assert mail_logs(lab, last_mail) == mails
    assert len(delivered(lab)) - spooled == sum(mails.values()), "every logged mail was delivered"
    # no secret in the run's logs or XComs, and no new file on a node holds one
    output = capfd.readouterr()
    shown = output.out + output.err + run_artifacts(LIFETIMES)
    assert "rake vpsadmin:lifetimes:progress" in shown and "EXECUTE=yes" in shown, "the logs were read"
    assert [name for name, value in secrets.items() if value in shown] == []
    assert secret_holders(lab, secrets) == holders
    off = [i for name, (cls, i) in cases.items() if name.endswith("mailer_off")]
    assert not [m for m in delivered(lab)[spooled:] if any(str(i) in m["subject"] for i in off)]

    # a second run the same day changes nothing and mails nobody again
    state_before, last_mail = world_state(lab), scalar(lab, "SELECT MAX(id) FROM mail_logs")
    state, tis, _ = run_dag(LIFETIMES, None, run_after=scheduled(1), adjust=fast_waits)
    assert state == "success", tis
    assert changes(state_before, world_state(lab)) == []
    assert mail_logs(lab, last_mail) == Counter()

    # the lock released, the next run moves the VPS it held
    query(lab, "DELETE FROM resource_locks WHERE transaction_chain_id = %s", (chain,))
    query(lab, "UPDATE transaction_chains SET state = 2 WHERE id = %s", (chain,))
    state, tis, _ = run_dag(LIFETIMES, None, run_after=scheduled(2), adjust=fast_waits)
    assert state == "success", tis
    assert {key: objects(lab)[key][0] for key in held} == held


def test_the_daily_report_goes_out_once_with_the_databases_figures(world, monkeypatch):
    from lab.vpsadmin.lifetimes import REPORT_RECIPIENT
    from lab.vpsadmin.lifetimes import mails as delivered

    lab, _ = world
    spooled = len(delivered(lab))
    with AirflowApiServer(monkeypatch):
        state, tis, _ = run_dag(REPORT, None, run_after=scheduled(3), adjust=fast_waits)
    assert state == "success", tis
    reports = delivered(lab)[spooled:]
    assert len(reports) == 1 and reports[0]["to"] == [REPORT_RECIPIENT[1]]
    sent_at, chain = query(lab, "SELECT l.created_at, t.transaction_chain_id FROM mail_logs l "
                                "INNER JOIN mail_templates mt ON mt.id = l.mail_template_id "
                                "INNER JOIN transactions t ON t.t_id = l.transaction_id "
                                "WHERE mt.name = 'daily_report' ORDER BY l.id DESC LIMIT 1")[0]
    window = "DATE_ADD(%s, INTERVAL 1 DAY) >= %%s"
    expected = {
        "New users": scalar(lab, f"SELECT COUNT(*) FROM members WHERE object_state = 0 AND {window % 'created_at'}",
                            (sent_at,)),
        "Suspended users": changed_count(lab, "User", 1, sent_at),
        "Soft-deleted users": changed_count(lab, "User", 2, sent_at),
        "Hard-deleted users": changed_count(lab, "User", 3, sent_at),
        "Suspended VPSes": changed_count(lab, "Vps", 1, sent_at),
        "Soft-deleted VPSes": changed_count(lab, "Vps", 2, sent_at),
        "Hard-deleted VPSes": changed_count(lab, "Vps", 3, sent_at),
        # counted while the report's own chain was being built: its mail was not done yet
        "Transactions done": scalar(lab, "SELECT COUNT(*) FROM transactions WHERE t_done = 1 AND "
                                         "DATE_ADD(created_at, INTERVAL 1 DAY) > %s AND transaction_chain_id <> %s",
                                    (sent_at, chain)),
        "Transactions failed": scalar(lab, "SELECT COUNT(*) FROM transactions WHERE t_done = 1 AND t_success = 0 "
                                           "AND DATE_ADD(created_at, INTERVAL 1 DAY) > %s "
                                           "AND transaction_chain_id <> %s", (sent_at, chain)),
    }
    body = dict(line.split(": ", 1) for line in reports[0]["body"].splitlines() if ": " in line)
    assert {k: int(body[k]) for k in expected} == expected
    assert expected["Suspended VPSes"] > 0 and expected["Transactions done"] > 0, "the lifetimes run is in it"
    figures = record(REPORT, "report_daily")["figures"]
    assert {k: figures[k] for k in ("users_new", "vps_suspended", "transactions_done", "transactions_failed")} == {
        "users_new": expected["New users"], "vps_suspended": expected["Suspended VPSes"],
        "transactions_done": expected["Transactions done"], "transactions_failed": expected["Transactions failed"]}
    assert f"| VPSes suspended | {expected['Suspended VPSes']} |" in run_note(REPORT)

    # a second run that day sends nothing
    state, tis, _ = run_dag(REPORT, None, run_after=scheduled(4), adjust=fast_waits)
    assert state == "success", tis
    assert len(delivered(lab)) == spooled + 1


def changed_count(lab, cls: str, state: int, t) -> int:
    table, key = ("members", "m_id") if cls == "User" else ("vps", "vps_id")
    return scalar(lab, f"SELECT COUNT(*) FROM {table} o INNER JOIN object_states s ON s.class_name = %s "
                       f"AND o.{key} = s.row_id WHERE o.object_state = %s AND s.state = %s "
                       "AND DATE_ADD(s.created_at, INTERVAL 1 DAY) >= %s", (cls, state, state, t))


def run_note(dag_id: str) -> str:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        run = session.scalars(select(DagRun).where(DagRun.dag_id == dag_id).order_by(DagRun.id.desc())).first()
        return run.note or ""


@pytest.mark.parametrize("fault", ["worker killed", "ssh cut"])
def test_a_progress_step_survives_a_killed_worker_and_a_cut_connection(world, fault):
    """The step that destroys (progress-vps: hard_delete) with its rake job under a fault: the
    retry attaches to the job or takes its result; rake runs once and each VPS moves once."""
    from lab.vpsadmin.lifetimes import travel
    from operators.vpsadmin_scheduled.lifetimes import ProgressOperator
    from tests.e2e.vpsadmin_upgrade_v2.test_faults import cut_ssh_during, job_starts, kill_worker_during, run_step
    from tests.helpers import detached_step, node_shim, step_context

    lab, _ = world
    with closing(db_conn(lab)) as conn:
        travel(conn, 8)  # the VPSes the earlier runs moved expire again
    due = {i for (i,) in query(lab, "SELECT vps_id FROM vps WHERE expiration_date < UTC_TIMESTAMP() "
                                    "AND object_state <> 3")}
    assert len(due) >= 3
    last_log = scalar(lab, "SELECT MAX(id) FROM object_states")
    counter = node_shim(lab, "vpsadmin", "rake", "sleep 3")

    def step():
        return detached_step(ProgressOperator, step="lifetimes.progress-vps", objects=["Vps"],
                             new_expiration=VPS_NEW * 86400, poll_interval=0.5)

    op, context = step(), step_context(run_id=f"fault_progress_{fault.replace(' ', '_')}")
    starts = job_starts(lab, "vpsadmin", op, context) if fault == "ssh cut" else 0  # one job key for both
    if fault == "worker killed":
        kill_worker_during(lab, "vpsadmin", op, context)
        record = None
    else:
        record = cut_ssh_during(lab, "vpsadmin", op, context)
    record = record or run_step(step(), context)  # the retry
    assert record["applied"] and job_starts(lab, "vpsadmin", op, context) == starts + 1, \
        "rake with EXECUTE=yes ran once"
    assert counter.exists()
    logs = Counter(i for (i,) in query(lab, "SELECT row_id FROM object_states WHERE class_name = 'Vps' AND id > %s",
                                       (last_log,)))
    assert set(logs) == due and set(logs.values()) == {1}, "every due VPS moved, each once"
    assert not query(lab, "SELECT vps_id FROM vps WHERE expiration_date < UTC_TIMESTAMP() AND object_state <> 3")
