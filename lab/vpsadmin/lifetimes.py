"""Object lifetimes on a lab world migrated to vpsAdmin 2.0: users and VPSes put into known
states and expirations (CASES), the clock moved forward (travel), the mails the mailer sent
(mails). What tests and benchmarks of `rake vpsadmin:lifetimes:*` and
`vpsadmin:mail_daily_report` (lab/vpsadmin/tools/api_tasks.py) start from.

`conn` is a MySQLdb connection to the world's database (autocommit off: every function
commits what it did).

Picking (seed_lifetimes), deterministic for a given world:
- candidates: users below admin level (m_level < 90) not hard-deleted, by m_id; a user's VPSes
  are those not hard-deleted;
- VPS cases with the mailer on go to the VPSes of the candidates with the most VPSes (ties by
  m_id; as many owners as it takes), the deeper the case's state (then the earlier its
  expiration) the more mounts the VPS has; each VPS case with the mailer off goes to the
  first VPS of the remaining candidate with the fewest VPSes (at least one). These owners are
  made active, without expiration, mailer on/off as the case says;
- user cases go to the remaining candidates, most VPSes first (ties by m_id), the deeper the
  state (then the earlier the expiration) the sooner; a soft-deleted user who is to be
  hard-deleted is never one who owns a dataset named `private` or `vpsadmin` (the API 2.0.0's
  Dataset validation makes that hard delete abort: RecordInvalid, see api_tasks.py);
- a user case's VPSes follow the user: soft_delete when the user is soft-deleted, else active,
  all without expiration; every other user and VPS loses its expiration date.
Every state change the seed makes is logged in object_states as vpsAdmin logs it, dated at
least two days before `as_of` (outside the daily report's one-day window).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from lab.core.config import PROJECT_ROOT

STATES = ("active", "suspended", "soft_delete", "hard_delete", "deleted")
MAILER_NODE = "vpsadmin"  # the API host is the cluster's mailer (server_type 'mailer')
SPOOL = "var/spool/lab-mail"
SUSPEND_REASON = "Your account has expired."
REPORT_RECIPIENT = ("Admins", "admins@lab.vpsfree.cz")
RESERVED_DATASET_NAMES = ("private", "vpsadmin")


@dataclass(frozen=True)
class Case:
    name: str
    cls: str                # 'User' or 'Vps'
    state: str              # object_state
    days: int | None        # expiration_date = as_of + days; None: no expiration
    mailer: bool = True     # m_mailer_enable of the user (User) or the VPS's owner (Vps)

    def priority(self) -> tuple:
        """Deeper states first, then earlier expirations (who gets the richer objects)."""
        return (-STATES.index(self.state), self.days if self.days is not None else 10**6, not self.mailer)


CASES: tuple[Case, ...] = (
    Case("user_active_3d", "User", "active", 3),
    Case("user_active_10d", "User", "active", 10),
    Case("user_active_expired_5d", "User", "active", -5),    # inside a 14-day grace
    Case("user_active_expired_20d", "User", "active", -20),  # past it
    Case("user_active_3d_mailer_off", "User", "active", 3, mailer=False),
    Case("user_suspended_expired", "User", "suspended", -1),
    Case("user_suspended_5d", "User", "suspended", 5),
    Case("user_soft_deleted_expired", "User", "soft_delete", -1),
    Case("vps_active_3d", "Vps", "active", 3),
    Case("vps_active_10d", "Vps", "active", 10),
    Case("vps_active_expired", "Vps", "active", -1),
    Case("vps_suspended_expired", "Vps", "suspended", -1),
    Case("vps_soft_deleted_expired", "Vps", "soft_delete", -1),
    Case("vps_active_3d_mailer_off", "Vps", "active", 3, mailer=False),
)
CASE = {c.name: c for c in CASES}


def _rows(conn, sql: str, params=None) -> list[dict]:
    cur = conn.cursor()
    cur.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _exec(conn, sql: str, params=None) -> int:
    cur = conn.cursor()
    cur.execute(sql, params)
    return cur.lastrowid


def _day(as_of: datetime, days: float) -> datetime:
    return (as_of + timedelta(days=days)).replace(microsecond=0)


# -- history ---------------------------------------------------------------------------------

class _History:
    """object_states rows to write, and the objects' final columns."""

    def __init__(self, conn):
        self.conn = conn
        self.logs: list[tuple] = []

    def log(self, cls: str, row_id: int, state: str, when: datetime, expiration: datetime | None,
            reason: str | None) -> None:
        self.logs.append((cls, row_id, STATES.index(state), reason, expiration, when, when))

    def write(self) -> None:
        if self.logs:
            self.conn.cursor().executemany(
                "INSERT INTO object_states (class_name, row_id, state, user_id, reason, expiration_date, "
                "created_at, updated_at) VALUES (%s, %s, %s, NULL, %s, %s, %s, %s)", self.logs)


