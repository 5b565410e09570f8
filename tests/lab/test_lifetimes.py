"""The API's lifetimes and daily-report rake tasks on a lab world brought to 2.0
(lab/vpsadmin/tools/api_tasks.py through rake on the API host), the chains they fire run by
the lab's vpsAdmind 2.0 (lab/vpsadmin/vpsadmind_v2_0.py), on the cases of
lab/vpsadmin/lifetimes.py. The tests run in file order on one world."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from contextlib import closing

import pytest

from lab.core.nodes import run_in_node
from lab.vpsadmin import lifetimes
from lab.vpsadmin.lifetimes import CASE
from tests.helpers import db_conn, new_lab, query, scalar, table_checksums

pytestmark = pytest.mark.lab

LIVE_TABLES = ("servers_status",)  # the daemons' status reports
DAY = dt.timedelta(days=1)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A seeded world with ZFS pools brought to 2.0 (tests/lab/v2_0_cluster.py), its servers
    in the environment and /var/vpsadmin/mounts on the hypervisors (lifetimes.
    finish_short_upgrade), the mail templates inserted as the upgrade's mail.templates step
    inserts them, then lifetimes.seed_lifetimes."""
    from tests.lab.v2_0_cluster import upgrade_to_v2_0

    lab = new_lab(tmp_path_factory.mktemp("lab"))
    try:
        lab.seed(pools=True)
        lab.start()
        with pytest.MonkeyPatch.context() as mp:
            for name, value in lab.env().items():
                mp.setenv(name, value)
            upgrade_to_v2_0(lab)
        lifetimes.finish_short_upgrade(lab)
        with closing(db_conn(lab)) as conn:
            assert "daily_report" in lifetimes.install_mail_templates(conn)
            as_of = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
            picked = lifetimes.seed_lifetimes(conn, as_of)
        lab.picked, lab.as_of = picked, as_of
        yield lab
    finally:
        lab.destroy()


# -- helpers ---------------------------------------------------------------------------------

def rake(lab, args: str):
    """`rake <args>` in the API checkout on the API host: (exit status, stdout, stderr)."""
    result = run_in_node(lab.node_root("vpsadmin"), f"cd /opt/vpsadminapi && rake {args}", timeout=300)
    return result.returncode, result.stdout.decode(), result.stderr.decode()


def sh(lab, node: str, command: str) -> str:
    result = run_in_node(lab.node_root(node), command)
    return result.stdout.decode() + result.stderr.decode()


def last_chain(lab) -> int:
    return scalar(lab, "SELECT COALESCE(MAX(id), 0) FROM transaction_chains")


def wait_chains(lab, after: int, ignore: tuple[int, ...] = (), timeout: float = 150) -> dict[int, int]:
    """{chain: state} of the chains after `after` (but `ignore`), once none is staged or queued."""
    deadline = time.monotonic() + timeout
    while True:
        states = {c: s for c, s in query(lab, "SELECT id, state FROM transaction_chains WHERE id > %s", (after,))
                  if c not in ignore}
        if all(s not in (0, 1) for s in states.values()):
            return states
        assert time.monotonic() < deadline, query(
            lab, "SELECT t_id, transaction_chain_id, t_server, t_type, t_done, t_success, t_output "
                 "FROM transactions WHERE transaction_chain_id > %s AND t_done = 0", (after,))
        time.sleep(0.5)


def checksums(lab) -> dict:
    return {t: v for t, v in table_checksums(lab).items() if t not in LIVE_TABLES}


def obj(lab, case: str) -> dict:
    cls, row_id = lab.picked[case]
    table, pk = ("members", "m_id") if cls == "User" else ("vps", "vps_id")
    row = query(lab, f"SELECT object_state, expiration_date FROM {table} WHERE {pk} = %s", (row_id,))[0]
    return {"state": lifetimes.STATES[row[0]], "expiration": row[1]}


def user_of(lab, case: str) -> dict:
    cls, row_id = lab.picked[case]
    m_id = row_id if cls == "User" else scalar(lab, "SELECT m_id FROM vps WHERE vps_id = %s", (row_id,))
    login, mail = query(lab, "SELECT m_nick, m_mail FROM members WHERE m_id = %s", (m_id,))[0]
    return {"m_id": m_id, "login": login, "mail": mail}


