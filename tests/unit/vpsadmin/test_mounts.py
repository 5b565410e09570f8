"""The transactions v1.22's nas_mount_delete queued for a backup mount."""

from __future__ import annotations

import json

from vpsadmin import mounts


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