def _history_of(h: _History, cls: str, row_id: int, state: str, expiration: datetime | None,
                as_of: datetime, previous: str, reason: str = "") -> None:
    """The rows vpsAdmin would have logged bringing an object from `previous` to `state`
    with `expiration`, dated before as_of - 2 days."""
    latest = _day(as_of, -2)
    if state == "active":
        if previous != "active":  # resumed (or revived), with the new expiration
            h.log(cls, row_id, "active", _day(as_of, -3), expiration, "")
        elif expiration is not None:  # the expiration was set (a payment, a VPS's lifetime)
            h.log(cls, row_id, "active", _day(as_of, -30), expiration, None)
        return
    if state == "suspended":
        when = min(latest, expiration - timedelta(days=14)) if expiration else _day(as_of, -14)
        h.log(cls, row_id, "suspended", when, expiration, reason)
        return
    if state == "soft_delete":
        when = min(latest, expiration - timedelta(days=30)) if expiration else _day(as_of, -30)
        if previous != "suspended":
            h.log(cls, row_id, "suspended", when - timedelta(days=14), when, reason)
        h.log(cls, row_id, "soft_delete", when, expiration, "")
        return
    raise ValueError(f"no history for state {state}")


# -- seeding ---------------------------------------------------------------------------------

def _world(conn) -> tuple[list[dict], dict[int, list[dict]], set[int]]:
    users = _rows(conn, "SELECT m_id, m_level, object_state FROM members WHERE m_level < 90 "
                        "AND object_state != 3 ORDER BY m_id")
    vpses: dict[int, list[dict]] = {u["m_id"]: [] for u in users}
    for v in _rows(conn, "SELECT v.vps_id, v.m_id, v.object_state, COUNT(m.id) AS mounts FROM vps v "
                         "LEFT JOIN mounts m ON m.vps_id = v.vps_id WHERE v.object_state != 3 "
                         "GROUP BY v.vps_id ORDER BY v.vps_id"):
        if v["m_id"] in vpses:
            vpses[v["m_id"]].append(v)
    reserved = {r["user_id"] for r in _rows(
        conn, "SELECT DISTINCT user_id FROM datasets WHERE name IN %s", (RESERVED_DATASET_NAMES,))}
    return users, vpses, reserved


