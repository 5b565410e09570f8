"""The Cyclades and Pithos half of the lab's snf-manage (lab/synnefo/tools/snf_cyclades.py,
snf_pithos.py) and pithos-migrate (pithos_migrate.py), called on the host against a seeded 0.12
world (one per module, copied per test), with the settings read from a file as on a node.

Astakos's user catalog is the lab's own server logic (snf_lab_astakos.user_catalogs) on the
copy's snf_apps, reached directly instead of over SSH. Its users get uuids as 0.13's `migrate`
gives them (the test does it in SQL: one user per lower-cased email, username = the email
lower-cased, a uuid). The quotaholder's reset_holding is a stand-in that records the calls
and rejects the entities it is told to.
"""

from __future__ import annotations

import io
import re
import sys
import uuid
from urllib.parse import urlsplit

import pytest

from lab.core import postgres
from lab.core.config import LabConfig
from lab.synnefo import world
from lab.synnefo.tools import pithos_migrate, snf_common, snf_cyclades, snf_lab_astakos, snf_pithos
from tests.helpers import synnefo_config

pytestmark = pytest.mark.lab

# 0.13's `migrate` in short: the case duplicates resolved (the active, then the oldest user of
# each lower-cased email kept), username = lower(email), a uuid each.
ASTAKOS_0_13 = """
    ALTER TABLE auth_user ALTER COLUMN username TYPE varchar(75);
    ALTER TABLE im_astakosuser ADD COLUMN uuid varchar(255) UNIQUE;
    DELETE FROM im_astakosuser WHERE user_ptr_id NOT IN (
        SELECT DISTINCT ON (lower(email)) id FROM auth_user ORDER BY lower(email), is_active DESC, id);
    DELETE FROM auth_user WHERE id NOT IN (SELECT user_ptr_id FROM im_astakosuser);
    UPDATE auth_user SET username = lower(email);
    UPDATE im_astakosuser a SET uuid = md5('lab' || lower(u.email))::uuid::text FROM auth_user u
    WHERE u.id = a.user_ptr_id;
"""
PITHOS_TABLES = ("nodes", "versions", "statistics", "policy", "attributes", "groups", "xfeatures", "xfeaturevals",
                 "public")
# One spelling of each Pithos duplicate, deleted to resolve them (Alice@'s account, with the
# world's negative population, is the one kept).
DELETED_SPELLINGS = ("alice@cs.example", "Bob@physics.example", "Frank@chem.example", "Nomad@old.example")




@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    cfg = synnefo_config(tmp_path_factory)
    info = world.seed(cfg, scale=1)
    postgres.run_sql(info["server"], info["snf_apps"], ASTAKOS_0_13)
    yield cfg, info
    world.destroy(cfg)


