"""What v1.22's `nas_mount_delete($id, true, true)` queued, computed without the PHP web
interface (pure; rows in, transactions out).

For each backup mount, in the order the runbook's script visits them (by VPS, then id):
- a mount that is not a template (`default = 0`) on a running VPS gets a 5303 (umount)
  transaction with the full `nas_mount_params` (src, dst, options, mode, pre/post commands);
- the row is deleted;
- a non-template mount gets a 5301 (regenerate mount scripts) transaction listing the VPS's
  remaining non-template mounts at that moment, without the commands; a VPS with N backup
  mounts therefore gets N of them, each shorter than the last.
Templates (`default = 1`) are only deleted. Where the runbook's script would queue a
transaction no daemon can ever run (the VPS row is gone, or its node was deleted from
`servers`: PHP put `t_server` 0 or the dead node's id), the mount is only deleted: such a
transaction would keep "wait for all transactions" waiting forever.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

T_NAS_VE_MOUNT_GEN = 5301
T_NAS_VE_UMOUNT = 5303


@dataclass(frozen=True)
class Transaction:
    t_server: int
    t_vps: int
    t_type: int
    t_param: str


def php_json(value) -> str:
    """json_encode() as PHP 5 wrote it: compact, slashes escaped."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True).replace("/", "\\/")


def mount_params(mount: dict, with_commands: bool) -> dict:
    params = {k: mount[k] for k in ("src", "dst", "mount_opts", "umount_opts", "mode")}
    if with_commands:
        params.update(premount=mount["cmd_premount"], postmount=mount["cmd_postmount"],
                      preumount=mount["cmd_preumount"], postumount=mount["cmd_postumount"])
    return params


def plan_deletions(backup_mounts: list[dict], vps_mounts: list[dict]) -> list[dict]:
    """One entry per backup mount: {mount_id, vps_id, dst, template, transactions}.

    backup_mounts: rows of the backup mounts (id, vps_id, vps_server, vps_up, default, and
    the mount's fields with `src` already resolved); vps_mounts: every non-template mount of
    the affected VPSes, ordered by id.
    """
    remaining: dict[int, list[dict]] = {}
    for m in vps_mounts:
        remaining.setdefault(m["vps_id"], []).append(m)
    plan = []
    for m in sorted(backup_mounts, key=lambda r: (r["vps_id"], r["id"])):
        template = bool(m["default"]) or not m["node_exists"]
        server = int(m["vps_server"] or 0)
        transactions = []
        if not template and m["vps_up"]:
            transactions.append(Transaction(server, m["vps_id"], T_NAS_VE_UMOUNT,
                                            php_json(mount_params(m, with_commands=True))))
        left = [r for r in remaining.get(m["vps_id"], []) if r["id"] != m["id"]]
        remaining[m["vps_id"]] = left
        if not template:
            transactions.append(Transaction(
                server, m["vps_id"], T_NAS_VE_MOUNT_GEN,
                php_json({"mounts": [mount_params(r, with_commands=False) for r in left]})))
        plan.append({"mount_id": m["id"], "vps_id": m["vps_id"], "dst": m["dst"],
                     "template": template, "transactions": transactions})
    return plan