def pick(conn) -> tuple[dict[str, tuple[str, int]], dict[str, int]]:
    """({case: (class, id)}, {'vps_owners': ..}): who is which case (see the module docstring);
    the second dict maps each VPS case to its owner's id."""
    users, vpses, reserved = _world(conn)
    used: set[int] = set()
    picked: dict[str, tuple[str, int]] = {}
    owners: dict[str, int] = {}
    by_count = sorted(users, key=lambda u: (-len(vpses[u["m_id"]]), u["m_id"]))

    vps_on = sorted((c for c in CASES if c.cls == "Vps" and c.mailer), key=Case.priority)
    pool: list[dict] = []
    for u in by_count:
        if len(pool) >= len(vps_on):
            break
        if vpses[u["m_id"]]:
            pool.extend(vpses[u["m_id"]])
            used.add(u["m_id"])
    if len(pool) < len(vps_on):
        raise ValueError(f"the world has {len(pool)} VPSes for {len(vps_on)} VPS cases")
    pool.sort(key=lambda v: (-v["mounts"], v["vps_id"]))
    for case, vps in zip(vps_on, pool, strict=False):
        picked[case.name] = ("Vps", vps["vps_id"])
        owners[case.name] = vps["m_id"]

    for case in sorted((c for c in CASES if c.cls == "Vps" and not c.mailer), key=Case.priority):
        rest = sorted((u for u in users if u["m_id"] not in used and vpses[u["m_id"]]),
                      key=lambda u: (len(vpses[u["m_id"]]), u["m_id"]))
        if not rest:
            raise ValueError(f"no owner left for {case.name}")
        owner = rest[0]
        used.add(owner["m_id"])
        picked[case.name] = ("Vps", vpses[owner["m_id"]][0]["vps_id"])
        owners[case.name] = owner["m_id"]

    for case in sorted((c for c in CASES if c.cls == "User"), key=Case.priority):
        hard_delete = case.state == "soft_delete" and case.days is not None and case.days < 0
        rest = [u for u in by_count if u["m_id"] not in used
                and not (hard_delete and u["m_id"] in reserved)]
        if not rest:
            raise ValueError(f"no user left for {case.name}")
        used.add(rest[0]["m_id"])
        picked[case.name] = ("User", rest[0]["m_id"])
    return {c.name: picked[c.name] for c in CASES}, owners


def seed_lifetimes(conn, as_of: datetime) -> dict[str, tuple[str, int]]:
    """Put the world's users and VPSes into CASES as of `as_of` (naive UTC); returns
    {case: (class, id)}. Also gives the daily_report template a recipient."""
    as_of = as_of.replace(microsecond=0)
    picked, owners = pick(conn)
    state_of = {("User", r["m_id"]): STATES[r["object_state"]]
                for r in _rows(conn, "SELECT m_id, object_state FROM members")}
    state_of.update({("Vps", r["vps_id"]): STATES[r["object_state"]]
                     for r in _rows(conn, "SELECT vps_id, object_state FROM vps")})
    vps_owner = {r["vps_id"]: r["m_id"] for r in _rows(conn, "SELECT vps_id, m_id FROM vps")}
    h = _History(conn)
    final: dict[tuple[str, int], tuple[str, datetime | None]] = {}
    mailer: dict[int, bool] = {}

    def set_state(cls: str, row_id: int, state: str, expiration: datetime | None, reason: str = "") -> None:
        previous = state_of[(cls, row_id)]
        if previous != state or expiration is not None:
            _history_of(h, cls, row_id, state, expiration, as_of, previous, reason)
        final[(cls, row_id)] = (state, expiration)

    for name, (cls, row_id) in picked.items():
        case = CASE[name]
        expiration = _day(as_of, case.days) if case.days is not None else None
        if cls == "User":
            set_state("User", row_id, case.state, expiration, SUSPEND_REASON)
            mailer[row_id] = case.mailer
            for vps_id in [v for v, o in vps_owner.items() if o == row_id and state_of[("Vps", v)] != "hard_delete"]:
                if case.state == "soft_delete":
                    when = min(_day(as_of, -2), expiration - timedelta(days=30)) if expiration else _day(as_of, -30)
                    if state_of[("Vps", vps_id)] != "soft_delete":
                        h.log("Vps", vps_id, "soft_delete", when, None, "User was soft deleted")
                    final[("Vps", vps_id)] = ("soft_delete", None)
                else:
                    set_state("Vps", vps_id, "active", None)
        else:
            set_state("Vps", row_id, case.state, expiration)
            owner = owners[name]
            mailer[owner] = case.mailer
            if ("User", owner) not in final:
                set_state("User", owner, "active", None)
    h.write()
    cur = conn.cursor()
    cur.execute("UPDATE members SET expiration_date = NULL")
    cur.execute("UPDATE vps SET expiration_date = NULL")
    for (cls, row_id), (state, expiration) in final.items():
        table, pk = ("members", "m_id") if cls == "User" else ("vps", "vps_id")
        cur.execute(f"UPDATE {table} SET object_state = %s, expiration_date = %s WHERE {pk} = %s",
                    (STATES.index(state), expiration, row_id))
    for m_id, enabled in mailer.items():
        cur.execute("UPDATE members SET m_mailer_enable = %s WHERE m_id = %s", (int(enabled), m_id))
    ensure_report_recipient(conn)
    conn.commit()
    return picked


