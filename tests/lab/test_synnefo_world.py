"""The Synnefo 0.12 world (lab/synnefo/world.py) on the lab's PostgreSQL: the 0.12 shape of
snf_apps and snf_pithos, the mess `info` describes as the databases hold it (each checked with
SQL of its own, not with the seed's code), the template copy and the cleanup."""

from __future__ import annotations

from collections import defaultdict

import pytest

from lab.core import postgres
from lab.synnefo import databases_record, destroy_world, world
from tests.helpers import synnefo_config

pytestmark = pytest.mark.lab




@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """One world per module, in databases named for this module only."""
    cfg = synnefo_config(tmp_path_factory)
    info = world.seed(cfg, scale=1)
    yield cfg, info
    world.destroy(cfg)


def _apps(info, statement, params=None):
    return postgres.query(info["server"], info["snf_apps"], statement, params)


def _pithos(info, statement, params=None):
    return postgres.query(info["server"], info["snf_pithos"], statement, params)


def _tables(info, db: str) -> set[str]:
    return {name for (name,) in postgres.query(info["server"], info[db], "SELECT table_name FROM "
                                               "information_schema.tables WHERE table_schema = 'public'")}


def _columns(info, db: str, table: str) -> dict[str, tuple]:
    rows = postgres.query(info["server"], info[db], "SELECT column_name, data_type, character_maximum_length "
                          "FROM information_schema.columns WHERE table_name = %s", (table,))
    return {name: (data_type, length) for name, data_type, length in rows}


def _case_groups(ids) -> dict[str, list[str]]:
    groups = defaultdict(set)
    for i in ids:
        groups[i.lower()].add(i)
    return {key: sorted(spellings) for key, spellings in groups.items() if len(spellings) > 1}


def _cyclades_ids(info) -> list[str]:
    """get_existing_users(): every VM (deleted ones too), network and key (research §1)."""
    return [i for (i,) in _apps(info, 'SELECT userid FROM db_virtualmachine UNION SELECT userid FROM db_network '
                                      'WHERE userid IS NOT NULL UNION SELECT "user" FROM userdata_publickeypair')]


def _pithos_accounts(info) -> list[str]:
    return [path for (path,) in _pithos(info, "SELECT path FROM nodes WHERE parent = 0 AND node <> 0")]


def test_databases_as_synnefo_creates_them(seeded):
    cfg, info = seeded
    assert (info["snf_apps"], info["snf_pithos"]) == tuple(world.synnefo_dbs(cfg).values())
    for db in ("snf_apps", "snf_pithos"):
        rows = postgres.query(info["server"], info[db], "SELECT pg_encoding_to_char(encoding), datcollate, "
                              "datctype FROM pg_database WHERE datname = current_database()")
        assert rows == [("UTF8", "C", "C")]


def test_schemas_are_the_0_12_ones(seeded):
    _, info = seeded
    assert {"auth_user", "im_astakosuser", "im_service", "django_content_type", "south_migrationhistory",
            "db_flavor", "db_virtualmachine", "db_network", "db_networkinterface",
            "userdata_publickeypair"} == _tables(info, "snf_apps")
    assert {"nodes", "policy", "statistics", "versions", "attributes", "groups", "xfeatures", "xfeaturevals",
            "public"} == _tables(info, "snf_pithos")  # no alembic_version: never stamped
    astakos_user = _columns(info, "snf_apps", "im_astakosuser")
    assert "uuid" not in astakos_user and "disturbed_quota" not in astakos_user  # 0.13's im 0015
    assert {"email_verified", "auth_token", "provider"} <= set(astakos_user)
    assert _columns(info, "snf_apps", "auth_user")["username"] == ("character varying", 30)
    assert "order" not in _columns(info, "snf_apps", "im_service")
    assert "serial_id" not in _columns(info, "snf_apps", "db_virtualmachine")  # 0.13's db 0059
    assert "url" not in _columns(info, "snf_pithos", "public")  # alembic 27381099d477
    assert "latest_version" in _columns(info, "snf_pithos", "nodes")
    last = dict(_apps(info, "SELECT app_name, MAX(migration) FROM south_migrationhistory GROUP BY app_name"))
    assert {app: name[:4] for app, name in last.items()} == {"im": "0014", "db": "0058", "userdata": "0003"}
    assert _pithos(info, "SELECT node, parent, path FROM nodes WHERE node = 0") == [(0, 0, "")]


