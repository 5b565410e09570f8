"""Duplicate users and initial quotas of 1,000,000 Synnefo users: plugins/synnefo (pandas)
against the runbook's find_astakos_users_with_conflicting_emails.py (one `email__iexact`
query per user), in one run.

The world, deterministic (numpy seed), in a throwaway PostgreSQL database
airlift_bench_<random> (UTF8, C collation, as the install guide creates snf_apps; dropped at
the end): --users Astakos users in auth_user (Django 1.2's columns; email not indexed, as
Django leaves it) and im_astakosuser (their uuids), ~1% of them a second registration of
another user's email in upper case; their VMs (db_virtualmachine.userid), private and public
networks (db_network.userid) and Pithos accounts (nodes with parent 0; one database here, two
in a deployment), with ~0.5% of users holding an upper-case spelling in Cyclades or Pithos
that Astakos does not have, and a few whitespace spellings. The two export files, written to
a temp dir in the exporters' format (research synnefo.md §4): explicit Pithos quotas for 10%
of the accounts (5% of them 0), Cyclades quotas for 3% of the users, keyed by uuid, some by
email, some unknown to Astakos.

- baseline: the script's queries over psycopg2 (Django 1.2's driver): every user in one query
  (`list(A.objects.all())`, rows fetched but no model objects built), then per user
  `SELECT COUNT(*) FROM auth_user WHERE UPPER(email::text) = UPPER(%s)`: Django 1.2's
  email__iexact on PostgreSQL (lookup_cast 'UPPER(%s::text)', operator '= UPPER(%s)'),
  without the join to im_astakosuser its AstakosUser query has (so the baseline is, if
  anything, faster than the script). Each query scans the table; it runs on a sample of users
  for up to --budget seconds and is extrapolated to every user.
- ours, timed from the database and the files to the written outputs: the four frames read
  from PostgreSQL with COPY into pandas (Astakos users with their uuids; VM and network owners
  with their counts, GROUP BY userid; Pithos account names), both export files read and parsed,
  duplicates.reconcile, the survivors' quota plan (quotas.plan_initial_quotas), the
  --from-file input, the approval markdown and the CSV report written. Its time without the
  reads is printed too.

The sampled users the baseline finds in conflict must be exactly those pandas puts in a group
with several Astakos users. Prints both times, the ratio (target: ours under 5 s and at least
1000x faster). Exit 0 also over target (a measurement); 1 if a side failed or they disagree.

    .venv/bin/python -m bench synnefo_reconcile [--users N] [--sample N] [--budget SECONDS]
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import tempfile
import time
import uuid as uuidlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))  # the operators' code, as Airflow's plugins folder has it
TARGET_S = 5.0
TARGET_RATIO = 1000.0
INF = str(10**30)
DOMAINS = np.array(["grnet.gr", "example.org", "uni.example.edu", "mail.example.com", "ntua.gr"])
W = 46  # report column width

SCHEMA = """
CREATE TABLE auth_user (id integer PRIMARY KEY, username varchar(75) NOT NULL UNIQUE,
    first_name varchar(30) NOT NULL, last_name varchar(30) NOT NULL, email varchar(75) NOT NULL,
    password varchar(128) NOT NULL, is_staff boolean NOT NULL, is_active boolean NOT NULL,
    is_superuser boolean NOT NULL, last_login timestamp with time zone NOT NULL,
    date_joined timestamp with time zone NOT NULL);
CREATE TABLE im_astakosuser (user_ptr_id integer PRIMARY KEY REFERENCES auth_user (id),
    uuid varchar(255) UNIQUE);