def ensure_report_recipient(conn) -> None:
    """The daily_report template sent to mail_recipients 'Admins' (if the template exists)."""
    tpl = _rows(conn, "SELECT id FROM mail_templates WHERE name = 'daily_report'")
    if not tpl:
        return
    label, to = REPORT_RECIPIENT
    found = _rows(conn, "SELECT id FROM mail_recipients WHERE label = %s", (label,))
    recipient = found[0]["id"] if found else _exec(
        conn, "INSERT INTO mail_recipients (label, `to`) VALUES (%s, %s)", (label, to))
    _exec(conn, "INSERT IGNORE INTO mail_template_recipients (mail_template_id, mail_recipient_id) "
                "VALUES (%s, %s)", (tpl[0]["id"], recipient))
    conn.commit()


def install_mail_templates(conn, names: list[str] | None = None) -> list[str]:
    """The upgrade's mail.templates step: include/mail_templates.json through
    include/sql/vpsadmin/mail/templates.sql's `insert` (templates already there are kept).
    Returns the names inserted."""
    sql = (PROJECT_ROOT / "include/sql/vpsadmin/mail/templates.sql").read_text()
    insert = re.search(r"^-- name: insert\n(.*?)(?=^-- name:|\Z)", sql, re.S | re.M).group(1).strip().rstrip(";")
    templates = json.loads((PROJECT_ROOT / "include/mail_templates.json").read_text())
    have = {r["name"] for r in _rows(conn, "SELECT name FROM mail_templates")}
    done = []
    for tpl in templates:
        if tpl["name"] in have or (names is not None and tpl["name"] not in names):
            continue
        _exec(conn, insert, {k: tpl.get(k) for k in ("name", "label", "from", "reply_to", "return_path",
                                                     "subject", "text_plain")})
        done.append(tpl["name"])
    conn.commit()
    return done


def finish_short_upgrade(lab) -> None:
    """What the upgrade does and tests/lab/v2_0_cluster.py's short way does not, that the
    lifetime chains need: every server in the (first) environment, as api.populate-servers
    puts them (Vps::SoftDelete and Vps::Destroy look up cluster resources by the VPS's
    environment: without one the API raises NoMethodError and rake aborts), and
    /var/vpsadmin/mounts on the hypervisors, as nodes.mounts-dir makes it (Vps::Destroy
    rewrites a VPS's mounts there)."""
    import MySQLdb

    from lab.core.topology import HOSTS

    conn = MySQLdb.connect(db=lab.cfg.vpsadmin_db, charset="utf8mb4", **lab.cfg.mysql_kwargs())
    try:
        _exec(conn, "UPDATE servers SET environment_id = (SELECT MIN(id) FROM environments) "
                    "WHERE environment_id IS NULL OR environment_id NOT IN (SELECT id FROM environments)")
        conn.commit()
    finally:
        conn.close()
    for h in HOSTS:
        if h.server and h.server["server_type"] == "node":
            (Path(lab.node_root(h.name)) / "var/vpsadmin/mounts").mkdir(parents=True, exist_ok=True)


# -- at scale ------------------------------------------------------------------------------