def test_astakos_duplicates(seeded):
    _, info = seeded
    rows = _apps(info, "SELECT lower(email), array_agg(id ORDER BY id) FROM auth_user GROUP BY 1 HAVING COUNT(*) > 1")
    assert dict(rows) == info["duplicates"]["astakos"]
    # Both 0.12 ways to get one: two spellings (alice) and one email registered twice (dora).
    emails = dict(_apps(info, "SELECT id, email FROM auth_user"))
    assert [emails[i] for i in info["duplicates"]["astakos"]["alice@cs.example"]] == ["Alice@cs.example",
                                                                                       "alice@cs.example"]
    assert len({emails[i] for i in info["duplicates"]["astakos"]["dora@bio.example"]}) == 1


def test_duplicates_in_cyclades_and_pithos(seeded):
    _, info = seeded
    assert _case_groups(_cyclades_ids(info)) == info["duplicates"]["cyclades"]
    assert _case_groups(_pithos_accounts(info)) == info["duplicates"]["pithos"]
    # The Astakos duplicates own VMs, networks and Pithos accounts under several spellings.
    for email in ("alice@cs.example", "bob@physics.example"):
        assert email in info["duplicates"]["cyclades"] and email in info["duplicates"]["pithos"]
    owners = {u for (u,) in _apps(info, "SELECT userid FROM db_network WHERE lower(userid) = 'alice@cs.example'")}
    assert owners == {"Alice@cs.example"}


def test_spellings_differ_in_one_service_only(seeded):
    _, info = seeded
    erin = info["people"]["erin.jones@math.example"]
    assert [u["email"] for u in erin["astakos"]] == ["Erin.Jones@math.example"]
    vm_owners = {u for (u,) in _apps(info, "SELECT userid FROM db_virtualmachine "
                                           "WHERE lower(userid) = 'erin.jones@math.example'")}
    assert vm_owners == {"Erin.Jones@math.example", "erin.jones@math.example"}
    accounts = [a for a in _pithos_accounts(info) if a.lower() == "erin.jones@math.example"]
    assert accounts == ["ERIN.JONES@math.example"]
    # Frank: a duplicate in Pithos only; Gina and Henry: in Cyclades only (a key, a destroyed VM).
    assert "frank@chem.example" in info["duplicates"]["pithos"]
    assert "frank@chem.example" not in info["duplicates"]["cyclades"]
    assert {"gina@geo.example", "henry@med.example"} <= set(info["duplicates"]["cyclades"])
    assert _apps(info, "SELECT deleted, operstate FROM db_virtualmachine WHERE userid = 'Henry@med.example'") == [
        (True, "DESTROYED")]


def test_unknown_users(seeded):
    _, info = seeded
    known = {e for (e,) in _apps(info, "SELECT lower(email) FROM auth_user")}
    unknown_cyclades = sorted(i for i in _cyclades_ids(info) if i.lower() not in known)
    unknown_pithos = sorted(a for a in _pithos_accounts(info) if a.lower() not in known)
    assert unknown_cyclades == info["unknown"]["cyclades"] and unknown_cyclades
    assert unknown_pithos == info["unknown"]["pithos"] and unknown_pithos
    # They are in the quota exports: a Pithos quota row, a VMS_USER_QUOTA entry.
    assert "left@old.example" in info["pithos_quota"]
    assert "ghost@old.example" in info["cyclades_user_quota"]["VMS_USER_QUOTA"]


def test_pithos_quotas_as_the_export_reads_them(seeded):
    _, info = seeded
    exported = _pithos(info, "SELECT n.path, p.value FROM nodes n JOIN policy p ON p.node = n.node "
                             "WHERE n.node <> 0 AND n.parent = 0 AND p.key = 'quota'")  # research §4
    assert {path: int(value) for path, value in exported} == info["pithos_quota"]
    assert 0 in info["pithos_quota"].values() and any(v > 0 for v in info["pithos_quota"].values())
    # Containers carry quota rows too (put_container's defaults): not the export's.
    assert _pithos(info, "SELECT COUNT(*) FROM policy p JOIN nodes n USING (node) "
                         "WHERE n.parent <> 0 AND p.key = 'quota'")[0][0] > 0


