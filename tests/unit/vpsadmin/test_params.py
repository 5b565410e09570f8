"""Parameter checks: everything that can reach a shell or an SQL identifier."""

from __future__ import annotations

import pytest

from airlift import params as shared
from tests.unit.vpsadmin.test_environments import ENVS, RESOURCES, SERVERS
from vpsadmin import params


@pytest.mark.parametrize("value", ["node1", "node1.prg.vpsfree.cz", "127.0.1.11", "a-b"])
def test_good_host_names(value):
    assert shared.check_hostname("host", value) == []


@pytest.mark.parametrize("value", ["node1; rm -rf /", "$(reboot)", "a b", "-oProxyCommand=x", "", "a..b",
                                   "node1\nnode2", "`id`"])
def test_bad_host_names(value):
    assert shared.check_hostname("host", value)


def test_node_names_reject_shell_characters():
    assert params.check_node_names("skip_nodes", ["node1", "storage1.prg"]) == []
    errors = params.check_node_names("skip_nodes", ["node1", "node1; rm -rf /", "x|y"])
    assert len(errors) == 2 and "node1; rm -rf /" in errors[0]
    assert params.check_node_names("skip_nodes", "node1")


@pytest.mark.parametrize("value, ok", [("/var/backups/vpsadmin", True), ("/", True), ("relative/dir", False),
                                       ("/var/../etc", False), ("/tmp/x y", False), ("/tmp/$(id)", False)])
def test_backup_dir(value, ok):
    assert (params.check_abs_path("backup_dir", value) == []) is ok


def test_raise_if_lists_every_problem():
    with pytest.raises(shared.ParamError, match="(?s)first.*second"):
        shared.raise_if(["first", "second"])
    shared.raise_if([])


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


@pytest.mark.parametrize("check, value", [
    (shared.check_hostname, "vpsadmin\n"),
    (params.check_abs_path, "/var/backups\n"),
    (params.check_db_name, "vpsadmin\n"),
    (params.check_url, "https://vpsadmin.example\n"),
    (params.check_dataset_name, "private-data\n"),
])
def test_a_trailing_newline_is_refused(check, value):
    """`$` matches before a final newline: the checks match the whole value (a newline would
    start another line of a config file or fstab)."""
    assert check("x", value)
    assert check("x", value.rstrip("\n")) == []


def test_node_names_and_subnets_refuse_a_trailing_newline():
    assert params.check_node_names("skip_nodes", ["node1\n"]) and not params.check_node_names("skip_nodes", ["node1"])
    assert params.check_subnets("s", ["10.0.0.0/24\n"]) and not params.check_subnets("s", ["10.0.0.0/24"])
