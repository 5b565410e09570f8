"""snf-manage's Astakos side in the lab (lab/synnefo/tools/snf_astakos.py, snf_quotaholder.py) on a
seeded 0.12 world (lab/synnefo/world.py): the functions called as snf_manage.py calls them,
with settings naming the world's snf_apps, stdout and stderr captured, stdin fed. The installed
packages (which apps syncdb and migrate handle) come from a dpkg status file of the test's.

Covered: im 0016's question (no answer or 0: nothing of the migration stays; an id: that user
kept), the duplicate ids setting, a second migrate changing nothing, syncdb's stale content
types question, user-set-initial-quota's refusal of a positional file and its --from-file
results, astakos-quota --verify/--sync/--verify (read by the DAG's parser), the quotaholder's
reset_holding, project-control on the world's projects."""

from __future__ import annotations

import contextlib
import io
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from lab.core import postgres
from lab.synnefo import projects, world
from lab.synnefo.tools import snf_astakos as astakos
from lab.synnefo.tools import snf_common, snf_quotaholder
from tests.helpers import synnefo_config

pytestmark = pytest.mark.lab

ASTAKOS_HOST = ("snf-webproject", "snf-astakos-app", "snf-quotaholder-app")
CYCLADES_HOST = ("snf-webproject", "snf-cyclades-app")
TOKEN = "lab-quotaholder-token"




@contextlib.contextmanager
def packages(directory: Path, *names: str):
    """dpkg's status file with `names` installed at 0.13, for the duration."""
    status = directory / f"status-{uuid.uuid4().hex[:6]}"
    status.write_text("".join(f"Package: {n}\nStatus: install ok installed\nVersion: 0.13.0-1\n\n" for n in names))
    saved, snf_common.DPKG_STATUS = snf_common.DPKG_STATUS, str(status)
    try:
        yield
    finally:
        snf_common.DPKG_STATUS = saved


def settings_of(info: dict, **more) -> dict:
    server = urlsplit(info["server"])
    return {"DATABASES": {"default": {
        "ENGINE": "django.db.backends.postgresql_psycopg2", "NAME": info["snf_apps"],
        "HOST": server.hostname or "127.0.0.1", "PORT": str(server.port or 5432),
        "USER": server.username or "postgres", "PASSWORD": server.password or ""}},
        "QUOTAHOLDER_TOKEN": TOKEN, "ASTAKOS_QUOTAHOLDER_TOKEN": TOKEN,
        "ASTAKOS_QUOTAHOLDER_URL": "https://astakos.synnefo.lab/quotaholder/v",
        "ASTAKOS_SERVICES": astakos.DEFAULT_SERVICES, **more}


def call(function, argv, settings, stdin=""):
    """(exit status, stdout, stderr) of a command as snf_manage runs it (CommandError: `Error:`)."""
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdin, sys.stdout, sys.stderr = io.StringIO(stdin), out, err
    try:
        try:
            status = function(argv, settings) or 0
        except snf_common.CommandError as exc:
            sys.stderr.write(f"Error: {exc}\n")
            status = 1
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved
    return status, out.getvalue(), err.getvalue()


def query(info, statement, params=None):
    return postgres.query(info["server"], info["snf_apps"], statement, params)