def test_expected_quota_rules(seeded):
    _, info = seeded
    expected = info["expected_quota"]
    gib = 1024 ** 3
    assert expected["alice@cs.example"] == {"pithos+.diskspace": 50 * gib, "cyclades.vm": 8}  # 20 GiB < default
    assert expected["bob@physics.example"]["pithos+.diskspace"] == world.UNLIMITED  # 0 beside 10 GiB
    assert expected["erin.jones@math.example"] == {"pithos+.diskspace": 30 * gib}
    assert expected["ivan@arch.example"] == {"cyclades.vm": 4}
    assert not {"left@old.example", "nomad@old.example", "ghost@old.example"} & set(expected)  # no Astakos user
    assert "gina@geo.example" not in expected  # nothing of her own: the defaults


def test_pithos_tree_and_statistics(seeded):
    _, info = seeded
    counts = info["counts"]
    assert _pithos(info, "SELECT COUNT(*) FROM versions")[0][0] == counts["pithos_versions"] > 200
    assert len(_pithos_accounts(info)) == counts["pithos_accounts"]
    # A container's normal-cluster size is the sum of its objects' current versions.
    mismatched = _pithos(info, """
        SELECT c.path FROM nodes c JOIN statistics s ON s.node = c.node AND s.cluster = 0
        WHERE c.parent IN (SELECT node FROM nodes WHERE parent = 0 AND node <> 0)
          AND s.size <> (SELECT COALESCE(SUM(v.size), 0) FROM nodes o JOIN versions v ON v.node = o.node
                         WHERE o.parent = c.node AND v.cluster = 0)""")
    assert mismatched == []
    negative = _pithos(info, "SELECT n.path FROM statistics s JOIN nodes n USING (node) WHERE s.population < 0")
    assert [path for (path,) in negative] == info["negative_population"]
    # Other users' ids inside accounts, for pithos-migrate to rewrite (versions.muser, groups).
    assert _pithos(info, "SELECT COUNT(*) FROM versions v JOIN nodes n USING (node) "
                         "WHERE v.muser <> split_part(n.path, '/', 1)")[0][0] > 0
    assert _pithos(info, "SELECT COUNT(*) FROM groups")[0][0] > 0


def test_seed_is_deterministic_and_stamps_alembic(seeded, tmp_path_factory):
    _, info = seeded
    cfg = synnefo_config(tmp_path_factory)
    try:
        again = world.seed(cfg, scale=1, pithos_alembic="3dd56e750a3")
        assert _pithos(again, "SELECT version_num FROM alembic_version") == [("3dd56e750a3",)]
        different = {"snf_apps", "snf_pithos", "pithos_alembic"}
        assert {k: v for k, v in again.items() if k not in different} == {
            k: v for k, v in info.items() if k not in different}
    finally:
        world.destroy(cfg)


def test_copy_then_destroy(seeded, tmp_path_factory):
    source, info = seeded
    cfg = synnefo_config(tmp_path_factory)
    copies = world.copy(source, cfg)
    assert copies == world.synnefo_dbs(cfg)
    assert postgres.query(info["server"], copies["snf_pithos"], "SELECT COUNT(*) FROM versions") == [
        (info["counts"]["pithos_versions"],)]
    assert postgres.query(info["server"], copies["snf_apps"], "SELECT COUNT(*) FROM auth_user") == [
        (info["counts"]["astakos_users"],)]
    destroy_world(cfg)
    assert not any(postgres.database_exists(info["server"], name) for name in copies.values())
    assert not databases_record(cfg).exists()
    assert postgres.database_exists(info["server"], info["snf_apps"])  # the source stays


def test_destroy_without_a_world_reaches_no_server(tmp_path_factory, monkeypatch):
    def no_server(*args, **kwargs):
        raise AssertionError("destroy_world connected to PostgreSQL")

    monkeypatch.setattr(postgres, "connect", no_server)
    destroy_world(synnefo_config(tmp_path_factory))