class Node:
    """A copy of the world and the settings a Cyclades/Pithos host would have for it."""

    def __init__(self, info, dbs, directory):
        self.info, self.server, self.apps, self.pithos, self.dir = info, info["server"], dbs["snf_apps"], \
            dbs["snf_pithos"], directory
        server = urlsplit(self.server)
        self.settings = {
            "DATABASES": {"default": {"ENGINE": "django.db.backends.postgresql_psycopg2", "NAME": self.apps,
                                      "USER": server.username or "postgres", "PASSWORD": server.password or "",
                                      "HOST": server.hostname or "127.0.0.1", "PORT": str(server.port or 5432)}},
            "PITHOS_BACKEND_DB_CONNECTION": f"{self.server.rstrip('/')}/{self.pithos}",
            "ASTAKOS_URL": "https://astakos/im/authenticate",
            "CYCLADES_ASTAKOS_SERVICE_TOKEN": info["services"]["cyclades"],
            "PITHOS_USER_CATALOG_URL": "https://astakos/user_catalogs/",
            "PITHOS_SERVICE_TOKEN": info["services"]["pithos"],
            "VMS_USER_QUOTA": {"Alice@cs.example": 5, "ghost@old.example": 6},
            "NETWORKS_USER_QUOTA": {"Bob@physics.example": 2},
        }
        self.calls = []        # the quotaholder calls: (url, token, rows)
        self.unknown = set()   # entities the quotaholder rejects

    def write_settings(self, **changes):
        self.settings.update(changes)
        (self.dir / "20-lab.conf").write_text("".join(f"{k} = {v!r}\n" for k, v in self.settings.items()))

    def manage(self, function, *argv, answer=None, monkeypatch=None):
        """snf-manage <command> argv: the exit status (settings read from the file)."""
        if answer is not None:
            monkeypatch.setattr(sys, "stdin", io.StringIO(answer + "\n"))
        return snf_common.run_command(lambda settings: function(list(argv), settings), str(self.dir))

    def migrate(self, *argv):
        return pithos_migrate.migrate(list(argv), snf_common.load_settings(str(self.dir)))

    def astakos_call(self, url, token, call, payload):
        """snf_common.astakos_call without SSH: the lab's Astakos on this copy's snf_apps; the
        quotaholder's reset_holding recorded."""
        if call == "user_catalogs":
            status, data = snf_lab_astakos.user_catalogs(self.settings, token, payload)
            if not 200 <= status < 300:
                raise snf_common.ApiError(data, status)
            return data
        assert call == "reset_holding"
        self.calls.append((url, token, payload))
        return [i for i, row in enumerate(payload) if row[0] in self.unknown]

    def apps_rows(self, statement):
        return postgres.query(self.server, self.apps, statement)

    def pithos_rows(self, statement):
        return postgres.query(self.server, self.pithos, statement)

    def pithos_run(self, statements):
        postgres.run_sql(self.server, self.pithos, statements)

    def accounts(self):
        return sorted(r[0] for r in self.pithos_rows("SELECT path FROM nodes WHERE parent = 0 AND node != 0"))

    def checksums(self):
        """Every snf_pithos table's rows and the schema, as one md5 each."""
        sums = {t: self.pithos_rows(f"SELECT md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) "
                                    f"FROM {t} x")[0][0] for t in PITHOS_TABLES}
        sums["schema"] = self.pithos_rows(
            "SELECT string_agg(table_name || '.' || column_name, ',' ORDER BY table_name, column_name) "
            "FROM information_schema.columns WHERE table_schema = 'public'")[0][0]
        sums["indexes"] = self.pithos_rows("SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes "
                                           "WHERE schemaname = 'public'")[0][0]
        return sums

    def uuids(self):
        """{lower-cased email: uuid} of Astakos."""
        return dict(self.apps_rows("SELECT u.username, a.uuid FROM auth_user u JOIN im_astakosuser a "
                                   "ON a.user_ptr_id = u.id"))


@pytest.fixture
def node(seeded, tmp_path, monkeypatch):
    source, info = seeded
    target = LabConfig(lab_dir=str(tmp_path / "lab"), vpsadmin_db=f"airlift_t_{uuid.uuid4().hex[:10]}")
    dbs = world.copy(source, target)
    settings_dir = tmp_path / "etc-synnefo"
    settings_dir.mkdir()
    node = Node(info, dbs, settings_dir)
    node.write_settings()
    monkeypatch.setattr(snf_common, "astakos_call", node.astakos_call)
    monkeypatch.chdir(tmp_path)
    yield node
    world.destroy(target)


def _cyclades_ids(node):
    return {r[0] for r in node.apps_rows('SELECT userid FROM db_virtualmachine UNION SELECT userid FROM db_network '
                                         'WHERE userid IS NOT NULL UNION SELECT "user" FROM userdata_publickeypair')}


def _resolve_pithos_duplicates(node, monkeypatch):
    """Runbook 6.2 the short way: one spelling of each duplicate deleted."""
    for account in DELETED_SPELLINGS:
        assert node.manage(snf_pithos.manage_accounts, f"--delete-account={account}", answer="yes",
                           monkeypatch=monkeypatch) == 0


