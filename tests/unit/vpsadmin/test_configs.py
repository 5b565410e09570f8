"""Configuration files the upgrade edits on the nodes: vpsadmind.yml for 2.0, config.php
defines, a pool's sharenfs."""

from __future__ import annotations

import pytest
import yaml

from vpsadmin import configs

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
