"""OpenVzNodesHook: the OpenVZ and vpsAdminOS nodes of a migration over SSH, with typed
wrappers of their tools (vzctl/vzlist, zfs, vpsadminos-convert, osctl).

One connection (default `openvz_ssh`: root, its key, the nodes' SSH port, the known_hosts
file) reaches every node; the host of each call is a DAG param. Everything that reaches a
shell goes through NodeHook.run as an argv (quoted there).
"""

from __future__ import annotations

import json
import shlex

from airlift.connections import OPENVZ_SSH
from airlift.errors import StepError
from hooks.node import NodeHook, Result
from openvz import STAGED_DIR, STATE_DIR

CONVERTER = "vpsadminos-convert"


class OpenVzNodesHook(NodeHook):
    default_conn_name = OPENVZ_SSH
    hook_name = "OpenVZ and vpsAdminOS nodes (SSH)"

    def __init__(self, ssh_conn_id: str = default_conn_name, **kwargs):
        super().__init__(ssh_conn_id=ssh_conn_id, **kwargs)

    # -- files ----------------------------------------------------------------------------
    def read_file(self, host: str, path: str) -> str | None:
        result = self.run(host, f"cat -- {shlex.quote(path)} 2>/dev/null || echo __airlift_missing__ >&2",
                          check=False)
        return None if "__airlift_missing__" in result.stderr else result.stdout

    # -- OpenVZ ---------------------------------------------------------------------------
    def vzlist(self, host: str) -> list[dict]:
        """Every container of the node: vzlist -a -j (ctid, status)."""
        return json.loads(self.run(host, ["vzlist", "-a", "-j", "-o", "ctid,status"]).stdout or "[]")

    def vz_status(self, host: str, ctid: int) -> dict:
        """`vzctl status`: CTID N exist|deleted mounted|unmounted running|down."""
        words = self.run(host, ["vzctl", "status", str(ctid)]).stdout.split()
        return {"exists": words[2:3] == ["exist"], "mounted": words[3:4] == ["mounted"],
                "running": words[4:5] == ["running"]}

    def ct_conf(self, host: str, ctid: int) -> str | None:
        return self.read_file(host, f"/etc/vz/conf/{int(ctid)}.conf")

    # -- ZFS ------------------------------------------------------------------------------
    def zfs_filesystems(self, host: str) -> dict[str, str]:
        """{mountpoint: name} of the node's ZFS filesystems ({} on a node without ZFS)."""
        result = self.run(host, "command -v zfs >/dev/null || exit 0; zfs list -H -o name,mountpoint -t filesystem")
        found = {}
        for line in result.stdout.splitlines():
            name, _, mountpoint = line.partition("\t")
            if mountpoint.startswith("/"):
                found[mountpoint.rstrip("/") or "/"] = name
        return found

    def zfs_get(self, host: str, dataset: str, prop: str) -> str | None:
        result = self.run(host, ["zfs", "get", "-Hp", "-o", "value", prop, dataset], check=False)
        return result.stdout.strip() if result.ok else None

    def zfs_snapshots(self, host: str, dataset: str, recursive: bool = True) -> list[str]:
        args = ["zfs", "list", "-H", "-o", "name", "-t", "snapshot", *(["-r"] if recursive else ["-d", "1"]),
                dataset]
        result = self.run(host, args, check=False)
        return result.stdout.split() if result.ok else []

    # -- the converter --------------------------------------------------------------------
    def converter(self, host: str, args: list[str], timeout: float = 600) -> Result:
        """`vpsadminos-convert ARGS` (never waiting on a prompt: stdin is empty)."""
        return self.run(host, [CONVERTER, *args], stdin="", timeout=timeout, check=False)

    def converter_version(self, host: str) -> str | None:
        result = self.run(host, f"command -v {CONVERTER} >/dev/null && {CONVERTER} --version", check=False)
        return result.stdout.strip() if result.ok else None

    def migration_step(self, host: str, ctid: int) -> str | None:
        """The step done of `ctid`'s migration (stage, sync, transfer), or None: what the
        converter's state file records, else what the DAG's own staging records (today's
        osctld, STAGED_DIR). The converter's file is Ruby's Marshal dump of its state (read as
        base64: it is binary)."""
        import base64

        from openvz.marshal import loads

        path = shlex.quote(f"{STATE_DIR}/{int(ctid)}.state")
        result = self.run(host, f"base64 -w0 -- {path} 2>/dev/null || echo __airlift_missing__ >&2", check=False)
        if "__airlift_missing__" in result.stderr:
            staged = self.read_file(host, f"{STAGED_DIR}/{int(ctid)}")
            return (staged or "").strip() or None
        try:
            return str(loads(base64.b64decode(result.stdout))["step"])
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise StepError(f"{host}: cannot read the converter's state of container {ctid}: {exc}") from exc

    # -- osctl ----------------------------------------------------------------------------
    def osctl(self, host: str, args: list[str], *, stdin: str | None = None, check: bool = True) -> Result:
        return self.run(host, ["osctl", *args], stdin=stdin, check=check)

    def osctl_json(self, host: str, args: list[str]):
        return json.loads(self.osctl(host, ["-j", *args]).stdout or "null")

    def cpu_quota(self, host: str, ctid: int) -> int | None:
        """The container's cpu.cfs_quota_us (osctl ct set cpu-limit N: N * 1000 of the default
        100000 us period), None when unset."""
        params = {p["parameter"]: p["value"] for p in self.osctl_json(host, ["ct", "cgparams", "ls", str(int(ctid))])
                  or []}
        value = params.get("cpu.cfs_quota_us")
        return int(value[0] if isinstance(value, list) else value) if value else None

    def os_container(self, host: str, ctid: int) -> dict | None:
        """`osctl -j ct show`, or None when the node has no such container."""
        result = self.osctl(host, ["-j", "ct", "show", str(int(ctid))], check=False)
        if not result.ok:
            if "container not found" in result.stdout + result.stderr:
                return None
            from airlift.remote import NodeCommandError

            raise NodeCommandError(result)
        return json.loads(result.stdout)