# -- cyclades-astakos-migrate-013 -----------------------------------------------------------------
def test_validate_lists_every_id_not_lower_case_and_is_silent_once_merged(node, capsys):
    ids = _cyclades_ids(node)
    expected = sorted(i for i in ids if i != i.lower())
    assert node.manage(snf_cyclades.astakos_migrate_013, "--validate") == 1
    out, err = capsys.readouterr()
    shown = ", ".join(f"u'{i}'" for i in [*expected, expected[0].lower()])
    assert (out, err) == ("", f"Error: Duplicate case insensitive user identifiers exist [{shown}]\n")
    assert "u'Ivan@arch.example'" in err  # not duplicated, not lower-case: listed all the same

    for email in node.info["duplicates"]["cyclades"]:
        assert node.manage(snf_cyclades.astakos_migrate_013, f"--merge-user={email.upper()}") == 0
    assert capsys.readouterr().out == "Merge finished.\n" * len(node.info["duplicates"]["cyclades"])
    assert node.manage(snf_cyclades.astakos_migrate_013, "--validate-db") == 0
    assert capsys.readouterr() == ("", "")


def test_merge_lowercases_every_row_deleted_ones_too(node, capsys):
    assert node.manage(snf_cyclades.astakos_migrate_013, "--merge-user=bob@PHYSICS.example") == 0
    assert capsys.readouterr().out == "Merge finished.\n"
    rows = node.apps_rows("SELECT userid, deleted FROM db_virtualmachine WHERE lower(userid) = 'bob@physics.example' "
                          "UNION ALL SELECT userid, deleted FROM db_network WHERE lower(userid) = 'bob@physics.example'")
    assert len(rows) == 4 and {userid for userid, _ in rows} == {"bob@physics.example"}
    assert (True in {deleted for _, deleted in rows}), "the destroyed BOB@ VM is merged too"


def test_migrate_users_maps_emails_to_uuids_and_reports_unknown_ids(node, capsys):
    for email in node.info["duplicates"]["cyclades"]:
        node.manage(snf_cyclades.astakos_migrate_013, f"--merge-user={email}")
    capsys.readouterr()
    uuids = node.uuids()
    emails = sorted(_cyclades_ids(node))
    assert node.manage(snf_cyclades.astakos_migrate_013, "--migrate-users") == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    known = [e for e in emails if e.lower() in uuids]  # Astakos matches the name lower-cased
    assert err == "" and lines[-1] == f"Migrated {len(known)} users"
    for email in emails:
        assert f"{email} -> {uuids.get(email.lower())}" in lines
    unknown = [e for e in emails if e not in known]
    assert unknown == ["ghost@old.example", "left@old.example"] and "Ivan@arch.example" in known
    assert [line for line in lines if line.startswith("ERROR")] == [
        f"ERROR: User id migration failed (No uuid for {e})" for e in unknown]
    assert _cyclades_ids(node) == {uuids[e.lower()] for e in known} | set(unknown)

    before = node.apps_rows("SELECT id, userid FROM db_virtualmachine ORDER BY id")
    assert node.manage(snf_cyclades.astakos_migrate_013, "--migrate-users") == 0
    out, _ = capsys.readouterr()
    assert out.splitlines()[0] == "WARNING: It seems that mixed uuid/email user identifiers exist in database."
    assert f"WARNING: Skipping {uuids['alice@cs.example']}. It doesn't seem to be an email\n" in out
    assert out.endswith("Migrated 0 users\n")
    assert node.apps_rows("SELECT id, userid FROM db_virtualmachine ORDER BY id") == before


