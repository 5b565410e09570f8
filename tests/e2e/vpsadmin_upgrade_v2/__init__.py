"""End-to-end runs of vpsadmin_upgrade_v2 on lab worlds; what its test modules share."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

DAG_ID = "vpsadmin_upgrade_v2"
GATE = "db.approve_encoding_swap"
MOVE_GATE = "nas.approve_move"
APPROVE_ALL = {GATE: "Approve", MOVE_GATE: "Approve"}
NAS_ROOT = "storage/vpsfree.cz/nas"  # the NAS datasets on storage1


def real_run_conf(**extra) -> dict:
    """A real run's conf: the encoding fix must read the seeded members' names back; sharenfs
    needs the nodes' networks."""
    from lab.vpsadmin.v1_22.seed import KNOWN_TEXT

    member_names = {str(key): text for table, column, _, key, text in KNOWN_TEXT
                    if table == "members" and column == "m_name"}
    # The lab's servers (lab/core/topology.py): vpsadmin 127.0.1.2, node1 .11, node2 .12 in the
    # first network, storage1 .21 and backup1 .22 in the second. Two networks, not the /24 the
    # DAG once guessed, so the pools show they got exactly these.
    subnets = ["127.0.1.0/28", "127.0.1.16/28"]
    return {"dry_run": False, "encoding_known_names": member_names, "sharenfs_subnets": subnets, **extra}


def nas_files(lab) -> dict[str, str]:
    """{path under the NAS root: sha256} of every file (hidden ones too) on storage1."""
    root = lab.node_root("storage1") / NAS_ROOT
    files = {}
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = Path(dirpath) / name
            files[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def expected_after_move(path: str, new_private: str) -> str:
    """Where a NAS file is after the upgrade: the `<m>/private` child dataset is renamed and,
    like its parent, keeps its data under its own private/."""
    member, rest = path.split("/", 1)
    if rest.startswith("private/"):
        return f"{member}/{new_private}/private/{rest[len('private/'):]}"
    return f"{member}/private/{rest}"