def seed_lifetimes_at_scale(conn, as_of: datetime, fraction: float) -> dict[str, int]:
    """Put about `fraction` of the users and of the (other users') VPSes into CASES, in bulk
    (a 20k-user / 100k-VPS world takes a second): user m_id or vps_id hashed (Knuth's
    multiplicative hash) below the fraction is picked, the case is another hash of the id
    modulo the number of cases of its class (a user owning a `private` dataset is left out of the hard-delete case,
    as in seed_lifetimes). VPSes of picked users follow them (soft_delete with a soft-deleted
    user); other users and VPSes lose their expiration. Returns {case: objects}."""
    as_of = as_of.replace(microsecond=0)
    limit = int(fraction * 1000)
    user_cases = [c for c in CASES if c.cls == "User"]
    vps_cases = [c for c in CASES if c.cls == "Vps"]

    def hashed(col: str) -> str:
        return f"((({col}) * 2654435761) % 4294967296) % 1000 < {limit}"

    def case_of(col: str, n: int) -> str:
        # another hash: the picked ids share their residues modulo 8 (the one above keeps
        # them), so `id % n` would give all of them one or two cases
        return f"((({col}) * 2246822519) % 4294967296) DIV 65536 % {n}"
    cur = conn.cursor()
    cur.execute("DROP TEMPORARY TABLE IF EXISTS lab_lifetime_cases")
    cur.execute("CREATE TEMPORARY TABLE lab_lifetime_cases (cls VARCHAR(8), row_id INT, ncase INT, "
                "PRIMARY KEY (cls, row_id), KEY (cls, ncase))")
    cur.execute(f"INSERT INTO lab_lifetime_cases SELECT 'User', m_id, {case_of('m_id', len(user_cases))} FROM members "
                f"WHERE m_level < 90 AND object_state != 3 AND {hashed('m_id')}")
    # the hard-delete case never goes to an owner of a reserved-name dataset (see pick)
    hard = next(n for n, c in enumerate(user_cases) if c.state == "soft_delete" and c.days is not None and c.days < 0)
    cur.execute("DELETE c FROM lab_lifetime_cases c INNER JOIN datasets d ON d.user_id = c.row_id "
                f"WHERE c.ncase = {hard} AND d.name IN ('private', 'vpsadmin')")
    cur.execute(f"INSERT INTO lab_lifetime_cases SELECT 'Vps', v.vps_id, {case_of('v.vps_id', len(vps_cases))} FROM vps v "
                "LEFT JOIN lab_lifetime_cases c ON c.cls = 'User' AND c.row_id = v.m_id "
                f"WHERE c.row_id IS NULL AND v.object_state != 3 AND {hashed('v.vps_id')}")
    cur.execute("UPDATE members SET expiration_date = NULL")
    cur.execute("UPDATE vps SET expiration_date = NULL")
    counts = {}
    for cls, cases, table, pk in (("User", user_cases, "members", "m_id"), ("Vps", vps_cases, "vps", "vps_id")):
        for n, case in enumerate(cases):
            expiration = _day(as_of, case.days) if case.days is not None else None
            join = f"INNER JOIN lab_lifetime_cases c ON c.cls = '{cls}' AND c.row_id = t.{pk} AND c.ncase = {n}"
            counts[case.name] = _rows(conn, "SELECT COUNT(*) AS n FROM lab_lifetime_cases "
                                            "WHERE cls = %s AND ncase = %s", (cls, n))[0]["n"]
            cur.execute(f"UPDATE {table} t {join} SET t.object_state = %s, t.expiration_date = %s",
                        (STATES.index(case.state), expiration))
            # the mailer flag of the user, or of the VPS's owner (the last VPS case wins)
            cur.execute(f"UPDATE members m INNER JOIN {table} t ON t.m_id = m.m_id {join} "
                        "SET m.m_mailer_enable = %s", (int(case.mailer),))
            h = _History(conn)
            _history_of(h, cls, 0, case.state, expiration, as_of, "active", SUSPEND_REASON if cls == "User" else "")
            for _cls, _row, state, reason, exp, when, _ in h.logs:
                cur.execute("INSERT INTO object_states (class_name, row_id, state, user_id, reason, "
                            "expiration_date, created_at, updated_at) SELECT %s, row_id, %s, NULL, %s, %s, %s, %s "
                            f"FROM lab_lifetime_cases WHERE cls = '{cls}' AND ncase = {n}",
                            (cls, state, reason, exp, when, when))
            if cls == "User" and case.state == "soft_delete":
                when = min(_day(as_of, -2), expiration - timedelta(days=30)) if expiration else _day(as_of, -30)
                vjoin = f"INNER JOIN lab_lifetime_cases c ON c.cls = 'User' AND c.row_id = v.m_id AND c.ncase = {n}"
                cur.execute("INSERT INTO object_states (class_name, row_id, state, user_id, reason, "
                            "expiration_date, created_at, updated_at) SELECT 'Vps', v.vps_id, 2, NULL, "
                            f"'User was soft deleted', NULL, %s, %s FROM vps v {vjoin} "
                            "WHERE v.object_state NOT IN (2, 3)", (when, when))
                cur.execute(f"UPDATE vps v {vjoin} SET v.object_state = 2 WHERE v.object_state != 3")
    cur.execute("DROP TEMPORARY TABLE lab_lifetime_cases")
    ensure_report_recipient(conn)
    conn.commit()
    return counts


