"""`git pull` and `rake db:migrate` in the API checkout of a lab world, against real MariaDB:
the pinned migration to 20150630072821 (storage, environments, lifetimes, UTC dates), its
two known failures (stray VPSes, missing time zone tables), the final migration and its
idempotence."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from lab.core import mysql
from lab.core.nodes import run_in_node
from lab.core.topology import HOSTS
from lab.vpsadmin.v1_22 import seed as v1_22
from tests.helpers import new_lab, query, scalar, table_checksums

pytestmark = pytest.mark.lab

API = "vpsadmin"
PINNED, FINAL = 20150630072821, 20151213173722
PRAGUE = ZoneInfo("Europe/Prague")


def sh(lab, command: str, node: str = API):
    result = run_in_node(lab.node_root(node), command, timeout=300)
    return result.returncode, result.stdout.decode(), result.stderr.decode()


def rake(lab, args: str = ""):
    return sh(lab, f"cd /opt/vpsadminapi && rake db:migrate {args}")


def version(lab) -> int:
    return int(scalar(lab, "SELECT MAX(CAST(version AS UNSIGNED)) FROM schema_migrations"))


def reseed(lab) -> None:
    """A fresh v1.22 database under the same name (the nodes keep their files)."""
    v1_22.seed_database(lab.cfg.mysql_kwargs(), lab.cfg.vpsadmin_db, [h.server for h in HOSTS if h.server])


def database_section(lab) -> None:
    """What the runbook's Database section does before the migration (stray VPSes, vps_ip)."""
    query(lab, "DELETE vps FROM vps LEFT JOIN servers ON vps_server = server_id WHERE server_id IS NULL")
    query(lab, "UPDATE vps_ip SET vps_id = NULL WHERE vps_id = 0")
    query(lab, "UPDATE vps_ip ip LEFT JOIN vps v ON ip.vps_id = v.vps_id SET ip.vps_id = NULL "
               "WHERE ip.vps_id > 0 AND v.vps_id IS NULL")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):


    lab = new_lab(tmp_path_factory.mktemp("lab"))
    lab.seed()
    lab.start()
    for h in HOSTS:  # the runbook stops every daemon before the database work
        if h.server:
            sh(lab, "service vpsadmind stop", h.name)
    yield lab
    lab.destroy()


@pytest.fixture
def timezones(lab):
    kwargs = lab.cfg.mysql_kwargs()
    mysql.load_timezones(kwargs)
    yield kwargs
    if not mysql.admin(kwargs, "SELECT COUNT(*) FROM mysql.time_zone_name")[0][0]:
        mysql.load_timezones(kwargs)


