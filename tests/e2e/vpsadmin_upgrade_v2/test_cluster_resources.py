"""Steps resources.assign and users.environment-configs of vpsadmin_upgrade_v2: their core
functions (plugins/vpsadmin/cluster_resources.py, what the operators and the bench run) and the
operators on a lab world migrated with the lab's `rake db:migrate`."""

from __future__ import annotations

import pytest

from vpsadmin import resources as r

pytestmark = [pytest.mark.lab]


# -- on a lab world migrated with the lab's rake ---------------------------------------------
# The four resource configs as SQL (MariaDB regexps), independent of vpsadmin.resources.
EXPECTED_SQL = """
SELECT v.m_id, s.environment_id,
  SUM(IF(c.name REGEXP '^ram-vswap-[0-9]+g-swap-0g$', REGEXP_REPLACE(c.name, '^ram-vswap-([0-9]+)g.*$', '\\\\1') * 1024, 0)),
  SUM(IF(c.name REGEXP '^swap-[0-9]+g$', REGEXP_REPLACE(c.name, '^swap-([0-9]+)g$', '\\\\1') * 1024, 0)),
  SUM(IF(c.name REGEXP '^cpu-[0-9]+c-[0-9]+$', REGEXP_REPLACE(c.name, '^cpu-([0-9]+)c-.*$', '\\\\1'), 0)),
  SUM(IF(c.name REGEXP '^hdd-[0-9]+g$', REGEXP_REPLACE(c.name, '^hdd-([0-9]+)g$', '\\\\1') * 1024, 0))
FROM vps v JOIN servers s ON s.server_id = v.vps_server
JOIN vps_has_config vhc ON vhc.vps_id = v.vps_id JOIN config c ON c.id = vhc.config_id
WHERE v.m_id = %s GROUP BY v.m_id, s.environment_id
"""


IPS_SQL = """
SELECT s.environment_id, SUM(ip.ip_v = 4), SUM(ip.ip_v = 6)
FROM vps_ip ip JOIN vps v ON v.vps_id = ip.vps_id JOIN servers s ON s.server_id = v.vps_server
WHERE v.m_id = %s GROUP BY s.environment_id
"""


NAS_SQL = """
SELECT s.environment_id, SUM(REPLACE(REPLACE(q.value, '--- ', ''), '\\n...\\n', ''))
FROM datasets d JOIN dataset_in_pools dip ON dip.dataset_id = d.id JOIN pools p ON p.id = dip.pool_id
JOIN servers s ON s.server_id = p.node_id
JOIN dataset_properties q ON q.dataset_in_pool_id = dip.id AND q.name = 'quota'
WHERE d.user_id = %s AND d.ancestry IS NULL AND p.role = 1 GROUP BY s.environment_id
"""


PLAYGROUND_MINIMUMS = {"memory": 1024, "cpu": 2, "diskspace": 10240, "ipv6": 0}


def expected_resources(lab, user_id: int, env_ids: dict[str, int]) -> dict[tuple[int, str], int]:
    from tests.helpers import query

    sums = {(env, res): 0 for env in env_ids.values() for res in r.RESOURCES}
    for _, env, memory, swap, cpu, disk in query(lab, EXPECTED_SQL, (user_id,)):
        for res, value in zip(("memory", "swap", "cpu", "diskspace"), (memory, swap, cpu, disk), strict=True):
            sums[env, res] += int(value)
    for env, ipv4, ipv6 in query(lab, IPS_SQL, (user_id,)):
        sums[env, "ipv4"] += int(ipv4)
        sums[env, "ipv6"] += int(ipv6)
    for env, quota in query(lab, NAS_SQL, (user_id,)):
        sums[env, "diskspace"] += int(quota)
    minimums = {env_ids["Production"]: r.DEFAULT_MINIMUMS,
                env_ids["Playground"]: {**r.DEFAULT_MINIMUMS, **PLAYGROUND_MINIMUMS}}
    return {(env, res): max(value, minimums[env][res]) for (env, res), value in sums.items()}


