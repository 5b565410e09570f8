"""The lab's vpsAdminOS nodes (os1, os2): what a node has before any container arrives.

osctl's state is kept by the simulator itself (lab/openvz/tools/osctl.py, its module doc
describes the layout); seeding runs its `Node.install_pool` on the host, against the node's
directory, so the seed and the tool cannot disagree.
"""

from __future__ import annotations

from pathlib import Path

from lab.openvz.tools import osctl

__all__ = ["seed_node"]


def seed_node(node_root: Path, pool: str = "tank", profile: str = osctl.DEFAULT_PROFILE) -> None:
    """The zfs pool `pool` with `<pool>/conf` and `<pool>/ct`, installed for osctl (groups `/`
    and the era's default group, id range `default`: 1000000, 65536 x 65520 blocks), an empty
    receive keychain; no containers, users or keys. `profile` is written to the node's
    /etc/lab/osctl-profile, the one place its osctl reads the era from."""
    if profile not in osctl.PROFILES:
        raise ValueError(f"no osctl profile {profile!r}: {', '.join(osctl.PROFILES)}")
    node = osctl.Node(str(node_root))
    path = Path(node.path(osctl.PROFILE_FILE))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(profile + "\n")
    with node.zfs.batch():
        node.install_pool(pool)