def test_migrate_users_refuses_duplicates_and_reports_api_errors_per_user(node, capsys):
    assert node.manage(snf_cyclades.astakos_migrate_013, "--migrate-users") == 1
    assert capsys.readouterr().err.startswith("Error: Duplicate case insensitive user identifiers exist [")
    for email in node.info["duplicates"]["cyclades"]:
        node.manage(snf_cyclades.astakos_migrate_013, f"--merge-user={email}")
    node.write_settings(CYCLADES_ASTAKOS_SERVICE_TOKEN="not-a-token")
    before = sorted(_cyclades_ids(node))
    capsys.readouterr()
    # the real command catches each email's exception: ERROR lines, exit 0, nothing changed
    assert node.manage(snf_cyclades.astakos_migrate_013, "--migrate-users") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:-1] == ["ERROR: User id migration failed (('Invalid X-Auth-Token', 401))"] * len(before)
    assert lines[-1] == "Migrated 0 users" and sorted(_cyclades_ids(node)) == before
    assert node.manage(snf_cyclades.astakos_migrate_013, "--migrate-users", "--merge-user=x@y") == 1
    assert capsys.readouterr().err == "Error: You can use only one of --validate,--migrate-users\n"


def test_delete_user_asks_and_removes_vms_networks_keys_and_their_nics(node, capsys, monkeypatch):
    argv = ("cyclades-astakos-migrate-013", "--delete-user=Ghost@old.example")
    summary = ("The following entries will be deleted if you decide to remove this user\n0 Virtual Machines\n"
               "0 Destroyed Virtual Machines\n1 Networks\n0 PublicKeyPairs\n")
    prompt = "Type 'yes of course' if you are sure you want to remove those entries: "
    assert node.manage(snf_cyclades.astakos_migrate_013, argv[1], answer="yes", monkeypatch=monkeypatch) == 0
    assert capsys.readouterr().out == summary + prompt
    assert node.apps_rows("SELECT count(*) FROM db_network WHERE userid = 'Ghost@old.example'") == [(1,)]
    assert node.manage(snf_cyclades.astakos_migrate_013, argv[1], answer="yes of course",
                       monkeypatch=monkeypatch) == 0
    assert capsys.readouterr().out == summary + prompt + "User entries removed.\n"
    assert node.apps_rows("SELECT count(*) FROM db_network WHERE userid = 'Ghost@old.example'") == [(0,)]
    assert node.apps_rows("SELECT count(*) FROM db_networkinterface WHERE network_id NOT IN "
                          "(SELECT id FROM db_network)") == [(0,)]
    assert node.manage(snf_cyclades.astakos_migrate_013, argv[1]) == 0
    assert capsys.readouterr().out == "No entries exist for 'Ghost@old.example'\n"


# -- pithos-manage-accounts ----------------------------------------------------------------------
def test_list_duplicate_fails_with_the_groups_until_none_are_left(node, capsys, monkeypatch):
    assert node.manage(snf_pithos.manage_accounts, "--list-duplicate") == 1
    groups = node.info["duplicates"]["pithos"]
    assert capsys.readouterr().err == ("Error: The following case insensitive duplicates found:\n"
                                       + "\n".join(", ".join(g) for g in groups.values()) + "\n")
    _resolve_pithos_duplicates(node, monkeypatch)
    capsys.readouterr()
    assert node.manage(snf_pithos.manage_accounts, "--list-duplicate") == 0
    assert capsys.readouterr().out == "No duplicate accounts are found.\n"


def test_merge_needs_public_url_the_0_12_table_lacks(node, capsys, monkeypatch):
    """0.13's backend reads public.url (alembic 27381099d477 adds it): on the 0.12 table the
    merge fails at the first object and changes nothing."""
    before = node.checksums()
    assert node.manage(snf_pithos.manage_accounts, "--merge-accounts", "--src-account=Alice@cs.example",
                       "--dest-account=alice@cs.example", answer="yes", monkeypatch=monkeypatch) == 1
    out, err = capsys.readouterr()
    assert out.startswith("The following Alice@cs.example's entries will be moved to alice@cs.example:\n"
                          "Objects: [u'pithos/") and err == "Error: url\n"
    assert node.checksums() == before