CREATE TABLE db_virtualmachine (id serial PRIMARY KEY, userid varchar(100) NOT NULL);
CREATE INDEX db_virtualmachine_userid ON db_virtualmachine (userid);
CREATE TABLE db_network (id serial PRIMARY KEY, userid varchar(128));
CREATE TABLE nodes (node integer PRIMARY KEY, parent integer, path varchar(2048) NOT NULL UNIQUE);
"""
# Django 1.2, postgresql_psycopg2: email__iexact is UPPER("auth_user"."email"::text) = UPPER(%s).
IEXACT_COUNT = "SELECT COUNT(*) FROM auth_user WHERE UPPER(email::text) = UPPER(%s)"
ALL_USERS = "SELECT u.*, a.* FROM im_astakosuser a JOIN auth_user u ON u.id = a.user_ptr_id"
READS = {
    "astakos": "SELECT u.id, u.email, u.is_active, extract(epoch FROM u.last_login)::bigint AS last_login, a.uuid "
               "FROM auth_user u JOIN im_astakosuser a ON a.user_ptr_id = u.id",
    "vms": "SELECT userid, count(*) AS count FROM db_virtualmachine GROUP BY userid",
    "networks": "SELECT userid, count(*) AS count FROM db_network WHERE userid IS NOT NULL GROUP BY userid",
    "pithos": "SELECT path AS account FROM nodes WHERE parent = 0 AND node != 0",
}


# -- the world --------------------------------------------------------------------------------
def uuids(rng: np.random.Generator, n: int) -> np.ndarray:
    """n random uuid4-shaped strings (36 characters with dashes)."""
    hexes = pd.Series(np.frombuffer(rng.bytes(16 * n).hex().encode(), dtype="S32").astype(str))
    return (hexes.str[0:8] + "-" + hexes.str[8:12] + "-4" + hexes.str[13:16] + "-8" + hexes.str[17:20] + "-"
            + hexes.str[20:32]).to_numpy()


def make_world(n_users: int, seed: int = 13) -> dict:
    """Frames of the four tables and the texts of the two export files."""
    rng = np.random.default_rng(seed)
    n_dups = n_users // 100  # second registrations of an email in another case
    persons = n_users - n_dups
    number = pd.Series(np.arange(1, persons + 1)).astype(str)
    local = np.where(rng.random(persons) < 0.05, "User", "user")
    email = (local + number + "@" + DOMAINS[rng.integers(0, len(DOMAINS), persons)]).to_numpy()
    twin_of = rng.choice(persons, n_dups, replace=False)
    emails = np.concatenate([email, pd.Series(email[twin_of]).str.upper().to_numpy()])
    ids = np.arange(1, n_users + 1)
    joined = pd.Timestamp("2011-01-01", tz="UTC") + pd.to_timedelta(ids * 60, unit="s")
    login = joined + pd.to_timedelta(rng.integers(0, 400 * 86400, n_users), unit="s")
    never = rng.random(n_users) < 0.1  # never logged in: Django 1.2 stores date_joined
    users = pd.DataFrame({
        "id": ids, "username": pd.Series(uuids(rng, n_users)).str.replace("-", "").str[:30],
        "first_name": "User", "last_name": ids.astype(str), "email": emails, "password": "!", "is_staff": False,
        "is_active": rng.random(n_users) < 0.97, "is_superuser": False,
        "last_login": np.where(never, joined, login), "date_joined": joined})
    user_uuid = uuids(rng, n_users)

    # Cyclades and Pithos: each person under the registered spelling; twins under theirs.
    vm_person = np.repeat(np.arange(persons), rng.poisson(1.2, persons))
    vm_twin = np.repeat(np.arange(n_dups), rng.poisson(1.0, n_dups))
    others = rng.choice(np.setdiff1d(np.arange(persons), twin_of), persons // 200, replace=False)
    other_spelling = pd.Series(email[others]).str.upper().to_numpy()
    vms = np.concatenate([email[vm_person], emails[persons + vm_twin], other_spelling[: len(others) // 2],
                          " " + email[others[:50]]])
    nets = np.concatenate([email[rng.random(persons) < 0.2], np.full(1000, None)])
    accounts = np.concatenate([email[rng.random(persons) < 0.9], emails[persons:][rng.random(n_dups) < 0.5],
                               other_spelling[len(others) // 2:]])
    accounts = pd.unique(accounts)

    # The exports, after the uuid migration: uuids, the emails of accounts Astakos did not know,
    # and Cyclades settings keys nobody rewrote.
    with_quota = rng.choice(persons, len(accounts) // 10, replace=False)
    sizes = np.array([0, 5, 10, 20, 50, 100], dtype=np.int64) << 30
    capacity = sizes[rng.choice(len(sizes), len(with_quota), p=[0.05, 0.35, 0.3, 0.15, 0.1, 0.05])]
    keys = np.concatenate([user_uuid[with_quota], [f"ghost{i}@gone.example.org" for i in range(200)]])
    pithos_text = _lines(keys, "pithos+.diskspace", np.concatenate([capacity, np.full(200, 1 << 30)]))
    limited = rng.choice(persons, persons * 3 // 100, replace=False)
    keys = np.concatenate([user_uuid[limited[100:]], email[limited[:100]], [f"old{i}@gone.example.org" for i in range(50)]])
    cyclades_text = (_lines(keys, "cyclades.vm", rng.integers(3, 20, len(keys)))
                     + _lines(keys, "cyclades.network.private", rng.integers(1, 10, len(keys))))
    return {
        "auth_user": users, "im_astakosuser": pd.DataFrame({"user_ptr_id": ids, "uuid": user_uuid}),
        "db_virtualmachine": pd.DataFrame({"id": np.arange(1, len(vms) + 1), "userid": vms}),
        "db_network": pd.DataFrame({"id": np.arange(1, len(nets) + 1), "userid": nets}),
        "nodes": pd.DataFrame({"node": np.arange(1, len(accounts) + 1), "parent": 0, "path": accounts}),
        "pithos_text": pithos_text, "cyclades_text": cyclades_text,
    }


def _lines(keys, resource: str, values) -> str:
    lines = pd.Series(keys) + f" {resource} " + pd.Series(values).astype(str) + f" 0 {INF} {INF}"
    return "\n".join(lines.tolist()) + "\n"


def load_world(conn, world: dict) -> None:
    conn.execute(SCHEMA)
    with conn.cursor() as cur:
        for table in ("auth_user", "im_astakosuser", "db_virtualmachine", "db_network", "nodes"):
            frame = world[table]
            with cur.copy(f"COPY {table} ({', '.join(frame.columns)}) FROM STDIN (FORMAT csv)") as copy:
                copy.write(frame.to_csv(index=False, header=False))
    conn.commit()
    conn.execute("ANALYZE")
    conn.commit()


# -- ours -------------------------------------------------------------------------------------
def read_frame(connect, query: str) -> pd.DataFrame:
    from synnefo.duplicates import read_accounts_csv

    buffer = io.BytesIO()
    with connect() as conn, conn.cursor() as cur, \
            cur.copy(f"COPY ({query}) TO STDOUT (FORMAT csv, HEADER)") as copy:
        for data in copy:
            buffer.write(data)
    buffer.seek(0)
    return read_accounts_csv(buffer)


def ours(connect, exports: Path, out: Path) -> dict:
    """The pandas side, timed by phase. The reads run at once, each on its own connection
    (`connect()`), as the find step's do (PostgreSQL works on each in its own process)."""
    from synnefo import duplicates, quotas

    t = [time.monotonic()]
    with ThreadPoolExecutor(len(READS)) as pool:
        futures = {name: pool.submit(read_frame, connect, query) for name, query in READS.items()}
        frames = {name: future.result() for name, future in futures.items()}
    astakos = frames["astakos"]
    t.append(time.monotonic())
    pithos_quotas = quotas.parse_pithos_export((exports / "pithos-quota.txt").read_text(), "pithos-quota.txt")
    cyclades_quotas = quotas.parse_cyclades_export((exports / "cyclades-quota.txt").read_text(), "cyclades-quota.txt")
    t.append(time.monotonic())
    result = duplicates.reconcile(astakos, frames["vms"], frames["networks"], frames["pithos"])
    t.append(time.monotonic())
    moves = result.moves
    deleted = moves.loc[(moves["service"] == "astakos") & (moves["action"] == "delete"), "account"].astype("int64")
    plan = quotas.plan_initial_quotas(astakos[~astakos["id"].isin(deleted)], pithos_quotas, cyclades_quotas)
    t.append(time.monotonic())
    (out / "initial-quota.txt").write_text(quotas.from_file_text(plan.plan))
    (out / "duplicates.md").write_text(duplicates.approval_markdown(result.decisions))
    (out / "duplicates.csv").write_text(duplicates.report_csv(result.decisions))
    t.append(time.monotonic())
    phases = dict(zip(["read 4 tables (COPY, at once)", "parse 2 export files", "duplicates", "quota plan", "write 3 files"],
                      np.diff(t), strict=True))
    return {"seconds": t[-1] - t[0], "phases": phases, "result": result, "plan": plan,
            "rows": {name: len(frame) for name, frame in frames.items()},
            "export_lines": len(pithos_quotas) + len(cyclades_quotas)}


