"""include/scripts/postgres/{dump,restore}.sh against the machine's PostgreSQL (a scratch
database of their own): a dump is verified and kept on retry, a restore brings the database
back to the dump's tables and rows (tables added since go too) in one transaction, and a
dump whose checksum changed or a hostile argument (they come from XCom) is refused before
any tool touches the database."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from airlift.sql import INCLUDE_DIR
from lab.core import postgres

SCRIPTS = INCLUDE_DIR / "scripts" / "postgres"


@pytest.fixture(scope="module")
def database():
    server = postgres.resolve()
    name = f"airlift_dumptest_{uuid.uuid4().hex[:8]}"
    postgres.create_database(server, name)
    postgres.run_sql(server, name, "CREATE TABLE users (id int PRIMARY KEY, email text);"
                                   "INSERT INTO users VALUES (1, 'a@example.org'), (2, 'B@example.org');"
                                   'CREATE TABLE "Quota" (holder text, q bigint);'
                                   "INSERT INTO \"Quota\" VALUES ('a', 10);")
    url = urlsplit(server)
    yield {"server": server, "name": name, "args": [url.hostname, str(url.port or 5432), url.username or "postgres"]}
    postgres.drop_database(server, name)


def run(script: str, args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPTS / script), *args], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root")})


def rows(db) -> dict:
    return {t: postgres.query(db["server"], db["name"], f'SELECT * FROM "{t}" ORDER BY 1') for t in
            [r[0] for r in postgres.query(db["server"], db["name"],
                                          "SELECT table_name FROM information_schema.tables "
                                          "WHERE table_schema = 'public' ORDER BY 1")]}


def test_dump_verifies_is_kept_on_retry_and_restores_in_one_transaction(database, tmp_path):
    out = tmp_path / "backups" / f"{database['name']}-before.dump"
    first = run("dump.sh", [*database["args"], database["name"], str(out)])
    assert first.returncode == 0, first.stderr
    dump = json.loads(first.stdout)
    assert dump["path"] == str(out) and not dump["reused"] and sorted(dump["tables"]) == ["Quota", "users"]
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    assert not Path(str(out) + ".partial").exists()
    again = json.loads(run("dump.sh", [*database["args"], database["name"], str(out)]).stdout)
    assert again["reused"] and again["sha256"] == dump["sha256"]

    before = rows(database)
    postgres.run_sql(database["server"], database["name"],
                     "CREATE TABLE im_added (x int); DELETE FROM users WHERE id = 2; UPDATE \"Quota\" SET q = 0;")
    restored = run("restore.sh", [*database["args"], database["name"], str(out), dump["sha256"]])
    assert restored.returncode == 0, restored.stderr
    assert restored.stderr == ""
    assert rows(database) == before  # im_added is gone, the rows are back

    out.write_bytes(out.read_bytes() + b"\0")  # the dump changed since it was made
    refused = run("restore.sh", [*database["args"], database["name"], str(out), dump["sha256"]])
    assert refused.returncode == 1 and "not restoring it" in refused.stderr


def test_a_failing_restore_leaves_the_database_as_it_was(database, tmp_path):
    broken = tmp_path / "broken.dump"
    broken.write_bytes(b"PGDMP not really a dump")
    sha = subprocess.run(["sha256sum", str(broken)], capture_output=True, text=True).stdout.split()[0]
    before = rows(database)
    result = run("restore.sh", [*database["args"], database["name"], str(broken), sha])
    assert result.returncode != 0
    assert rows(database) == before


@pytest.mark.parametrize(("script", "args", "error"), [
    ("dump.sh", ["127.0.0.1", "5432", "postgres", "x; DROP DATABASE y", "/b/x.dump"], "is not a plain PostgreSQL name"),
    ("dump.sh", ["127.0.0.1", "5432", "--help", "snf_apps", "/b/x.dump"], "is not a plain PostgreSQL name"),
    ("dump.sh", ["$(reboot)", "5432", "postgres", "snf_apps", "/b/x.dump"], "is not a host name"),
    ("dump.sh", ["127.0.0.1", "5432x", "postgres", "snf_apps", "/b/x.dump"], "is not a host name"),
    ("dump.sh", ["127.0.0.1", "5432", "postgres", "snf_apps", "/b/../etc/x.dump"], "is not an absolute path"),
    ("dump.sh", ["127.0.0.1", "5432", "postgres", "snf_apps", "/b/x.sql"], "is not an absolute path"),
    ("restore.sh", ["127.0.0.1", "5432", "postgres", "snf_apps", "/b/x.dump", "abc"], "not a sha256"),
    ("restore.sh", ["127.0.0.1", "5432", "postgres", "snf_apps\n", "/b/x.dump", "0" * 64], "plain PostgreSQL"),
])
def test_hostile_arguments_are_refused(script, args, error):
    result = run(script, args)
    assert result.returncode == 2
    assert error in result.stderr