def test_merge_then_delete_keeps_every_object_under_the_destination(node, capsys, monkeypatch):
    src, dest = "Bob@physics.example", "bob@physics.example"
    node.pithos_run("ALTER TABLE public ADD COLUMN url varchar(2048)")  # as after 27381099d477

    def objects(account):
        return dict(node.pithos_rows(
            "SELECT substr(o.path, length(a.path) + 2), v.hash FROM nodes a JOIN nodes c ON c.parent = a.node "
            "JOIN nodes o ON o.parent = c.node JOIN versions v ON v.serial = o.latest_version AND v.cluster = 0 "
            f"WHERE a.parent = 0 AND a.node != 0 AND a.path = '{account}'"))

    src_objects, dest_objects = objects(src), objects(dest)
    history = node.pithos_rows(f"SELECT count(*) FROM versions v JOIN nodes o ON o.node = v.node WHERE "
                               f"o.path LIKE '{src}/%/%' AND v.cluster = 1")[0][0]
    public = {r[0] for r in node.pithos_rows(f"SELECT substr(path, {len(src) + 2}) FROM public "
                                             f"WHERE path LIKE '{src}/%'")}
    groups = set(node.pithos_rows(f"SELECT name, member FROM groups WHERE owner = '{src}'"))
    assert src_objects and history
    assert node.manage(snf_pithos.manage_accounts, "--merge-accounts", f"--src-account={src}",
                       f"--dest-account={dest}", answer="yes", monkeypatch=monkeypatch) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"The following {src}'s entries will be moved to {dest}:\nObjects: [u'")
    assert out.endswith(f"Type 'yes' if you are sure you want to move those entries to {dest}: "
                        f"{src} merged into {dest}.\n")
    assert node.accounts().count(src) == 1, "the source is kept"
    merged = objects(dest)
    assert {name: merged[name] for name in src_objects} == src_objects
    assert {name: merged[name] for name in dest_objects if name not in src_objects} == \
        {name: h for name, h in dest_objects.items() if name not in src_objects}
    moved = node.pithos_rows(f"SELECT count(*) FROM versions v JOIN nodes o ON o.node = v.node "
                             f"WHERE o.path LIKE '{dest}/%/%' AND v.cluster = 1")[0][0]
    assert moved >= history, "the source's history versions follow its objects"
    assert {r[0] for r in node.pithos_rows(f"SELECT substr(path, {len(dest) + 2}) FROM public "
                                           f"WHERE path LIKE '{dest}/%' AND url IS NOT NULL")} >= public
    assert set(node.pithos_rows(f"SELECT name, member FROM groups WHERE owner = '{dest}'")) >= groups
    readers = node.pithos_rows(f"SELECT x.path FROM xfeatures x JOIN xfeaturevals v USING (feature_id) "
                               f"WHERE v.key = 0 AND v.value = '{dest}' AND x.path LIKE '{src}/%'")
    assert len(readers) == len(src_objects), "the destination may read every source object"

    assert node.manage(snf_pithos.manage_accounts, f"--delete-account={src}", answer="yes",
                       monkeypatch=monkeypatch) == 0
    assert capsys.readouterr().out.endswith(f"Type 'yes' if you are sure you want to remove those entries: "
                                            f"{src} is deleted.\n")
    assert src not in node.accounts()
    assert node.pithos_rows(f"SELECT count(*) FROM nodes WHERE path LIKE '{src}/%' OR path = '{src}'") == [(0,)]
    assert node.pithos_rows(f"SELECT count(*) FROM groups WHERE owner = '{src}'") == [(0,)]
    assert objects(dest) == merged
    assert node.manage(snf_pithos.manage_accounts, f"--delete-account={src}") == 1
    assert capsys.readouterr().err == f"Error: {src} does not exist\n"