# -- baseline ---------------------------------------------------------------------------------
def baseline(dsn: str, sample: list[tuple[int, str]], budget: float) -> dict:
    """find_astakos_users_with_conflicting_emails.py's queries, on `sample` for up to `budget` s."""
    import psycopg2

    conn = psycopg2.connect(dsn)
    try:
        cur = conn.cursor()
        t0 = time.monotonic()
        cur.execute(ALL_USERS)
        everyone = len(cur.fetchall())
        load = time.monotonic() - t0
        conflicting, done = set(), 0
        t0 = time.monotonic()
        for user_id, email in sample:
            cur.execute(IEXACT_COUNT, (email,))
            if cur.fetchone()[0] > 1:
                conflicting.add(user_id)
            done += 1
            if time.monotonic() - t0 > budget:
                break
        return {"load": load, "users": everyone, "queries": done, "query_seconds": time.monotonic() - t0,
                "conflicting": conflicting, "sampled": [i for i, _ in sample[:done]]}
    finally:
        conn.close()


def in_astakos_groups(result) -> set[int]:
    """Astakos ids pandas puts in a group with several Astakos users."""
    astakos = result.moves[result.moves["service"] == "astakos"]
    several = astakos.groupby("key")["account"].transform("size") > 1
    return set(astakos.loc[several, "account"].astype(int))


