"""Unit tests of the pure logic of the v2.0 sections: configuration files, sharenfs, the
crontab for 2.0, environments and default resources, parameter checks."""

from __future__ import annotations

import pytest
import yaml

from lab.vpsadmin.world import CLUSTER_CRONTAB
from vpsadmin import configs, crontab, environments, params

V122_DAEMON_YML = """\
:db:
  :host: 127.0.0.1:3306
  :user: root
  :pass: ''
  :name: vpsadmin
:vpsadmin:
  :server_id: 1
  :domain: vpsfree.cz
  :threads: 8
  :check_interval: 1
:backuper:
  :lock_interval: 30
"""


def test_vpsadmind_config_becomes_2_0_and_stays():
    new = configs.vpsadmind_v2(V122_DAEMON_YML)
    config = yaml.safe_load(new)
    assert config[":db"][":name"] == "vpsadmin" and config[":db"][":pass"] == ""
    assert ":backuper" not in config and ":threads" not in config[":vpsadmin"]
    assert config[":vpsadmin"][":server_id"] == 1 and config[":vpsadmin"][":check_interval"] == 1
    assert config[":vpsadmin"][":mounts_dir"] == "/var/vpsadmin/mounts"
    queues = config[":vpsadmin"][":queues"]
    assert queues[":general"][":threads"] == 8  # 1.22's worker count
    assert queues[":zfs_send"] == {":threads": 1, ":urgent": 0, ":start_delay": 4 * 3600}
    assert configs.vpsadmind_v2(new) is new


def test_vpsadmind_config_refuses_garbage():
    with pytest.raises(ValueError):
        configs.vpsadmind_v2("- a list\n- not a config\n")


def test_php_defines_replace_in_place_and_add_before_close():
    text = "<?php\ndefine('DB_HOST', 'db');\ndefine(\"API_URL\", 'old');\n?>\n"
    new = configs.php_defines(text, {"API_URL": "http://api:9292", "ENV_VPS_PRODUCTION_ID": 3})
    assert new == ("<?php\ndefine('DB_HOST', 'db');\ndefine('API_URL', 'http://api:9292');\n"
                   "define('ENV_VPS_PRODUCTION_ID', 3);\n?>\n")
    assert configs.php_defines(new, {"API_URL": "http://api:9292", "ENV_VPS_PRODUCTION_ID": 3}) == new


def test_php_defines_escape_quotes():
    new = configs.php_defines("<?php\n", {"X": "it's \\ here"})
    assert new == "<?php\ndefine('X', 'it\\'s \\\\ here');\n"


@pytest.mark.parametrize(("current", "expected"), [
    ("off", "rw=@10.0.0.0/24:@10.0.1.0/24,no_root_squash,no_subtree_check"),
    ("rw=@10.0.0.0/24,no_root_squash", "rw=@10.0.0.0/24:@10.0.1.0/24,no_root_squash"),
    ("ro=@1.2.3.0/24,rw=@10.0.1.0/24", "rw=@10.0.1.0/24:@10.0.0.0/24,ro=@1.2.3.0/24"),
])
def test_sharenfs_allows_every_subnet_and_keeps_options(current, expected):
    subnets = ["10.0.0.0/24", "10.0.1.0/24"]
    assert configs.sharenfs(current, subnets) == expected
    assert configs.sharenfs(expected, subnets) == expected


def test_crontab_for_2_0_from_the_disabled_cluster_crontab():
    disabled, _ = crontab.disable_all(CLUSTER_CRONTAB)
    new, changes = crontab.replace_for_v2(disabled)
    assert crontab.active_jobs(new) == ["*/10 * * * * ruby /opt/vpsadmind/bin/savetransfers.rb"]
    assert len(changes) == 6
    for job in ("backup.rb", "cron_delete.php", "cron_mailer.php", "cron_nonpayers.php", "daily_report.rb"):
        line = next(line for line in new.splitlines() if job in line and not line.startswith("# replaced"))
        assert line.startswith(crontab.REPLACED)
    assert crontab.replace_for_v2(new) == (new, [])


SERVERS = ["vpsadmin.prg.vpsfree.cz", "node1.prg.vpsfree.cz", "node2.brq.vpsfree.cz", "storage1.prg.vpsfree.cz"]
RESOURCES = {cls: dict.fromkeys(environments.RESOURCES, 1) for cls in environments.CLASSES}
ENVS = [{"label": "Production", "domain": "vpsfree.cz", "user_ip_ownership": True,
         "nodes": ["vpsadmin", "node1", "node2.brq.vpsfree.cz"]},
        {"label": "Storage", "domain": "storage.vpsfree.cz", "nodes": ["storage1"],
         "default_resources": {"Vps": {"cpu": 2}}}]


def test_environments_param_accepted():
    assert environments.check(ENVS, RESOURCES, SERVERS) == []