def test_delete_refused_or_dry_changes_nothing(node, capsys, monkeypatch):
    before = node.checksums()
    assert node.manage(snf_pithos.manage_accounts, "--delete-account=Nomad@old.example", answer="no",
                       monkeypatch=monkeypatch) == 0
    assert node.manage(snf_pithos.manage_accounts, "--delete-account=Nomad@old.example", "--dry", answer="yes",
                       monkeypatch=monkeypatch) == 0
    assert capsys.readouterr().out.endswith("remove those entries: Skipping database commit.\n")
    assert node.manage(snf_pithos.manage_accounts, "--delete-account=Nomad@old.example",
                       monkeypatch=monkeypatch, answer="") == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert node.manage(snf_pithos.manage_accounts, "--delete-account=Nomad@old.example") == 1
    assert capsys.readouterr().err == "Error: EOF when reading a line\n"
    assert node.checksums() == before


# -- quota exports ----------------------------------------------------------------------------------
def test_export_quota_lines(node, capsys):
    inf = str(10 ** 30)
    assert node.manage(snf_pithos.export_quota, "--location=pithos-quota.txt") == 0
    assert capsys.readouterr() == ("", "")
    lines = (node.dir.parent / "pithos-quota.txt").read_text().splitlines()
    expected = {name: quota for name, quota in node.info["pithos_quota"].items()}
    assert sorted(lines) == sorted(f"{name} pithos+.diskspace {quota} 0 {inf} {inf}"
                                   for name, quota in expected.items())

    assert node.manage(snf_cyclades.export_quota, "--location", "cyclades-quota.txt") == 0
    path = node.dir.parent / "cyclades-quota.txt"
    assert capsys.readouterr().out == f"Successfully exported cyclades per-user-quotas to file '{path}'\n"
    assert path.read_text() == (f"Alice@cs.example cyclades.vm 5 0 {inf} {inf}\nghost@old.example cyclades.vm 6 0 "
                                f"{inf} {inf}\nBob@physics.example cyclades.network.private 2 0 {inf} {inf}\n")
    assert node.manage(snf_pithos.export_quota, "--location=/nonexistent/dir/q.txt") == 1
    assert capsys.readouterr().err == "Error: [Errno 2] No such file or directory: '/nonexistent/dir/q.txt'\n"


# -- usage resets -----------------------------------------------------------------------------------
def test_pithos_usage_lists_and_resets_retrying_without_unknown_users(node, capsys):
    assert node.manage(snf_pithos.usage, "--user=alice@cs.example", "--user=left@old.example") == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(": ")[0] for line in lines] == ["alice@cs.example", "left@old.example"]
    assert node.manage(snf_pithos.usage, "--reset") == 1
    assert capsys.readouterr().err == "Error: Quotaholder component is not enabled\n"
    node.write_settings(PITHOS_USE_QUOTAHOLDER=True, PITHOS_QUOTAHOLDER_URL="https://astakos/quotaholder/v")
    assert node.manage(snf_pithos.usage, "--reset") == 1
    assert capsys.readouterr().err == "Error: Quotaholder token is not set\n"
    node.write_settings(PITHOS_QUOTAHOLDER_TOKEN="qh-token")
    node.unknown = {"left@old.example", "nomad@old.example"}
    assert node.manage(snf_pithos.usage, "--reset") == 0
    out = capsys.readouterr().out
    assert out.endswith("Unknown quotaholder users: left@old.example, nomad@old.example\n"
                        "Retrying sending quota usage for the rest...\n")
    first, second = node.calls
    assert len(first[2]) == len(node.accounts()) and len(second[2]) == len(first[2]) - 2
    assert all(row[1:3] == ["pithos+.diskspace", "1"] and row[4:] == [0, 0, 0] for row in first[2])
    assert node.manage(snf_pithos.usage, "--user=nobody") == 1
    assert capsys.readouterr().err == "Error: No users found.\n"