def main(argv: list[str] | None = None) -> int:
    from psycopg.conninfo import make_conninfo

    from lab.core import postgres

    parser = argparse.ArgumentParser(prog="python -m bench synnefo_reconcile")
    parser.add_argument("--users", type=int, default=1_000_000, help="Astakos users (1,000,000)")
    parser.add_argument("--sample", type=int, default=2000, help="users the baseline queries at most (2000)")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds the baseline's queries may run (60)")
    args = parser.parse_args(argv)
    server = postgres.resolve()
    db = f"airlift_bench_{uuidlib.uuid4().hex[:10]}"
    workdir = Path(tempfile.mkdtemp(prefix="airlift-bench-synnefo-"))
    postgres.create_database(server, db)
    try:
        t0 = time.monotonic()
        world = make_world(args.users)
        (workdir / "pithos-quota.txt").write_text(world["pithos_text"])
        (workdir / "cyclades-quota.txt").write_text(world["cyclades_text"])
        with postgres.connect(server, db) as conn:
            load_world(conn, world)
        print(f"  world: {args.users:,} users, {len(world['db_virtualmachine']):,} VMs, "
              f"{len(world['db_network']):,} networks, {len(world['nodes']):,} Pithos accounts in {db}, "
              f"built in {time.monotonic() - t0:.1f} s", flush=True)
        try:
            mine = ours(lambda: postgres.connect(server, db), workdir, workdir)
        except Exception as exc:  # a side that fails is reported, not raised: exit 1
            print(f"  ours FAILED: {exc!r}")
            return 1
        rng = np.random.default_rng(7)
        users = world["auth_user"]
        picked = rng.choice(len(users), min(args.sample, len(users)), replace=False)
        sample = list(zip(users["id"].to_numpy()[picked].tolist(), users["email"].to_numpy()[picked].tolist(),
                          strict=True))
        try:
            base = baseline(make_conninfo(server, dbname=db), sample, args.budget)
        except Exception as exc:
            print(f"  baseline FAILED: {exc!r}")
            return 1
        return report(args.users, mine, base)
    finally:
        postgres.drop_database(server, db)
        shutil.rmtree(workdir, ignore_errors=True)