def fingerprint(info) -> dict:
    """Every table's columns and rows (md5 of the sorted rows)."""
    found = {}
    for (table,) in query(info, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"):
        columns = query(info, "SELECT column_name, data_type, character_maximum_length FROM information_schema.columns "
                              "WHERE table_name = %s ORDER BY ordinal_position", (table,))
        rows = query(info, f'SELECT md5(coalesce(string_agg(t::text, \'|\' ORDER BY t::text), \'\')) FROM "{table}" t')
        found[table] = (columns, rows[0][0])
    return found


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    cfg = synnefo_config(tmp_path_factory)
    info = world.seed(cfg, scale=1)
    yield cfg, info
    world.destroy(cfg)


@pytest.fixture(scope="module")
def upgraded(seeded, tmp_path_factory):
    """A copy of the world as runbook parts 3-5 leave it: syncdb and migrate on the Astakos host
    (the duplicates deleted by the setting) and on the Cyclades host (stale types kept), pithos
    renamed pithos+, the resources loaded."""
    cfg = synnefo_config(tmp_path_factory)
    info = {**seeded[1], **world.copy(seeded[0], cfg)}
    settings = settings_of(info, ASTAKOS_MIGRATION_0045_DELETE_DUPLICATE_USER_IDS=[1, 3, 5])
    dpkg = tmp_path_factory.mktemp("dpkg")
    for host in (ASTAKOS_HOST, CYCLADES_HOST):
        with packages(dpkg, *host):
            assert call(astakos.syncdb, [], settings, "no\n")[0] == 0
            assert call(astakos.migrate, [], settings)[0] == 0
    with packages(dpkg, *ASTAKOS_HOST):
        pithos = query(info, "SELECT id FROM im_service WHERE name = 'pithos'")[0][0]
        assert call(astakos.service_update, [str(pithos), "--name", "pithos+"], settings)[0] == 0
        assert call(astakos.astakos_init, ["--load-service-resources"], settings) == (0, "", "")
    yield cfg, info
    world.destroy(cfg)


@pytest.fixture
def fresh(seeded, tmp_path_factory, tmp_path):
    """A copy of the 0.12 world for one writing test, the Astakos host's packages installed."""
    cfg = synnefo_config(tmp_path_factory)
    info = {**seeded[1], **world.copy(seeded[0], cfg)}
    with packages(tmp_path, *ASTAKOS_HOST):
        yield info
    world.destroy(cfg)


@pytest.fixture
def fresh_013(upgraded, tmp_path_factory, tmp_path):
    """A copy of the upgraded world for one writing test."""
    cfg = synnefo_config(tmp_path_factory)
    info = {**upgraded[1], **world.copy(upgraded[0], cfg)}
    with packages(tmp_path, *ASTAKOS_HOST):
        yield info
    world.destroy(cfg)


def columns(info) -> list[tuple]:
    return query(info, "SELECT table_name, column_name, data_type, character_maximum_length, numeric_precision, "
                       "is_nullable FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2")


# -- migrate -------------------------------------------------------------------------------
@pytest.mark.parametrize("answer, last_line", [
    ("0\n", "Exception: Email Alice@cs.example is not unique [<AstakosUser: AstakosUser object>, "
            "<AstakosUser: AstakosUser object>]. Please resolve conflicts and run migrate again."),
    ("", "EOFError: EOF when reading a line"),
    ("\n", "SyntaxError: unexpected EOF while parsing"),
])
def test_migrate_on_duplicates_asks_and_an_unanswered_question_leaves_0_12(fresh, answer, last_line):
    before = fingerprint(fresh)
    status, out, err = call(astakos.migrate, [], settings_of(fresh), answer)
    assert status == 1
    assert out.splitlines()[:7] == [
        "Running migrations for im:",
        " - Migrating forwards to 0024_auto__add_field_projectapplication_response.",
        " > im:0015_auto__add_chain__add_project__add_projectmembership__add_unique_projec",
        " > im:0016_auth_providers_and_projects",
        "Duplicate email found in database",
        "1: Alice@cs.example (is_active: True)",
        "2: alice@cs.example (is_active: True)"]
    assert out.splitlines()[7] == ("Select which user id you want to BE PRESERVED in the database: "
                                   "Error in migration: im:0016_auth_providers_and_projects")
    assert err.startswith("Traceback (most recent call last):") and err.splitlines()[-1] == last_line
    assert fingerprint(fresh) == before  # nothing of 0015 or 0016 stays


def test_migrate_keeps_the_user_chosen_and_a_second_run_changes_nothing(fresh):
    settings = settings_of(fresh)
    status, out, err = call(astakos.migrate, [], settings, "1\n4\n6\n")
    assert (status, err) == (0, "")
    assert out.count("Duplicate email found in database") == 3
    assert "3: BOB@physics.example (is_active: False)\n4: Bob@physics.example (is_active: True)\n" in out
    assert out.endswith(" > im:0024_auto__add_field_projectapplication_response\n"
                        " - Loading initial data for im.\nNo fixtures found.\n")
    users = dict(query(fresh, "SELECT id, username FROM auth_user WHERE id <= 6"))
    assert users == {1: "alice@cs.example", 4: "bob@physics.example", 6: "dora@bio.example"}
    assert not query(fresh, "SELECT 1 FROM im_astakosuser WHERE user_ptr_id IN (2, 3, 5)")
    total = fresh["counts"]["astakos_users"] - 3
    assert query(fresh, "SELECT count(*), count(DISTINCT uuid), min(length(uuid)) FROM im_astakosuser") == [
        (total, total, 36)]
    assert query(fresh, "SELECT count(*) FROM auth_user WHERE username <> lower(email)") == [(0,)]
    assert query(fresh, "SELECT module, auth_backend, count(*) FROM im_astakosuserauthprovider GROUP BY 1, 2") == [
        ("local", "astakos", total)]
    history = [m for (m,) in query(fresh, "SELECT migration FROM south_migrationhistory WHERE migration >= '0015' "
                                          "AND app_name = 'im' ORDER BY 1")]
    assert [m[:4] for m in history] == [f"{n:04d}" for n in range(15, 25)]
    # Cyclades's db app is not installed on the Astakos host: its migrations wait for its migrate
    assert not query(fresh, "SELECT 1 FROM south_migrationhistory WHERE app_name = 'db' AND migration >= '0059'")

    before = fingerprint(fresh)
    assert call(astakos.migrate, [], settings) == (
        0, "Running migrations for im:\n- Nothing to migrate.\n - Loading initial data for im.\nNo fixtures found.\n",
        "")
    assert fingerprint(fresh) == before


def test_the_duplicate_ids_setting_deletes_them_without_asking_or_refuses(fresh):
    status, out, _ = call(astakos.migrate, [], settings_of(fresh, ASTAKOS_MIGRATION_0045_DELETE_DUPLICATE_USER_IDS=[
        2, "3", 5]))
    assert status == 0 and "Duplicate email found" not in out
    assert "Removing user: alice@cs.example (2)\nRemoving user: BOB@physics.example (3)\n" in out
    assert [u for (u,) in query(fresh, "SELECT id FROM auth_user WHERE id <= 6 ORDER BY 1")] == [1, 4, 6]


@pytest.mark.parametrize("ids, last_line", [
    ([999], "Exception: You requested user with id 999 to be removed but such user doesn't exist in database"),
    ([7], "Exception: You requested user with duplicate email Erin.Jones@math.example and id (7) to be removed, but "
          "it seems that only one user exists with this email in the database."),
])
def test_a_bad_duplicate_id_fails_the_migration(fresh, ids, last_line):
    before = fingerprint(fresh)
    status, _, err = call(astakos.migrate, [], settings_of(fresh, ASTAKOS_MIGRATION_0045_DELETE_DUPLICATE_USER_IDS=ids))
    assert status == 1 and err.splitlines()[-1] == last_line
    assert fingerprint(fresh) == before


# -- syncdb --------------------------------------------------------------------------------
def test_syncdb_creates_the_quotaholder_and_asks_about_stale_content_types(fresh, tmp_path):
    settings = settings_of(fresh)
    stale = "SELECT model FROM django_content_type WHERE app_label = 'db' AND model LIKE '%%pooltable' ORDER BY 1"
    with packages(tmp_path, *ASTAKOS_HOST, "snf-cyclades-app"):
        status, out, err = call(astakos.syncdb, [], settings, "no\n")
        assert (status, err) == (0, "")
        assert out.startswith("Syncing...\nCreating table quotaholder_app_holder\n")
        assert ("The following content types are stale and need to be deleted:\n\n    db | bridgepooltable\n"
                "    db | macprefixpooltable\n\nAny objects related to these content types by a foreign key will also\n"
                "be deleted. Are you sure you want to delete these content types?\nIf you're unsure, answer 'no'.\n\n"
                "    Type 'yes' to continue, or 'no' to cancel: Stale content types remain.\n") in out
        assert "Installed 1 object(s) from 1 fixture(s)\n" in out
        assert out.endswith("Not synced (use migrations):\n - astakos.im\n - synnefo.db\n - synnefo.ui.userdata\n"
                            "(use ./manage.py migrate to migrate these)\n")
        assert [m for (m,) in query(fresh, stale)] == ["bridgepooltable", "ippooltable", "macprefixpooltable"]
        assert query(fresh, "SELECT entity, owner_id, key FROM quotaholder_app_entity") == [("system", "system", "")]

        status, out, _ = call(astakos.syncdb, ["--noinput"], settings)
        assert status == 0 and "Creating table" not in out and "are stale" not in out
        assert "Stale content types remain.\n" in out

        before = fingerprint(fresh)
        status, out, err = call(astakos.syncdb, [], settings, "")  # nobody answers: no hang, an error
        assert status == 1 and err.splitlines()[-1] == "EOFError: EOF when reading a line"
        assert fingerprint(fresh) == before

        assert call(astakos.syncdb, [], settings, "yes\n")[0] == 0
        assert [m for (m,) in query(fresh, stale)] == ["ippooltable"]


# -- user-set-initial-quota ------------------------------------------------------------------
def test_user_set_initial_quota_refuses_the_runbooks_positional_file(fresh_013, tmp_path):
    path = tmp_path / "pithos-quota.txt"
    path.write_text("")
    before = fingerprint(fresh_013)
    assert call(astakos.user_set_initial_quota, [str(path)], settings_of(fresh_013)) == (
        1, "", "Error: Please use either `--from-file' or `--set-capacity' options\n")
    assert call(astakos.user_set_initial_quota, ["--from-file", str(path), "--set-capacity", "a", "b", "c"],
                settings_of(fresh_013))[2] == "Error: Cannot combine option `--from-file' with `--set-capacity'.\n"
    assert fingerprint(fresh_013) == before


def test_user_set_initial_quota_from_file(fresh_013, tmp_path):
    uuids = dict(query(fresh_013, "SELECT u.username, a.uuid FROM auth_user u JOIN im_astakosuser a "
                                  "ON a.user_ptr_id = u.id"))
    alice, bob = uuids["alice@cs.example"], uuids["bob@physics.example"]
    path = tmp_path / "quota.txt"
    path.write_text(f"{alice} pithos+.diskspace 21474836480 0 {10**30} {10**30}\n"
                    f"{alice}  cyclades.vm 5 0 {10**30} {10**30}\n"
                    "\n"
                    f"alice@cs.example cyclades.vm 5 0 {10**30} {10**30}\n"
                    f"{bob} cyclades.nope 3 0 1 1\n"
                    f"{bob} cyclades.vm five 0 1 1\n"
                    f"{bob} cyclades.network.private 4 0 {10**30} {10**30}")
    status, out, err = call(astakos.user_set_initial_quota, ["--from-file", str(path)], settings_of(fresh_013))
    assert (status, err) == (0, "")
    assert out.splitlines() == [
        f"Invalid line format: ['{alice}', '', 'cyclades.vm', '5', '0', '{10**30}', '{10**30}']:",
        "Invalid line format: ['']:",
        "Not found user having uuid: alice@cs.example",
        "Failed to policy: Resource matching query does not exist.",
        "Failed to policy: [u'This value must be a decimal number.']"]
    held = "SELECT a.uuid, s.name || '.' || r.name, q.capacity::text, q.import_limit::text FROM im_astakosuserquota q " \
           "JOIN im_astakosuser a ON a.user_ptr_id = q.user_id JOIN im_resource r ON r.id = q.resource_id " \
           "JOIN im_service s ON s.id = r.service_id ORDER BY 2"
    assert query(fresh_013, held) == [(bob, "cyclades.network.private", "4", str(10**30)),
                                      (alice, "pithos+.diskspace", "21474836480", str(10**30))]
    path.write_text(f"{alice} pithos+.diskspace 1 0 2 3\n")  # again: updated in place
    assert call(astakos.user_set_initial_quota, ["--from-file", str(path)], settings_of(fresh_013)) == (0, "", "")
    assert query(fresh_013, held)[1] == (alice, "pithos+.diskspace", "1", "2")


# -- astakos-quota and the quotaholder ---------------------------------------------------------
def test_astakos_quota_verify_sync_verify(fresh_013):
    from synnefo.quotas import parse_verify  # the DAG's reader of --verify (plugins/synnefo/quotas.py)

    settings = settings_of(fresh_013)
    verified = query(fresh_013, "SELECT a.uuid, u.username FROM im_astakosuser a JOIN auth_user u "
                                "ON u.id = a.user_ptr_id WHERE a.email_verified ORDER BY u.id")
    status, out, err = call(astakos.astakos_quota, ["--verify"], settings)
    assert (status, err) == (0, "Calculating all quotas...\n")
    assert out.startswith("Users not registered in quotaholder:\nAlice  (alice@cs.example)\n")
    assert f"No quotas for {verified[0][0]} ({verified[0][1]}) in quotaholder.\n" in out
    assert out.endswith(f"Quotas differ for {len(verified)} users.\n")
    assert set(parse_verify(out)["problem"]) == {"not registered", "no quotas"}

    status, out, _ = call(astakos.astakos_quota, ["--sync"], settings)
    assert status == 0 and out.splitlines() == [f"Synced {len(verified)} users:"] + [f"{u} ({n})" for u, n in verified]
    db = snf_common.apps_db(settings)
    held = snf_quotaholder.holdings(db)
    assert len(held) == 6 * len(verified) + 6  # every user's resources, and the services'
    assert held[(verified[0][0], "cyclades.vm")]["capacity"] == 2
    jo = query(fresh_013, "SELECT a.uuid FROM im_astakosuser a JOIN auth_user u ON u.id = a.user_ptr_id "
                          "WHERE u.username = 'jo@lang.example'")[0][0]
    assert jo not in snf_quotaholder.entities(db)  # never verified: no entity (research §7)

    assert call(astakos.astakos_quota, ["--verify"], settings) == (0, "", "Calculating all quotas...\n")
    assert call(astakos.astakos_quota, ["--sync"], settings)[1] == "No sync needed.\n"

    alice = verified[0][0]
    assert call(astakos.user_set_initial_quota, ["--set-capacity", alice, "cyclades.vm", "5", "-f"], settings)[0] == 0
    status, out, _ = call(astakos.astakos_quota, ["--verify"], settings)
    lines = out.splitlines()
    assert lines[0] == f"Quotas differ for {alice} (alice@cs.example):"
    assert lines[1] == "Quotas according to quotaholder:" and lines[3] == "Quotas according to astakos:"
    assert (f"u'cyclades.vm': QuotaValues(quantity=0, capacity=2, import_limit={10**32}L, "
            f"export_limit={10**32}L)") in lines[2]
    assert f"'cyclades.vm': QuotaValues(quantity=0L, capacity=5L, import_limit={10**32}L" in lines[4]
    assert lines[5:] == ["", "Quotas differ for 1 users."]
    differences = parse_verify(out)
    assert differences[["uuid", "resource", "field", "quotaholder", "astakos"]].values.tolist() == [
        [alice, "cyclades.vm", "capacity", 2, 5]]


def test_quotaholder_reset_holding_is_all_or_nothing(fresh_013):
    settings = settings_of(fresh_013)
    assert call(astakos.astakos_quota, ["--sync"], settings)[0] == 0
    db = snf_common.apps_db(settings)
    alice = query(fresh_013, "SELECT uuid FROM im_astakosuser WHERE user_ptr_id = 2")[0][0]  # 1 was deleted
    assert snf_quotaholder.call(settings, "reset_holding", "wrong", []) == (403, "invalid token")
    rows = [[alice, "pithos+.diskspace", "1", 1000, 0, 0, 0], ["nobody", "pithos+.diskspace", "1", 5, 0, 0, 0],
            [alice, "cyclades.nothing", "1", 5, 0, 0, 0]]
    assert snf_quotaholder.call(settings, "reset_holding", TOKEN, rows) == (200, [1, 2])
    assert snf_quotaholder.holdings(db, alice)[(alice, "pithos+.diskspace")]["imported"] == 0  # rolled back
    assert snf_quotaholder.call(settings, "reset_holding", TOKEN, rows[:1]) == (200, [])
    assert snf_quotaholder.holdings(db, alice)[(alice, "pithos+.diskspace")]["imported"] == 1000
    assert query(fresh_013, "SELECT importing::text FROM quotaholder_app_holding WHERE entity_id = %s AND "
                            "resource = 'pithos+.diskspace'", (alice,)) == [("1000",)]
    assert call(astakos.astakos_quota, ["--sync"], settings)[1] == "No sync needed.\n"  # usage is no limit


def test_astakos_init_needs_the_quotaholder_url(fresh_013):
    status, _, err = call(astakos.astakos_init, ["--load-service-resources"],
                          settings_of(fresh_013, ASTAKOS_QUOTAHOLDER_URL=""))
    assert status == 1 and err.splitlines()[-1] == "TypeError: object of type 'NoneType' has no len()"


def test_services_users_and_their_listing(upgraded):
    info = upgraded[1]
    settings = settings_of(info)
    status, out, _ = call(astakos.service_list, [], settings)
    lines = out.splitlines()
    assert status == 0 and lines[0] == (" id order         name                                      url "
                                        "          auth_token                 icon")
    assert set(lines[1]) == {"-"} and len(lines) == 4
    rows = call(astakos.service_list, ["-c"], settings)[1].splitlines()
    assert [r.split("|")[2] for r in rows] == ["cyclades", "pithos+"]
    assert [r.split("|")[4] for r in rows] == [info["services"]["cyclades"], info["services"]["pithos"]]
    assert call(astakos.service_update, ["9"], settings)[2] == (
        "Error: Service does not exist. You may run snf-mange service-list for available service IDs.\n")
    resources = query(info, "SELECT s.name || '.' || r.name, r.uplimit::text FROM im_resource r JOIN im_service s "
                            "ON s.id = r.service_id ORDER BY 1")
    assert resources[-1] == ("pithos+.diskspace", str(5 * 1024**3)) and len(resources) == 6

    out = call(astakos.user_list, ["--displayname", "-c", "--filter-by", "id<3"], settings)[1]
    alice = query(info, "SELECT uuid FROM im_astakosuser WHERE user_ptr_id = 2")[0][0]  # 1 was deleted
    assert out == f"2|alice@cs.example|Alice |YES|NO|{alice}|local:astakos\n"
    status, out, _ = call(astakos.user_show, ["ALICE@cs.example"], settings)
    assert status == 0 and f"\n                  uuid: {alice}\n" in out
    assert "\n              username: alice@cs.example\n" in out and "cyclades.vm: 2\n" in out
    assert call(astakos.user_show, ["nobody@x.example"], settings)[2] == (
        "Error: Unknown user with email 'nobody@x.example'\n")


# -- project-control -----------------------------------------------------------------------
def test_project_control_on_the_worlds_projects(fresh_013):
    settings = settings_of(fresh_013)
    ids = projects.seed_projects(fresh_013["server"], fresh_013["snf_apps"])
    assert projects.seed_projects(fresh_013["server"], fresh_013["snf_apps"]) == ids  # once only
    assert sorted(ids) == sorted(p.name for p in world.PROJECTS)
    expired = fresh_013["expired_projects"]
    status, out, _ = call(astakos.project_control, ["--check-expired"], settings)
    lines = out.splitlines()
    assert status == 0 and lines[0] == f"{len(expired)} expired projects:"
    assert lines[1] == f"{'Project':>10} {'Name':>30} {'Status':>14} {'Expiration date':>30}"
    assert lines[3] == f"{ids['course.cs101.2012']:>10} {'course.cs101.2012':>30} {'Active':>14} " \
                       f"{'2013-02-01 00:00:00':>30}"
    assert [line.split()[1] for line in lines[3:]] == expired

    status, out, _ = call(astakos.project_control, ["--terminate-expired"], settings)
    assert status == 0 and out.splitlines()[3:] == lines[3:] + [f"{len(expired)} projects have been terminated."]
    assert query(fresh_013, "SELECT state, name FROM im_project WHERE id = %s", (ids["course.cs101.2012"],)) == [
        (100, None)]
    assert call(astakos.project_control, ["--check-expired"], settings) == (0, "No expired projects.\n", "")
    assert call(astakos.project_control, ["--terminate-expired"], settings) == (0, "No expired projects.\n", "")
