"""OpenVZ Legacy -> vpsAdminOS: the pure logic of the migration DAGs (no Airflow, no I/O):
trigger parameters, OpenVZ container configs and what can be converted, the converter's
report, interconnect networks, the maintenance window."""

# The converter's migration state files on the OpenVZ node (root's home: ~/.vpsadminos-converter).
STATE_DIR = "/root/.vpsadminos-converter"
# Where the DAG keeps, on the OpenVZ node, the migrations it stages itself against today's
# osctld (no converter can stage there): <ctid> holds the step done (stage, sync, transfer),
# as the converter's state would; <ctid>.skel is the skel archive it sent.
STAGED_DIR = "/var/lib/airlift/openvz/staged"
# Where the DAG records, on the OpenVZ node, the containers it moved (the source is kept,
# stopped, unless deleted): a rerun finds them done.
MIGRATED_DIR = "/var/lib/airlift/openvz/migrated"
# The offline path's archives: `vz6 export` writes <ctid>.tar here on the OpenVZ node (/vz
# holds the containers, so it has the room); the copy lands in this directory under the
# destination pool's mountpoint (vpsAdminOS keeps its root file system in memory).
EXPORT_DIR = "/vz/airlift-export"
IMPORT_SUBDIR = "airlift-import"


def export_path(ctid: int) -> str:
    """The offline path's archive of a container on the OpenVZ node."""
    return f"{EXPORT_DIR}/{int(ctid)}.tar"

# osctld's receive protocol by its version (research vpsadminos.md, history table): before
# 2020-09 container ids ("ids": the runbook's, with /30 interconnect networks in the era the
# lab's 2019 profile keeps); since then tokens ("tokens": today's osctld, routed veth via
# osrtr0, named receive keys).
TOKENS_SINCE = (20, 9)


def receive_protocol(version: str) -> str:
    """"ids" or "tokens", from a `vpsadminos-convert --version` or `osctl --version` line
    (`... version 19.03.0`); ValueError when the line has no version."""
    import re

    m = re.search(r"(\d+)\.(\d+)\.\d+", version or "")
    if not m:
        raise ValueError(f"cannot tell the version of {version!r}")
    return "ids" if (int(m.group(1)), int(m.group(2))) < TOKENS_SINCE else "tokens"