def report(n_users: int, mine: dict, base: dict) -> int:
    result, plan = mine["result"], mine["plan"]
    summary = result.summary()
    per_query = base["query_seconds"] / max(base["queries"], 1)
    total = base["load"] + per_query * n_users
    extrapolated = base["queries"] < n_users
    print(f"  {'ours: reads, parsing, decisions, files':<{W}} {mine['seconds']:>9.2f} s")
    for phase, seconds in mine["phases"].items():
        print(f"    {phase:<{W - 2}} {seconds:>9.2f} s")
    rows = mine["rows"]
    print(f"    rows read: {rows['astakos']:,} Astakos users, {rows['vms']:,} VM owners and {rows['networks']:,} "
          f"network owners (GROUP BY userid), {rows['pithos']:,} Pithos accounts; {mine['export_lines']:,} export lines")
    logic = mine["seconds"] - mine["phases"]["read 4 tables (COPY, at once)"]
    several = len(in_astakos_groups(result))
    print(f"    {summary['groups']:,} duplicate groups ({several:,} Astakos users in groups with several), "
          f"{summary['astakos_deleted']:,} Astakos users to delete, {summary['vms_moved']:,} VMs and "
          f"{summary['networks_moved']:,} networks to reassign, {summary['pithos_accounts_merged']:,} Pithos "
          f"accounts to merge")
    why = plan.unknown["why"].value_counts().to_dict()
    print(f"    quotas: {len(plan.plan):,} planned ({int(plan.plan['unlimited'].sum()):,} Pithos 0 made unlimited), "
          f"{len(plan.unknown):,} lines of unknown users {why} (uuids of users deleted as duplicates, "
          f"emails Astakos never had), {len(plan.conflicts):,} conflicts")
    print(f"  {'baseline: all users in one query':<{W}} {base['load']:>9.2f} s  ({base['users']:,} rows)")
    print(f"  {'baseline: email__iexact per user':<{W}} {per_query * 1000:>9.1f} ms per query, "
          f"{base['queries']:,} users queried in {base['query_seconds']:.1f} s")
    label = "baseline, extrapolated to every user" if extrapolated else "baseline"
    print(f"  {label:<{W}} {total:>9.0f} s  ({total / 3600:.1f} h"
          + (f"; load + {per_query * 1000:.1f} ms x {n_users:,} users)" if extrapolated else ")"))
    expected = in_astakos_groups(result) & set(base["sampled"])
    if expected != base["conflicting"]:
        print(f"  DISAGREE on the sampled users: baseline finds {len(base['conflicting'])} in conflict, pandas "
              f"{len(expected)}; e.g. {sorted(expected ^ base['conflicting'])[:5]}")
        return 1
    print(f"  sampled users in conflict: {len(expected)} of {base['queries']:,}, the same on both sides")
    ratio = total / mine["seconds"]
    met = mine["seconds"] < TARGET_S and ratio >= TARGET_RATIO
    print(f"  ours {mine['seconds']:.2f} s with the reads, {logic:.2f} s without (target under {TARGET_S:.0f} s with "
          f"them), ratio baseline / ours {ratio:,.0f}x (target at least {TARGET_RATIO:,.0f}x): {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