def test_cyclades_reset_usage_sends_each_user_and_ignores_rejections(node, capsys):
    assert node.manage(snf_cyclades.reset_usage, "--userid=Alice@cs.example", "--dry-run") == 0
    out = capsys.readouterr().out
    assert re.fullmatch(r"Reseting holding: \[\(u'Alice@cs\.example', 'cyclades\.vm', '1', 2L, 0, 0, 0\), "
                        r"\(u'Alice@cs\.example', 'cyclades\.cpu', '1', \d+L, 0, 0, 0\), .*\]\n", out)
    node.write_settings(CYCLADES_USE_QUOTAHOLDER=True, CYCLADES_QUOTAHOLDER_URL="https://astakos/quotaholder/v",
                        CYCLADES_QUOTAHOLDER_TOKEN="qh-token")
    node.unknown = {"ghost@old.example"}
    assert node.manage(snf_cyclades.reset_usage) == 0
    assert capsys.readouterr() == ("", "")
    users = [rows[0][0] for _, _, rows in node.calls]
    assert users == sorted(users) and "ghost@old.example" in users and None not in users
    live = node.apps_rows("SELECT count(*) FROM db_virtualmachine WHERE NOT deleted AND userid = 'Alice@cs.example'")
    alice = next(rows for _, _, rows in node.calls if rows[0][0] == "Alice@cs.example")
    assert alice[0] == ["Alice@cs.example", "cyclades.vm", "1", live[0][0], 0, 0, 0]


# -- pithos-migrate ---------------------------------------------------------------------------------
def test_current_is_none_then_stamp_then_upgrade_maps_accounts_to_uuids(node, capsys, monkeypatch):
    url = node.settings["PITHOS_BACKEND_DB_CONNECTION"]
    assert node.migrate("current") == 0
    out, err = capsys.readouterr()
    assert out == f"Current revision for {pithos_migrate.shown_url(url)}: None\n"
    assert err == ("INFO  [alembic.migration] Context impl PostgresqlImpl.\n"
                   "INFO  [alembic.migration] Will assume transactional DDL.\n")
    assert node.pithos_rows("SELECT count(*) FROM alembic_version") == [(0,)], "current creates the table"

    # unstamped: the chain from its base, whose first index 0.12.5 already has
    before = node.checksums()
    assert node.migrate("upgrade", "head") == 1
    out, err = capsys.readouterr()
    assert "Running upgrade None -> 8320b1c62d9" in err and "Running upgrade 8320b1c62d9" not in err
    assert err.endswith('sqlalchemy.exc.ProgrammingError: (ProgrammingError) relation "idx_nodes_parent" already '
                        "exists\n 'CREATE INDEX idx_nodes_parent ON nodes (parent)' {}\n")
    assert node.checksums() == before

    assert node.migrate("stamp", "3dd") == 0
    assert node.pithos_rows("SELECT version_num FROM alembic_version") == [("3dd56e750a3",)]
    assert node.migrate("stamp", "nope") == 255
    assert capsys.readouterr().out == "  No such revision 'nope'\n"

    _resolve_pithos_duplicates(node, monkeypatch)
    capsys.readouterr()
    uuids, accounts = node.uuids(), node.accounts()
    assert node.pithos_rows("SELECT count(*) FROM statistics WHERE population < 0") == [(1,)]
    assert node.migrate("upgrade", "head") == 0
    out, err = capsys.readouterr()
    assert [line for line in err.splitlines() if "Running" in line] == [
        "INFO  [alembic.migration] Running upgrade 3dd56e750a3 -> 165ba3fbfe53",
        "INFO  [alembic.migration] Running upgrade 165ba3fbfe53 -> 2a309a9a3438",
        "INFO  [alembic.migration] Running upgrade 2a309a9a3438 -> 27381099d477"]
    assert out.startswith("Migrating node paths...\n\n --> None\n\n")
    for label in ("version modification users", "public paths", "permission paths", "permission holders",
                  "group owners & members"):
        assert f"Migrating {label}...\n" in out
    for account in accounts:
        assert out.count(f"\n{account} --> {uuids.get(account.lower())}\n") == 1
    assert node.accounts() == sorted(uuids.get(a.lower(), a) for a in accounts)
    assert {"left@old.example", "nomad@old.example"} <= set(node.accounts()), "unknown to Astakos: kept"
    assert node.pithos_rows("SELECT count(*) FROM versions WHERE muser LIKE '%@%' AND muser NOT LIKE '%@old.example'"
                            ) == [(0,)]
    assert node.pithos_rows("SELECT count(*) FROM groups WHERE owner LIKE '%@%.example' AND owner NOT LIKE "
                            "'%@old.example' OR member LIKE '%@%.example' AND member NOT LIKE '%@old.example'") == [(0,)]
    assert node.pithos_rows("SELECT count(*) FROM statistics WHERE population < 0") == [(0,)]
    assert node.pithos_rows("SELECT count(*) FROM public WHERE url IS NULL") == [(0,)]
    assert "idx_public_url" in node.checksums()["indexes"]
    assert node.pithos_rows("SELECT version_num FROM alembic_version") == [("27381099d477",)]

    at_head = node.checksums()
    assert node.migrate("upgrade", "head") == 0
    assert capsys.readouterr() == ("", "INFO  [alembic.migration] Context impl PostgresqlImpl.\n"
                                       "INFO  [alembic.migration] Will assume transactional DDL.\n")
    assert node.checksums() == at_head
    assert node.migrate("current") == 0
    assert capsys.readouterr().out.endswith(": 2a309a9a3438 -> 27381099d477 (head), alter public add column url\n")