def test_pull_then_pinned_migration_then_final(lab, timezones):
    # Before the pull the checkout only has the 1.22 migrations: nothing to do, nothing said.
    assert rake(lab) == (0, "", "")
    status, stdout, _ = sh(lab, "cd /opt/vpsadminapi && git pull")
    assert status == 0 and stdout.startswith("Updating a79fadc..5d85ee9\nFast-forward\n"), stdout
    assert "create mode 100755 bin/vpsadmin-scheduler" in stdout
    assert sh(lab, "cd /opt/vpsadminapi && git pull")[:2] == (0, "Already up-to-date.\n")

    reseed(lab)
    database_section(lab)
    vps_count = scalar(lab, "SELECT COUNT(*) FROM vps")
    states = dict(query(lab, "SELECT m_id, m_state FROM members"))
    created = dict(query(lab, "SELECT vps_id, vps_created FROM vps"))
    nas = query(lab, "SELECT dataset FROM storage_export WHERE data_type = 'data' AND `default` = 'no'")
    nas_datasets = len({d.split("/")[0] for (d,) in nas}) + sum("/" in d for (d,) in nas)
    # Mounts whose export add_storage maps: NAS exports, and backup exports of VPSes migrated
    # no later than the mounting VPS.
    mountable = set(query(lab, """
        SELECT m.vps_id, m.dst FROM vps_mount m JOIN vps v ON v.vps_id = m.vps_id
        JOIN storage_export e ON e.id = m.storage_export_id
        LEFT JOIN vps owner ON owner.vps_backup_export = e.id
        WHERE (e.data_type = 'data' AND e.`default` = 'no') OR owner.vps_id <= m.vps_id"""))
    unmappable = scalar(lab, "SELECT COUNT(*) FROM vps_mount WHERE `default` = 0") - len(mountable)
    assert mountable and unmappable >= 0

    status, stdout, stderr = rake(lab, f"VERSION={PINNED}")
    assert status == 0, stderr
    assert f"== {PINNED} MigrateToDatetimeUtc: migrated (" in stdout
    assert stderr.count("unable to migrate mount ") == unmappable  # upstream's warning
    assert version(lab) == PINNED
    assert scalar(lab, "SELECT COUNT(*) FROM schema_migrations WHERE version > %s", (str(PINNED),)) == 0

    assert query(lab, "SELECT role, COUNT(*) FROM pools GROUP BY role ORDER BY role") == [(0, 2), (1, 1), (2, 1)]
    assert query(lab, "SELECT id FROM pools ORDER BY id") == [(1,), (2,), (3,), (4,)]
    assert scalar(lab, "SELECT COUNT(*) FROM datasets") == vps_count + nas_datasets
    assert query(lab, "SELECT label, domain FROM environments") == [("Production", "vpsfree.cz")]
    assert scalar(lab, "SELECT COUNT(DISTINCT environment_id) FROM servers") == 1  # all 0 until the runbook sets them
    # every VPS: a dataset in its hypervisor's pool (its dataset_in_pool) and one in the backup pool
    assert scalar(lab, """
        SELECT COUNT(*) FROM vps v
        JOIN dataset_in_pools hv ON hv.id = v.dataset_in_pool_id
        JOIN pools hp ON hp.id = hv.pool_id AND hp.role = 0 AND hp.node_id = v.vps_server
        JOIN dataset_in_pools b ON b.dataset_id = hv.dataset_id
        JOIN pools bp ON bp.id = b.pool_id AND bp.role = 2""") == vps_count
    assert scalar(lab, "SELECT COUNT(*) FROM dataset_properties WHERE name = 'refquota' "
                       "AND value = '--- 61440\\n...\\n'") == vps_count
    nas_roots = query(lab, "SELECT d.full_name FROM datasets d JOIN dataset_in_pools dip ON dip.dataset_id = d.id "
                           "WHERE dip.label = 'nas' ORDER BY d.full_name")
    assert {n for (n,) in nas_roots} == {d.split("/")[0] for (d,) in nas}
    assert set(query(lab, "SELECT vps_id, dst FROM mounts")) == mountable
    assert not query(lab, "SHOW TABLES LIKE 'vps_mount'") and not query(lab, "SHOW TABLES LIKE 'storage_%'")
    assert dict(query(lab, "SELECT m_id, object_state FROM members")) == {
        m_id: {"active": 0, "suspended": 1, "deleted": 2}[state] for m_id, state in states.items()}
    assert scalar(lab, "SELECT COUNT(*) FROM cluster_resources") == 6
    assert scalar(lab, "SELECT COUNT(*) FROM port_reservations") == 10000 * len([h for h in HOSTS if h.server])
    # vps_created (unix time) -> created_at as CONVERT_TZ(FROM_UNIXTIME(x) at +00:00, Prague, UTC)
    checked = 0
    for vps_id, created_at in query(lab, "SELECT vps_id, created_at FROM vps"):
        wall = datetime.fromtimestamp(created[vps_id], UTC).replace(tzinfo=None)
        if wall.replace(tzinfo=PRAGUE, fold=0).utcoffset() != wall.replace(tzinfo=PRAGUE, fold=1).utcoffset():
            continue  # a DST-ambiguous or skipped wall time
        assert created_at == wall.replace(tzinfo=PRAGUE).astimezone(UTC).replace(tzinfo=None), vps_id
        checked += 1
    assert checked > vps_count // 2

    status, stdout, stderr = rake(lab)
    assert status == 0, stderr
    assert version(lab) == FINAL and f"== {FINAL} AddMoreIndexes: migrated (" in stdout
    assert not query(lab, "SHOW TABLES LIKE 'vps_backups'")
    assert {t for (t,) in query(lab, "SHOW TABLES LIKE 'integrity%'")} == {
        "integrity_checks", "integrity_objects", "integrity_facts"}
    assert scalar(lab, "SELECT COUNT(*) FROM vps_features WHERE name = 'kvm'") == vps_count
    assert scalar(lab, "SELECT COLUMN_DEFAULT FROM information_schema.columns WHERE TABLE_SCHEMA = %s "
                       "AND TABLE_NAME = 'transactions' AND COLUMN_NAME = 'queue'",
                  (lab.cfg.vpsadmin_db,)) == "'general'"
    before = table_checksums(lab)
    assert rake(lab) == (0, "", "")
    assert sh(lab, "cd /opt/vpsadminapi && rake db:version")[1] == f"Current version: {FINAL}\n"
    assert table_checksums(lab) == before


def test_stray_vps_fails_add_storage(lab, timezones):
    sh(lab, "cd /opt/vpsadminapi && git pull")
    reseed(lab)  # stray VPSes left in place
    status, stdout, stderr = rake(lab, f"VERSION={PINNED}")
    assert status == 1
    assert stdout.rstrip().endswith("== 20140927161700 AddStorage: migrating " + "=" * 39)
    assert stderr.startswith("rake aborted!\nStandardError: An error has occurred, all later migrations canceled:\n\n"
                             "Mysql2::Error: Column 'dataset_id' cannot be null: INSERT INTO `dataset_in_pools`")
    # MySQL DDL is not transactional: the half-applied migration stays (hence the restore)
    assert version(lab) == 20140927161625
    assert query(lab, "SHOW TABLES LIKE 'pools'") and query(lab, "SHOW TABLES LIKE 'storage_root'")


def test_missing_time_zone_tables_fail_the_utc_migration(lab, timezones):
    sh(lab, "cd /opt/vpsadminapi && git pull")
    reseed(lab)
    database_section(lab)
    mysql.clear_timezones(timezones)
    try:
        status, stdout, stderr = rake(lab, f"VERSION={PINNED}")
    finally:
        mysql.load_timezones(timezones)
    assert status == 1
    assert f"== {PINNED} MigrateToDatetimeUtc: migrating" in stdout
    assert "Mysql2::Error: Data truncated for column 'created_at' at row 1: " \
           "ALTER TABLE `vps_status` CHANGE `created_at` `created_at` datetime NOT NULL" in stderr, stderr
    assert version(lab) == 20150625145437