def vpses_of(lab, case: str) -> list[int]:
    return [r[0] for r in query(lab, "SELECT vps_id FROM vps WHERE m_id = %s ORDER BY vps_id",
                                (lab.picked[case][1],))]


def expired(lab, cls: str, states=None, grace_days: float = 0) -> list[int]:
    """The cases a progress run selects, by hand from CASES."""
    ids = [row_id for name, (c, row_id) in lab.picked.items() if c == cls
           and CASE[name].days is not None and CASE[name].days < -grace_days
           and (states is None or CASE[name].state in states)]
    return sorted(ids)


def vps_node(lab, vps_id: int) -> str:
    return {1: "node1", 2: "node2"}[scalar(lab, "SELECT vps_server FROM vps WHERE vps_id = %s", (vps_id,))]


def running(lab, vps_id: int) -> bool:
    return "running" in sh(lab, vps_node(lab, vps_id), f"vzctl status {vps_id}")


def near(value: dt.datetime, expected: dt.datetime, slack: float = 120) -> bool:
    return value is not None and abs((value - expected).total_seconds()) <= slack


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


# -- tests -------------------------------------------------------------------------------------

def test_progress_dry_run_prints_the_expired_and_changes_nothing(world):
    lab = world
    before = checksums(lab)
    rc, out, err = rake(lab, "vpsadmin:lifetimes:progress OBJECTS=User,Vps")
    assert (rc, err) == (0, ""), err
    lines = out.splitlines()
    assert lines[0] == "Progress lifetimes"
    assert re.fullmatch(r"Progressing objects having expiration date older than "
                        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", lines[1])
    assert lines[2:] == (["Model User"] + [f"  id={i}" for i in expired(lab, "User")]
                         + ["Model Vps"] + [f"  id={i}" for i in expired(lab, "Vps")])
    # the runbook's user suspension: 14 days of grace, active users only
    rc, out, _ = rake(lab, "vpsadmin:lifetimes:progress OBJECTS=User STATES=active GRACE=1209600")
    assert out.splitlines()[2:] == ["Model User"] + [
        f"  id={i}" for i in expired(lab, "User", ["active"], grace_days=14)]
    assert [f"  id={lab.picked['user_active_expired_20d'][1]}"] == out.splitlines()[3:]
    rc, out, _ = rake(lab, "vpsadmin:lifetimes:progress OBJECTS=all")
    assert [line for line in out.splitlines() if line.startswith("Model")] == [
        "Model Mount", "Model SnapshotDownload", "Model User", "Model Vps", "Model Dataset"]
    assert checksums(lab) == before


def test_bad_settings_abort_as_upstream(world):
    lab = world
    before = checksums(lab)
    tail = "(See full trace by running task with --trace)\n"
    rc, out, err = rake(lab, "vpsadmin:lifetimes:progress")
    assert (rc, out) == (1, "Progress lifetimes\n")
    assert err.startswith("rake aborted!\nMissing required environment variable OBJECTS\n")
    assert err.endswith("Tasks: TOP => vpsadmin:lifetimes:progress\n" + tail)
    rc, out, err = rake(lab, "vpsadmin:lifetimes:mail OBJECTS=User")
    assert (rc, out) == (1, "Mail users regarding expiring objects\n")
    assert err.startswith("rake aborted!\nMissing required environment variable DAYS\n")
    assert err.endswith("Tasks: TOP => vpsadmin:lifetimes:mail\n" + tail)
    rc, out, err = rake(lab, "vpsadmin:lifetimes:progress OBJECTS=User STATES=active,expired")
    assert rc == 1 and out.splitlines()[-1].startswith("Progressing objects")
    assert err.startswith("rake aborted!\nInvalid object state 'expired'\n")
    rc, out, err = rake(lab, "vpsadmin:lifetimes:mail OBJECTS=Users DAYS=7")
    assert rc == 1 and err.startswith("rake aborted!\nNameError: uninitialized constant Users\n")
    rc, out, err = rake(lab, "vpsadmin:lifetimes:progress OBJECTS=Node")
    assert rc == 1 and out.endswith("Model Node\n")
    assert err.startswith("rake aborted!\nActiveRecord::StatementInvalid: Mysql2::Error: Unknown column "
                          "'expiration_date' in 'where clause'")
    assert checksums(lab) == before


def test_lifetimes_mail(world):
    lab = world
    after = last_chain(lab)
    logs = scalar(lab, "SELECT COUNT(*) FROM mail_logs")
    sent = len(lifetimes.mails(lab))
    for objects in ("User", "Vps"):
        rc, out, err = rake(lab, f"vpsadmin:lifetimes:mail OBJECTS={objects} DAYS=7 STATES=active")
        assert (rc, out, err) == (0, "Mail users regarding expiring objects\n", "")
    chains = wait_chains(lab, after)
    assert set(chains.values()) == {2}
    assert {r[0] for r in query(lab, "SELECT name FROM transaction_chains WHERE id > %s", (after,))} == {
        "expiration_warning"}
    # by hand: active cases expiring within 7 days whose owner has the mailer on
    expected = set()
    for name, (cls, row_id) in lab.picked.items():
        case = CASE[name]
        if case.state == "active" and case.days is not None and case.days < 7 and case.mailer:
            owner = user_of(lab, name)
            subject = (f"[vpsAdmin] Account {owner['login']} expires" if cls == "User"
                       else f"[vpsAdmin] VPS #{row_id} expires")
            expected.add((owner["mail"], subject))
    got = lifetimes.mails(lab)[sent:]
    assert {(m["to"][0], m["subject"]) for m in got} == expected
    assert all(len(m["to"]) == 1 and m["from"] == "podpora@vpsfree.cz" for m in got)
    assert scalar(lab, "SELECT COUNT(*) FROM mail_logs") == logs + len(expected)
    # the rendered body of one VPS warning
    vps = lab.picked["vps_active_expired"][1]
    hostname, created, expiration = query(lab, "SELECT vps_hostname, created_at, expiration_date FROM vps "
                                               "WHERE vps_id = %s", (vps,))[0]
    body = next(m["body"] for m in got if m["subject"] == f"[vpsAdmin] VPS #{vps} expires")
    assert body == (f"Hello {user_of(lab, 'vps_active_expired')['login']},\n\nyour VPS #{vps} ({hostname}) in "
                    f"Production, created {created:%Y-%m-%d %H:%M:%S} UTC, expires on "
                    f"{expiration:%Y-%m-%d %H:%M:%S} UTC.\n\nvpsAdmin")
    # every state: the first user not active has no template (only expiration_user_active
    # exists); the chain and the mails it had made go with it
    first = min((row_id, CASE[name].state) for name, (cls, row_id) in lab.picked.items()
                if cls == "User" and CASE[name].state != "active" and CASE[name].days is not None
                and CASE[name].days < 7)
    before = checksums(lab)
    rc, out, err = rake(lab, "vpsadmin:lifetimes:mail OBJECTS=User DAYS=7")
    assert rc == 1
    assert err == ("rake aborted!\nVpsAdmin::API::Exceptions::MailTemplateDoesNotExist: "
                   f"Mail template 'expiration_user_{first[1]}' does not exist\n"
                   "Tasks: TOP => vpsadmin:lifetimes:mail\n(See full trace by running task with --trace)\n")
    assert checksums(lab) == before


def test_progress_executes_the_runbook_steps(world):
    lab, picked = world, world.picked
    after = last_chain(lab)
    sent = len(lifetimes.mails(lab))
    hard_deleted_user = picked["user_soft_deleted_expired"][1]
    user_datasets = {r[0]: r[1] for r in query(
        lab, "SELECT d.id, d.full_name FROM datasets d INNER JOIN dataset_in_pools dip ON dip.dataset_id = d.id "
             "INNER JOIN pools p ON p.id = dip.pool_id WHERE d.user_id = %s AND p.role = 0", (hard_deleted_user,))}
    suspended_vpses = {c: vpses_of(lab, c) for c in ("user_active_expired_20d", "user_suspended_expired")}
    selected = ([("User", i) for i in expired(lab, "User", ["active"], grace_days=14)]
                + [("User", i) for i in expired(lab, "User", ["suspended", "soft_delete"])]
                + [("Vps", i) for i in expired(lab, "Vps")])

    # 1. active users past 14 days of grace are suspended, 14 more days to pay
    started = utcnow()
    rc, out, err = rake(lab, "vpsadmin:lifetimes:progress OBJECTS=User STATES=active GRACE=1209600 "
                             "NEW_EXPIRATION=1209600 'REASON=Your account has expired.' EXECUTE=yes")
    assert (rc, err) == (0, "")
    assert out.splitlines()[2:] == ["Model User", f"  id={picked['user_active_expired_20d'][1]}"]
    # 2. suspended and soft-deleted users advance
    rc, out, err = rake(lab, "vpsadmin:lifetimes:progress OBJECTS=User STATES=suspended,soft_delete EXECUTE=yes")
    assert (rc, err) == (0, "")
    assert out.splitlines()[2:] == ["Model User"] + [
        f"  id={i}" for i in expired(lab, "User", ["suspended", "soft_delete"])]
    # 3. VPSes advance, 7 days to the next step; one is locked by another chain meanwhile
    locked = picked["vps_soft_deleted_expired"][1]
    query(lab, "INSERT INTO transaction_chains (name, type, state, size, progress, created_at, updated_at) "
               "VALUES ('lab_other', 'TransactionChains::Lab', 1, 0, 0, UTC_TIMESTAMP(), UTC_TIMESTAMP())")
    other = last_chain(lab)
    query(lab, "INSERT INTO resource_locks (resource, row_id, transaction_chain_id, created_at, updated_at) "
               "VALUES ('Vps', %s, %s, UTC_TIMESTAMP(), UTC_TIMESTAMP())", (locked, other))
    rc, out, err = rake(lab, "vpsadmin:lifetimes:progress OBJECTS=Vps NEW_EXPIRATION=604800 EXECUTE=yes")
    assert (rc, err) == (0, "")
    expected_lines = ["Model Vps"]
    for vps in expired(lab, "Vps"):
        expected_lines.append(f"  id={vps}")
        if vps == locked:
            expected_lines.append("    resource locked")
    assert out.splitlines()[2:] == expected_lines
    assert not query(lab, "SELECT id FROM transaction_chain_concerns WHERE class_name = 'Vps' AND row_id = %s "
                          "AND transaction_chain_id > %s", (locked, other))
    chains = wait_chains(lab, after, ignore=(other,))
    assert obj(lab, "vps_soft_deleted_expired") == {
        "state": "soft_delete", "expiration": lab.as_of + dt.timedelta(days=CASE["vps_soft_deleted_expired"].days)}
    # the lock gone, the next run takes it
    query(lab, "DELETE FROM resource_locks WHERE transaction_chain_id = %s", (other,))
    query(lab, "UPDATE transaction_chains SET state = 2 WHERE id = %s", (other,))
    rc, out, err = rake(lab, "vpsadmin:lifetimes:progress OBJECTS=Vps NEW_EXPIRATION=604800 EXECUTE=yes")
    assert out.splitlines()[2:] == ["Model Vps", f"  id={locked}"]
    chains = wait_chains(lab, after, ignore=(other,))
    finished = utcnow()
    assert set(chains.values()) == {2}, query(lab, "SELECT t_id, t_type, t_output FROM transactions "
                                                   "WHERE t_success = 0 AND transaction_chain_id > %s", (after,))
    # a Lifetimes::Wrapper chain per object, found by its concern
    wrappers = query(lab, "SELECT cc.class_name, cc.row_id FROM transaction_chains c INNER JOIN "
                          "transaction_chain_concerns cc ON cc.transaction_chain_id = c.id "
                          "WHERE c.id > %s AND c.name = 'wrapper' ORDER BY c.id", (after,))
    assert sorted(wrappers) == sorted(selected)
    assert not query(lab, "SELECT id FROM resource_locks WHERE transaction_chain_id > %s", (after,))

    def expires_in(days):
        return {"lo": started + dt.timedelta(days=days) - dt.timedelta(seconds=2),
                "hi": finished + dt.timedelta(days=days)}

    def in_window(value, days):
        w = expires_in(days)
        return value is not None and w["lo"] <= value <= w["hi"]

    # users
    suspended = obj(lab, "user_active_expired_20d")
    assert suspended["state"] == "suspended" and in_window(suspended["expiration"], 14)
    assert query(lab, "SELECT state, reason FROM object_states WHERE class_name = 'User' AND row_id = %s "
                      "ORDER BY id DESC LIMIT 1", (picked["user_active_expired_20d"][1],)) == [
        (1, "Your account has expired.")]
    assert not any(running(lab, v) for v in suspended_vpses["user_active_expired_20d"])
    assert query(lab, "SELECT DISTINCT vps_up FROM vps_status WHERE vps_id IN %s",
                 (suspended_vpses["user_active_expired_20d"],)) == [(0,)]
    for name in ("user_active_3d", "user_active_10d", "user_active_expired_5d", "user_active_3d_mailer_off",
                 "user_suspended_5d"):
        assert obj(lab, name) == {"state": CASE[name].state,
                                  "expiration": lab.as_of + dt.timedelta(days=CASE[name].days)}, name
    assert obj(lab, "user_suspended_expired") == {"state": "soft_delete", "expiration": None}
    for vps in suspended_vpses["user_suspended_expired"]:  # 2.0.0: only its active VPSes follow
        assert query(lab, "SELECT object_state FROM vps WHERE vps_id = %s", (vps,)) == [(2,)]
        assert query(lab, "SELECT reason FROM object_states WHERE class_name = 'Vps' AND row_id = %s "
                          "ORDER BY id DESC LIMIT 1", (vps,)) == [("User was soft deleted",)]
        assert not running(lab, vps)
    assert obj(lab, "user_soft_deleted_expired") == {"state": "hard_delete", "expiration": None}
    # 2.0.0's User::HardDelete: its soft-deleted VPSes stay, their datasets go (upstream 5aa872df7)
    assert {r[0] for r in query(lab, "SELECT object_state FROM vps WHERE m_id = %s", (hard_deleted_user,))} <= {2}
    for ds_id, full_name in user_datasets.items():
        assert "dataset does not exist" in sh(lab, "node1", f"zfs list vz/private/{full_name}")
        assert "dataset does not exist" in sh(lab, "node2", f"zfs list vz/private/{full_name}")
        expiration = scalar(lab, "SELECT expiration_date FROM datasets WHERE id = %s", (ds_id,))
        assert in_window(expiration, 30), (ds_id, expiration)  # it is only in backups now
        # Dataset#set_expiration logs it without a reason: the reason rides on the log's
        # just_create confirmation, which never writes attributes
        assert query(lab, "SELECT reason, expiration_date FROM object_states WHERE class_name = 'Dataset' "
                          "AND row_id = %s AND expiration_date IS NOT NULL", (ds_id,)) == [(None, expiration)]
    # VPSes
    blocked = obj(lab, "vps_active_expired")
    assert blocked["state"] == "suspended" and in_window(blocked["expiration"], 7)
    assert not running(lab, picked["vps_active_expired"][1])
    soft = obj(lab, "vps_suspended_expired")
    assert soft["state"] == "soft_delete" and in_window(soft["expiration"], 7)
    destroyed = obj(lab, "vps_soft_deleted_expired")
    assert destroyed["state"] == "hard_delete" and in_window(destroyed["expiration"], 7)
    node = vps_node(lab, locked)
    assert sh(lab, node, f"vzctl status {locked}").startswith(f"CTID {locked} deleted")
    assert (lab.node_root(node) / f"etc/vz/conf/{locked}.conf.destroyed").exists()
    assert not (lab.node_root(node) / f"vz/root/{locked}").exists()
    assert query(lab, "SELECT dataset_in_pool_id FROM vps WHERE vps_id = %s", (locked,)) == [(None,)]
    assert not query(lab, "SELECT id FROM mounts WHERE vps_id = %s", (locked,))
    assert "dataset does not exist" in sh(lab, node, f"zfs list vz/private/{locked}")
    for name in ("vps_active_3d", "vps_active_10d", "vps_active_3d_mailer_off"):
        assert obj(lab, name) == {"state": "active", "expiration": lab.as_of + dt.timedelta(days=CASE[name].days)}
    # every change logged, every confirmation done
    assert not query(lab, "SELECT c.id FROM transaction_confirmations c INNER JOIN transactions t ON "
                          "t.t_id = c.transaction_id WHERE c.done = 0 AND t.transaction_chain_id > %s", (after,))
    # the mails of the new states
    got = {(m["to"][0], m["subject"]) for m in lifetimes.mails(lab)[sent:]}
    expected = {(user_of(lab, "user_active_expired_20d")["mail"],
                 f"[vpsAdmin] Account {user_of(lab, 'user_active_expired_20d')['login']} suspended"),
                (user_of(lab, "user_suspended_expired")["mail"],
                 f"[vpsAdmin] Account {user_of(lab, 'user_suspended_expired')['login']} deleted"),
                (user_of(lab, "vps_active_expired")["mail"], f"[vpsAdmin] VPS #{picked['vps_active_expired'][1]} "
                                                             "suspended")}
    assert got == expected

    # again: nothing is due any more, nothing changes
    before = checksums(lab)
    for args in ("OBJECTS=User STATES=active GRACE=1209600 NEW_EXPIRATION=1209600 EXECUTE=yes",
                 "OBJECTS=User STATES=suspended,soft_delete EXECUTE=yes",
                 "OBJECTS=Vps NEW_EXPIRATION=604800 EXECUTE=yes"):
        rc, out, err = rake(lab, f"vpsadmin:lifetimes:progress {args}")
        assert rc == 0 and out.splitlines()[3:] == [], out
    assert checksums(lab) == before


def test_daily_report_counts(world):
    lab = world
    after = last_chain(lab)
    sent = len(lifetimes.mails(lab))
    rc, out, err = rake(lab, "vpsadmin:mail_daily_report")
    assert (rc, out, err) == (0, "Mail daily report\n", "")
    (report_chain, state), = wait_chains(lab, after).items()
    assert state == 2
    assert scalar(lab, "SELECT name FROM transaction_chains WHERE id = %s", (report_chain,)) == "daily_report"
    mail, = lifetimes.mails(lab)[sent:]
    assert mail["to"] == ["admins@lab.vpsfree.cz"]
    created = scalar(lab, "SELECT created_at FROM transaction_chains WHERE id = %s", (report_chain,))
    figures = dict(re.findall(r"^([A-Z][\w -]+): (\d+)$", mail["body"], re.MULTILINE))
    t = (created,)  # the report's now, to the second

    def changed(table, pk, cls, state):
        return scalar(lab, f"SELECT COUNT(*) FROM {table} o INNER JOIN object_states s ON s.class_name = %s "
                           f"AND o.{pk} = s.row_id WHERE o.object_state = %s AND s.state = %s "
                           "AND DATE_ADD(s.created_at, INTERVAL 1 DAY) >= %s", (cls, state, state, created))
    expected = {
        "New users": scalar(lab, "SELECT COUNT(*) FROM members WHERE object_state = 0 AND "
                                 "DATE_ADD(created_at, INTERVAL 1 DAY) >= %s", t),
        "Suspended users": changed("members", "m_id", "User", 1),
        "Soft-deleted users": changed("members", "m_id", "User", 2),
        "Hard-deleted users": changed("members", "m_id", "User", 3),
        "New VPSes": scalar(lab, "SELECT COUNT(*) FROM vps WHERE object_state = 0 AND "
                                 "DATE_ADD(created_at, INTERVAL 1 DAY) >= %s", t),
        "Suspended VPSes": changed("vps", "vps_id", "Vps", 1),
        "Soft-deleted VPSes": changed("vps", "vps_id", "Vps", 2),
        "Hard-deleted VPSes": changed("vps", "vps_id", "Vps", 3),
        # rendered while its own chain was staged and before its mail was queued
        "Transactions done": scalar(lab, "SELECT COUNT(*) FROM transactions WHERE DATE_ADD(created_at, "
                                         "INTERVAL 1 DAY) > %s AND t_done = 1 AND transaction_chain_id != %s",
                                    (created, report_chain)),
        "Transactions failed": scalar(lab, "SELECT COUNT(*) FROM transactions WHERE DATE_ADD(created_at, "
                                           "INTERVAL 1 DAY) > %s AND t_done = 1 AND t_success = 0", t),
    }
    assert {k: int(v) for k, v in figures.items()} == expected
    assert expected["Suspended users"] == expected["Soft-deleted users"] == expected["Hard-deleted users"] == 1
    assert expected["Hard-deleted VPSes"] == 1
    chains = scalar(lab, "SELECT COUNT(*) FROM transaction_chains WHERE DATE_ADD(created_at, INTERVAL 1 DAY) >= %s", t)
    done = scalar(lab, "SELECT COUNT(*) FROM transaction_chains WHERE DATE_ADD(created_at, INTERVAL 1 DAY) >= %s "
                       "AND state = 2 AND id != %s", (created, report_chain))
    assert re.search(rf"^Chains: {chains} \(done {done}, failed 0\)$", mail["body"], re.MULTILINE), mail["body"]
    start = dt.datetime.strptime(mail["subject"], "[vpsAdmin] Daily report %Y-%m-%d %H:%M:%S UTC")
    assert near(start, created - DAY, slack=2)


def test_travel_brings_new_warnings_and_a_failing_chain(world):
    lab = world
    with closing(db_conn(lab)) as conn:
        lifetimes.travel(conn, 4)
    after = last_chain(lab)
    sent = len(lifetimes.mails(lab))
    rc, _, err = rake(lab, "vpsadmin:lifetimes:mail OBJECTS=User DAYS=7 STATES=active")
    assert rc == 0, err
    wait_chains(lab, after)
    # 10 days became 6: that user is warned too; the mailer-off user still is not
    warned = {m["to"][0] for m in lifetimes.mails(lab)[sent:]}
    assert warned == {user_of(lab, n)["mail"] for n in ("user_active_3d", "user_active_10d", "user_active_expired_5d")}

    # 30 days on, the VPS datasets left only in backups expire. Their backups hold snapshots the
    # database does not know (the 1.22 backups): `zfs destroy` fails, the chain fails and its
    # confirmations are reversed (the dataset stays active, its state log goes).
    with closing(db_conn(lab)) as conn:
        lifetimes.travel(conn, 27)
    due = [r[0] for r in query(lab, "SELECT id FROM datasets WHERE expiration_date < UTC_TIMESTAMP() "
                                    "ORDER BY full_name DESC")]
    assert due
    logs = scalar(lab, "SELECT COUNT(*) FROM object_states WHERE class_name = 'Dataset'")
    after = last_chain(lab)
    rc, out, err = rake(lab, "vpsadmin:lifetimes:progress OBJECTS=Dataset EXECUTE=yes")
    assert rc == 0 and out.splitlines()[3:] == [f"  id={i}" for i in due], out + err
    chains = wait_chains(lab, after)
    failed = 0
    for ds in due:
        (chain,), = query(lab, "SELECT c.id FROM transaction_chains c INNER JOIN transaction_chain_concerns cc "
                               "ON cc.transaction_chain_id = c.id WHERE c.id > %s AND cc.class_name = 'Dataset' "
                               "AND cc.row_id = %s", (after, ds))
        row = query(lab, "SELECT object_state, confirmed FROM datasets WHERE id = %s", (ds,))
        if chains[chain] == 4:
            failed += 1
            output = json.loads(scalar(lab, "SELECT t_output FROM transactions WHERE transaction_chain_id = %s "
                                            "AND t_success = 0 ORDER BY t_id LIMIT 1", (chain,)))
            assert output["cmd"].startswith("zfs destroy  backup/") and "has children" in output["error"]
            assert row == [(0, 1)]
        else:  # destroyed: the row is gone, its state log stays
            assert chains[chain] == 2 and row == []
            logs += 1
    assert failed
    assert scalar(lab, "SELECT COUNT(*) FROM object_states WHERE class_name = 'Dataset'") == logs


def test_hard_delete_of_a_user_with_a_private_dataset_aborts(world):
    """API 2.0.0 validates a dataset before marking it for destruction: `private` is a reserved
    name, so User::HardDelete raises RecordInvalid and rake aborts; nothing of it stays."""
    lab = world
    owner = scalar(lab, "SELECT user_id FROM datasets WHERE name = 'private' ORDER BY id LIMIT 1")
    query(lab, "UPDATE members SET object_state = 2, expiration_date = UTC_TIMESTAMP() - INTERVAL 1 DAY "
               "WHERE m_id = %s", (owner,))
    before = checksums(lab)
    rc, out, err = rake(lab, "vpsadmin:lifetimes:progress OBJECTS=User STATES=soft_delete EXECUTE=yes")
    assert rc == 1 and out.splitlines()[-1] == f"  id={owner}"
    assert err.startswith("rake aborted!\nActiveRecord::RecordInvalid: Validation failed: "
                          "Name 'private' is a reserved name\n")
    assert checksums(lab) == before