@pytest.mark.parametrize(("envs", "message"), [
    ([{**ENVS[0], "nodes": ["vpsadmin", "node1"]}, ENVS[1]], "not placed: node2.brq.vpsfree.cz"),
    ([ENVS[0], {**ENVS[1], "nodes": ["storage1", "node1"]}], "'node1' is already in 'Production'"),
    ([ENVS[0], {**ENVS[1], "nodes": ["storage1", "node9"]}], "no server named 'node9'"),
    ([ENVS[0], {**ENVS[1], "label": "Production"}], "label 'Production' given twice"),
    ([ENVS[0], {**ENVS[1], "label": "x'; DROP TABLE vps; --"}], "must be 1-100 letters"),
    ([ENVS[0], {**ENVS[1], "user_ip_ownership": "yes"}], "user_ip_ownership must be a bool"),
    ([ENVS[0], {**ENVS[1], "nodes": ["storage1; rm -rf /"]}], "is not a node name"),
    ([ENVS[0], {**ENVS[1], "default_resources": {"Vps": {"disk": 1}}}], "unknown resource 'disk'"),
    ([], "non-empty list"),
])
def test_environments_param_errors(envs, message):
    errors = environments.check(envs, RESOURCES, SERVERS)
    assert any(message in e for e in errors), errors


def test_default_resources_must_name_every_resource():
    errors = environments.check(ENVS, {"Vps": RESOURCES["Vps"], "User": {"memory": 1}}, SERVERS)
    assert any("default_resources.User lacks swap, cpu, diskspace, ipv4, ipv6" in e for e in errors)


def test_plan_environments_matches_by_label():
    existing = [{"id": 7, "label": "Production", "domain": "vpsfree.cz", "can_create_vps": 0, "can_destroy_vps": 0,
                 "vps_lifetime": 0, "max_vps_count": 1, "user_ip_ownership": 0},
                {"id": 8, "label": "Old", "domain": "old", "can_create_vps": 0, "can_destroy_vps": 0,
                 "vps_lifetime": 0, "max_vps_count": 1, "user_ip_ownership": 0}]
    inserts, updates, others = environments.plan_environments(environments.environment_rows(ENVS), existing)
    assert [r["label"] for r in inserts] == ["Storage"]
    assert updates == [{"label": "Production", "domain": "vpsfree.cz", "can_create_vps": 0, "can_destroy_vps": 0,
                        "vps_lifetime": 0, "max_vps_count": 1, "user_ip_ownership": 1, "id": 7}]
    assert others == ["Old"]
    existing[0]["user_ip_ownership"] = 1
    assert environments.plan_environments(environments.environment_rows(ENVS), existing[:1])[1] == []


def test_plan_servers_strips_domains_and_places():
    rows = [{"server_id": i, "server_name": n, "environment_id": 0} for i, n in enumerate(SERVERS, 1)]
    plan = environments.plan_servers(ENVS, {"Production": 7, "Storage": 9}, rows)
    assert [(c["server_name"], c["environment_id"]) for c in plan] == [
        ("vpsadmin", 7), ("node1", 7), ("node2", 7), ("storage1", 9)]
    done = [{**r, "server_name": environments.short_name(r["server_name"]),
             "environment_id": 9 if "storage" in r["server_name"] else 7} for r in rows]
    assert environments.plan_servers(ENVS, {"Production": 7, "Storage": 9}, done) == []


def test_plan_default_resources_every_env_class_resource_with_overrides():
    ids = {r: i for i, r in enumerate(environments.RESOURCES, 1)}
    inserts, updates = environments.plan_default_resources(ENVS, RESOURCES, {"Production": 7, "Storage": 9}, ids, [])
    assert len(inserts) == 2 * 2 * 6 and not updates
    storage_cpu = [r for r in inserts if r["environment_id"] == 9 and r["class_name"] == "Vps" and r["resource"] == "cpu"]
    assert storage_cpu[0]["value"] == 2
    existing = [{**r, "id": n} for n, r in enumerate(inserts)]
    existing[0]["value"] = 99
    inserts2, updates2 = environments.plan_default_resources(ENVS, RESOURCES, {"Production": 7, "Storage": 9}, ids,
                                                             existing)
    assert not inserts2 and [u["id"] for u in updates2] == [0]


@pytest.mark.parametrize(("values", "message"), [
    ({"snapshot_download_base_url": "javascript:alert(1)"}, "is not an http(s) URL"),
    ({"api_url": "http://x/'); system('id'); //"}, "is not an http(s) URL"),
    ({"private_dataset_name": "vpsadmin"}, "reserved in vpsAdmin 2.0"),
    ({"private_dataset_name": "a b"}, "is not a dataset name"),
    ({"backup_timezone": "Mars/Olympus"}, "is not a time zone name"),
    ({"sharenfs_subnets": ["10.0.0.0/24", "10.0.0.0/24; rm"]}, "is not an IPv4 network"),
    ({"web_root": "/var/www/../etc"}, "must be an absolute path"),
    ({"environments": ENVS, "default_resources": RESOURCES, "production_environment": "Prod"},
     "production_environment 'Prod' is not in environments"),
    ({"environments": ENVS, "default_resources": RESOURCES, "playground_environments": ["Playground"]},
     "'Playground' is not an environment"),
])
def test_upgrade_param_errors(values, message):
    errors = params.check_upgrade(values, SERVERS)
    assert any(message in e for e in errors), errors


def test_upgrade_params_accepted():
    assert params.check_upgrade({"environments": ENVS, "default_resources": RESOURCES,
                                 "production_environment": "Production", "backup_timezone": "Europe/Prague",
                                 "snapshot_download_base_url": "https://vpsadmin.vpsfree.cz/download",
                                 "private_dataset_name": "private-data", "sharenfs_subnets": ["10.0.0.0/24"],
                                 "api_url": ""},
                                SERVERS) == []


def test_full_names_in_the_param_still_match_after_the_rename():
    renamed = [environments.short_name(n) for n in SERVERS]
    assert environments.check(ENVS, RESOURCES, renamed) == []
