"""Unit tests of the pure vpsAdmin logic: parameter checks, the crontab transformation, the
transactions nas_mount_delete queued, the SQL loader."""

from __future__ import annotations

import json

import pytest

from airlift import sql
from vpsadmin import crontab, mounts, params


@pytest.mark.parametrize("value", ["node1", "node1.prg.vpsfree.cz", "127.0.1.11", "a-b"])
def test_good_host_names(value):
    assert params.check_hostname("host", value) == []


@pytest.mark.parametrize("value", ["node1; rm -rf /", "$(reboot)", "a b", "-oProxyCommand=x", "", "a..b",
                                   "node1\nnode2", "`id`"])
def test_bad_host_names(value):
    assert params.check_hostname("host", value)


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
    with pytest.raises(params.ParamError, match="(?s)first.*second"):
        params.raise_if(["first", "second"])
    params.raise_if([])


CRONTAB = """\
# cluster jobs
MAILTO=root
*/5 * * * * php /var/www/vpsadmin/cron_mailer.php
# 0 1 * * * already commented out
@daily ruby /opt/vpsadmind/daily_report.rb
"""


def test_disable_all_comments_jobs_only():
    text, disabled = crontab.disable_all(CRONTAB)
    assert disabled == ["*/5 * * * * php /var/www/vpsadmin/cron_mailer.php",
                        "@daily ruby /opt/vpsadmind/daily_report.rb"]
    lines = text.splitlines()
    assert "MAILTO=root" in lines and "# cluster jobs" in lines
    assert "#airlift-disabled# @daily ruby /opt/vpsadmind/daily_report.rb" in lines
    assert crontab.active_jobs(text) == []


def test_disable_all_twice_changes_nothing():
    once, _ = crontab.disable_all(CRONTAB)
    twice, disabled = crontab.disable_all(once)
    assert twice == once and disabled == []


def _mount(id, vps_id, dst, default=0, vps_up=1, node_exists=1, vps_server=1):
    return {"id": id, "vps_id": vps_id, "dst": dst, "default": default, "vps_up": vps_up,
            "node_exists": node_exists, "vps_server": vps_server, "src": f"172.16.0.5:/backup/{vps_id}",
            "mount_opts": "-t nfs -overs=3", "umount_opts": "-f", "mode": "ro",
            "cmd_premount": "", "cmd_postmount": "", "cmd_preumount": "echo pre", "cmd_postumount": ""}


def test_two_backup_mounts_of_a_running_vps():
    backup = [_mount(7, 101, "/mnt/backup2"), _mount(3, 101, "/mnt/backup")]
    nas = dict(_mount(5, 101, "/mnt/nas"), src="172.16.0.4:/nas/1")
    plan = mounts.plan_deletions(backup, [backup[1], nas, backup[0]])
    assert [p["mount_id"] for p in plan] == [3, 7]
    first, second = plan
    assert [t.t_type for t in first["transactions"]] == [5303, 5301]
    umount = json.loads(first["transactions"][0].t_param)
    assert umount["dst"] == "/mnt/backup" and umount["preumount"] == "echo pre"
    assert "\\/" in first["transactions"][0].t_param, "PHP escapes slashes"
    regen = json.loads(first["transactions"][1].t_param)["mounts"]
    assert [m["dst"] for m in regen] == ["/mnt/nas", "/mnt/backup2"]
    assert "preumount" not in regen[0]
    assert [m["dst"] for m in json.loads(second["transactions"][1].t_param)["mounts"]] == ["/mnt/nas"]
    assert all(t.t_server == 1 and t.t_vps == 101 for p in plan for t in p["transactions"])


def test_stopped_vps_template_and_dead_node():
    plan = mounts.plan_deletions(
        [_mount(1, 102, "/mnt/backup", vps_up=0), _mount(2, 0, "/mnt/backup", default=1, vps_server=None),
         _mount(4, 103, "/mnt/backup", node_exists=0, vps_server=9)], [])
    by_id = {p["mount_id"]: p for p in plan}
    assert [t.t_type for t in by_id[1]["transactions"]] == [5301]
    assert by_id[2]["transactions"] == [] and by_id[2]["template"]
    assert by_id[4]["transactions"] == [], "no transaction for a node that no longer exists"


def test_every_sql_file_has_named_statements():
    files = sorted((sql.INCLUDE_DIR / "sql").rglob("*.sql"))
    assert files
    for path in files:
        statements = sql.load(str(path.relative_to(sql.INCLUDE_DIR / "sql")))
        assert statements and all(s.strip() for s in statements.values()), path


def test_probe_apply_files_have_both():
    for name in ("maintenance_mode.sql", "remove_stray_vps.sql", "vps_ip_null.sql", "free_orphan_ips.sql"):
        assert {"probe", "apply"} <= set(sql.load(f"vpsadmin/{name}")), name


def test_unknown_statement_names_the_file():
    with pytest.raises(KeyError, match="vps_ip_null.sql"):
        sql.statement("vpsadmin/vps_ip_null.sql", "nope")