@pytest.fixture
def migrated_world(lab_world, tmp_path):
    """A v1.22 lab world after the Database section's stray-VPS deletion, migrated to
    20150630072821 with the lab's rake; node2 moved into a second environment 'Playground'."""
    from bench.vpsadmin_resources import rake_migrate
    from lab.core import mysql
    from tests.helpers import query

    lab = lab_world()
    lab.stop()  # the 1.22 daemons have no business in a 2.0 schema
    kwargs = lab.cfg.mysql_kwargs()
    query(lab, "DELETE vps FROM vps LEFT JOIN servers ON vps_server = server_id WHERE server_id IS NULL")
    mysql.load_timezones(kwargs)
    rake_migrate(kwargs, lab.cfg.vpsadmin_db, tmp_path)
    query(lab, "INSERT INTO environments (label, domain, created_at, updated_at, can_create_vps, "
               "can_destroy_vps, vps_lifetime, max_vps_count, user_ip_ownership) "
               "VALUES ('Playground', 'vpsfree.cz', UTC_TIMESTAMP(), UTC_TIMESTAMP(), 1, 1, 604800, 2, 0)")
    env_ids = dict(query(lab, "SELECT label, id FROM environments"))
    query(lab, "UPDATE servers SET environment_id = %s", (env_ids["Production"],))
    query(lab, "UPDATE servers SET environment_id = %s WHERE server_id = 2", (env_ids["Playground"],))
    return lab, env_ids


def test_cluster_resources_on_a_migrated_world(migrated_world):
    from tests.helpers import db_conn, query, scalar, table_checksums
    from vpsadmin.cluster_resources import assign_cluster_resources

    lab, env_ids = migrated_world
    # Users with VPSes in both environments, and one with a NAS dataset with a quota.
    both = [u for (u,) in query(lab, "SELECT v.m_id FROM vps v JOIN servers s ON s.server_id = v.vps_server "
                                     "GROUP BY v.m_id HAVING COUNT(DISTINCT s.environment_id) = 2 ORDER BY v.m_id LIMIT 2")]
    nas = scalar(lab, "SELECT d.user_id FROM datasets d JOIN dataset_in_pools dip ON dip.dataset_id = d.id "
                      "JOIN pools p ON p.id = dip.pool_id JOIN dataset_properties q ON q.dataset_in_pool_id = dip.id "
                      "AND q.name = 'quota' WHERE p.role = 1 AND d.ancestry IS NULL AND q.value <> '--- 0\\n...\\n' "
                      "ORDER BY d.user_id LIMIT 1")
    assert len(both) == 2 and nas is not None
    expected = {u: expected_resources(lab, u, env_ids) for u in [*both, nas]}
    # Configs of VPSes that exist (the stray VPSes' rows outlive them, untouched).
    configs_of_vpses = "SELECT COUNT(*) FROM vps_has_config vhc JOIN vps v ON v.vps_id = vhc.vps_id"
    configs_before = scalar(lab, configs_of_vpses)
    orphans = scalar(lab, "SELECT COUNT(*) FROM vps_has_config") - configs_before
    other_configs = scalar(lab, configs_of_vpses + " JOIN config c ON c.id = vhc.config_id "
                                "WHERE c.name IN ('nfs', 'tun', 'privvmpages-4g-6g')")
    minimums = {"Playground": PLAYGROUND_MINIMUMS}

    before = table_checksums(lab)
    with db_conn(lab) as conn:
        planned = assign_cluster_resources(conn, minimums=minimums, dry_run=True)
    assert table_checksums(lab) == before, "plan mode wrote something"
    assert planned["written"] == {} and planned["plan"]["configs_to_delete"] == configs_before - other_configs

    with db_conn(lab) as conn:
        first = assign_cluster_resources(conn, minimums=minimums, dry_run=False)
    assert first["written"]["insert_uses"] == planned["plan"]["uses_to_insert"] > 0
    users = scalar(lab, "SELECT COUNT(*) FROM members")
    assert scalar(lab, "SELECT COUNT(*) FROM user_cluster_resources") == users * 2 * 6
    for user_id, want in expected.items():
        got = {(env, res): value for env, res, value in query(
            lab, "SELECT ucr.environment_id, cr.name, ucr.value FROM user_cluster_resources ucr JOIN "
                 "cluster_resources cr ON cr.id = ucr.cluster_resource_id WHERE ucr.user_id = %s", (user_id,))}
        assert got == want, f"user {user_id}"
    # Only the resource configs are gone; a VPS's refquota is its hdd config.
    assert scalar(lab, configs_of_vpses) == other_configs
    assert scalar(lab, "SELECT COUNT(*) FROM vps_has_config") == other_configs + orphans
    assert scalar(lab, "SELECT COUNT(*) FROM vps v JOIN dataset_properties q ON q.dataset_in_pool_id = "
                       "v.dataset_in_pool_id AND q.name = 'refquota' JOIN cluster_resource_uses u ON "
                       "u.class_name = 'DatasetInPool' AND u.row_id = v.dataset_in_pool_id "
                       "WHERE q.value <> CONCAT('--- ', u.value, '\\n...\\n')") == 0

    after_first = table_checksums(lab)
    with db_conn(lab) as conn:
        second = assign_cluster_resources(conn, minimums=minimums, dry_run=False)
    assert second["written"] == {} and second["plan"]["vpses_to_translate"] == 0
    assert table_checksums(lab) == after_first

    # The operator (through the Airflow connection the lab exports) says the same.
    from operators.vpsadmin_upgrade.cluster import ClusterResourcesOperator
    from tests.helpers import detached_step

    operator = detached_step(ClusterResourcesOperator, step="resources.assign", minimums=minimums)
    record = operator.execute({"params": {"dry_run": False}})
    assert record["step"] == "resources.assign" and record["changes"] == [] and record["applied"] is False
    assert "cpu-<N>c-<limit>" in operator.doc_md
    assert table_checksums(lab) == after_first