# -- time ----------------------------------------------------------------------------------

# Tables whose DATETIME columns say when something happened or is due: moving them all back by
# N days is the clock moving N days forward (servers_status and vps_status are live reports).
TRAVEL_TABLES = ("members", "vps", "datasets", "snapshots", "snapshot_downloads", "mounts",
                 "object_states", "mail_logs", "transaction_chains", "transactions",
                 "transaction_confirmations", "resource_locks", "versions", "integrity_checks",
                 "integrity_objects", "user_sessions")


def travel(conn, days: float) -> None:
    """Move the world `days` forward in time: every DATETIME of TRAVEL_TABLES shifted back."""
    seconds = int(days * 86400)
    cols = _rows(conn, "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS WHERE "
                       "TABLE_SCHEMA = DATABASE() AND DATA_TYPE IN ('datetime', 'timestamp') "
                       "AND TABLE_NAME IN %s ORDER BY TABLE_NAME, ORDINAL_POSITION", (TRAVEL_TABLES,))
    by_table: dict[str, list[str]] = {}
    for c in cols:
        by_table.setdefault(c["TABLE_NAME"], []).append(c["COLUMN_NAME"])
    cur = conn.cursor()
    for table, columns in by_table.items():
        sets = ", ".join(f"`{c}` = `{c}` - INTERVAL {seconds} SECOND" for c in columns)
        cur.execute(f"UPDATE `{table}` SET {sets}")
    conn.commit()


# -- mail ----------------------------------------------------------------------------------

def mails(lab) -> list[dict]:
    """The mails the mailer delivered so far (vpsAdmind's Mail::Send spools them in mbox
    format on the mailer node): [{'from', 'to': [...], 'cc': [...], 'subject', 'headers',
    'body'}] in delivery order."""
    path = Path(lab.node_root(MAILER_NODE)) / SPOOL
    if not path.exists():
        return []
    result, current, in_body = [], None, False
    for line in path.read_text().split("\n"):
        if line.startswith("From vpsadmin "):
            current = {"headers": {}, "body_lines": []}
            result.append(current)
            in_body = False
            continue
        if current is None:
            continue
        if not in_body:
            if line == "":
                in_body = True
            else:
                name, _, value = line.partition(": ")
                current["headers"][name] = value
            continue
        current["body_lines"].append(re.sub(r"^>(>*From )", r"\1", line))
    out = []
    for m in result:
        body = "\n".join(m["body_lines"]).rstrip("\n")
        headers = m["headers"]
        out.append({"from": headers.get("From"), "subject": headers.get("Subject"),
                    "to": [a.strip() for a in (headers.get("To") or "").split(",") if a.strip()],
                    "cc": [a.strip() for a in (headers.get("Cc") or "").split(",") if a.strip()],
                    "headers": headers, "body": body})
    return out