def test_upgrade_with_case_duplicates_aborts_and_changes_nothing(node, capsys):
    node.pithos_run("CREATE TABLE alembic_version (version_num varchar(32) NOT NULL); "
                    "INSERT INTO alembic_version VALUES ('3dd56e750a3')")
    before = node.checksums()
    assert node.migrate("upgrade", "head") == 1
    out, err = capsys.readouterr()
    alice = node.uuids()["alice@cs.example"]
    assert out.endswith(f"\nAlice@cs.example --> {alice}\n\nalice@cs.example --> {alice}\n")
    assert "Migrating version modification users" not in out
    assert 'sqlalchemy.exc.IntegrityError: (IntegrityError) duplicate key value violates unique constraint ' \
           '"idx_nodes_path"\nDETAIL:  Key (path)=(' + alice + ") already exists." in err
    assert node.checksums() == before
    assert node.pithos_rows("SELECT version_num FROM alembic_version") == [("3dd56e750a3",)]


@pytest.mark.parametrize("token, message", [("wrong", "Invalid X-Auth-Token"), ("", "Access denied")])
def test_upgrade_with_a_wrong_service_token_aborts_and_changes_nothing(node, capsys, monkeypatch, token, message):
    _resolve_pithos_duplicates(node, monkeypatch)
    node.write_settings(PITHOS_SERVICE_TOKEN=token)
    assert node.migrate("stamp", "3dd56e750a3") == 0
    capsys.readouterr()
    before = node.checksums()
    assert node.migrate("upgrade", "head") == 1
    out, err = capsys.readouterr()
    assert out == "Migrating node paths...\n\n --> None\n"
    assert err.splitlines()[-1] == f"Exception: ({message!r}, 401)"
    assert node.checksums() == before
    assert node.pithos_rows("SELECT version_num FROM alembic_version") == [("3dd56e750a3",)]


def test_pithos_migrate_reads_the_settings_first(node, capsys, monkeypatch):
    (node.dir / "30-broken.conf").write_text("PITHOS_USE_QUOTAHOLDER = True,\nnot python\n")
    monkeypatch.setenv("SYNNEFO_SETTINGS_DIR", str(node.dir))
    assert pithos_migrate.pithos_migrate(["current"]) == 1
    assert capsys.readouterr().err.startswith(f"Failed to read settings file: {node.dir / '30-broken.conf'} [")
    assert node.pithos_rows("SELECT to_regclass('alembic_version') IS NULL") == [(True,)]
    (node.dir / "30-broken.conf").unlink()
    assert node.migrate() == 2 and capsys.readouterr().err.endswith("pithos-migrate: error: too few arguments\n")