def test_environment_configs_on_a_migrated_world(migrated_world):
    from tests.helpers import db_conn, query, scalar, table_checksums
    from vpsadmin.cluster_resources import create_environment_configs

    lab, env_ids = migrated_world
    users = scalar(lab, "SELECT COUNT(*) FROM members")
    before = table_checksums(lab)
    with db_conn(lab) as conn:
        planned = create_environment_configs(conn, playground_environments=["Playground"], dry_run=True)
    assert planned == {"missing": users * 2, "inserted": 0} and table_checksums(lab) == before
    with db_conn(lab) as conn, pytest.raises(r.ResourceError, match="no environment labelled 'Nowhere'"):
        create_environment_configs(conn, playground_environments=["Nowhere"], dry_run=False)

    with db_conn(lab) as conn:
        assert create_environment_configs(conn, playground_environments=["Playground"], dry_run=False) == {
            "missing": users * 2, "inserted": users * 2}
    rows = query(lab, "SELECT m.m_playground_enable, e.label, c.can_create_vps, c.can_destroy_vps, c.vps_lifetime, "
                      "c.max_vps_count, c.`default` FROM environment_user_configs c JOIN members m ON "
                      "m.m_id = c.user_id JOIN environments e ON e.id = c.environment_id")
    got = {(bool(pg), label, *rest) for pg, label, *rest in rows}
    assert got == {(False, "Production", 0, 0, 0, 1, 1), (True, "Production", 0, 0, 0, 1, 1),
                   (False, "Playground", 1, 1, 604800, 2, 1), (True, "Playground", 0, 1, 604800, 2, 0)}

    after = table_checksums(lab)
    with db_conn(lab) as conn:
        assert create_environment_configs(conn, playground_environments=["Playground"], dry_run=False) == {
            "missing": 0, "inserted": 0}
    assert table_checksums(lab) == after

    from airflow.sdk.exceptions import AirflowFailException

    from operators.vpsadmin_upgrade.cluster import EnvironmentConfigsOperator
    from tests.helpers import detached_step

    record = detached_step(EnvironmentConfigsOperator, step="users.environment-configs",
                           playground_environments=["Playground"]).execute({"params": {"dry_run": False}})
    assert record["step"] == "users.environment-configs" and record["changes"] == [] and not record["applied"]
    with pytest.raises(AirflowFailException, match="must be a list of environment labels"):
        detached_step(EnvironmentConfigsOperator, step="users.environment-configs",
                      playground_environments="Playground").execute({"params": {"dry_run": True}})
    assert table_checksums(lab) == after
