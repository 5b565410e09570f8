"""The node pair: what is on the OpenVZ node (ct.discover), the converter there
(ct.converter-installed) and the keys between the two nodes (ct.ssh-keys)."""

from __future__ import annotations

import shlex

from airlift.errors import StepError
from openvz import MIGRATED_DIR
from operators.openvz.common import MigrationStepOperator
from operators.runbook_step import Plan

# The runbook's package source for a Ruby newer than 2.0 and its gem source (seed 003).
VPSFREE_REPO = ("[vpsfree]\nname=vpsFree.cz package repository\nbaseurl=http://repo.vpsfree.cz/stable/\n"
                "enabled=1\ngpgcheck=0\n")
GEM_INSTALL = ["gem", "install", "--source", "https://rubygems.vpsfree.cz", "--prerelease", "vpsadminos-converter",
               "libosctl"]


class DiscoverOperator(MigrationStepOperator):
    """Checks the trigger form first (bad input fails here, before anything changes), reaches
    both nodes, then lists the OpenVZ node's containers with their layout (simfs, ploop, ZFS
    dataset), state, distribution, size and whether they can be converted; fails when the
    destination pool has no room for them. Its value, the list of containers, is what the
    per-container steps map over; refused containers are in it too (preflight skips them),
    so the report names them."""

    def execute(self, context) -> list[dict]:
        with self.step_errors():
            settings = self.settings(context)
            return self.discover(settings)

    def discover(self, settings) -> list[dict]:
        from openvz import containers as cts

        nodes = self.nodes
        for role, host in (("source_node", settings.source), ("destination_node", settings.destination)):
            self._reach(role, host)
        if nodes.run(settings.source, "command -v vzlist", check=False).exit_status:
            raise StepError(f"{settings.source} has no vzlist: not an OpenVZ node")
        if nodes.run(settings.destination, "command -v osctl", check=False).exit_status:
            raise StepError(f"{settings.destination} has no osctl: not a vpsAdminOS node")
        osctl = nodes.osctl(settings.destination, ["--version"]).stdout.strip()
        era = protocol(osctl)
        self.log.info("%s: %s, the %s receive protocol", settings.destination, osctl, era)
        listed = {int(ct["ctid"]): ct for ct in nodes.vzlist(settings.source)}
        wanted = settings.containers or tuple(sorted(listed))
        mountpoints = nodes.zfs_filesystems(settings.source)
        found = []
        for ctid in wanted:
            migrated = nodes.read_file(settings.source, f"{MIGRATED_DIR}/{ctid}")
            if ctid not in listed:
                if migrated:
                    found.append({"ctid": ctid, "migrated": migrated.strip(), "refused": []})
                    continue
                raise StepError(f"container {ctid} is not on {settings.source} (it has: "
                                f"{', '.join(map(str, sorted(listed))) or 'none'})")
            conf = cts.parse_conf(nodes.ct_conf(settings.source, ctid) or "", ctid)
            where = cts.layout(conf, mountpoints)
            name, version = cts.distribution(conf)
            ct = {"ctid": ctid, "running": listed[ctid].get("status") == "running",
                  "layout": where.get("layout"), "dataset": where.get("dataset"),
                  "private": conf.get("VE_PRIVATE"), "root": conf.get("VE_ROOT"),
                  "distribution": name, "version": version, "hostname": conf.get("HOSTNAME", "vps"),
                  "addresses": cts.addresses(conf), "nameservers": conf.get("NAMESERVER", "").split(),
                  "disk_quota": cts.disk_quota_bytes(conf), "cpu_limit": cts.cpu_limit(conf),
                  "owner": settings.owner(ctid), "migrated": migrated.strip() if migrated else None,
                  "protocol": era,
                  "refused": ([where["refused"]] if "refused" in where else []) + cts.refusals(conf)}
            ct["size"] = self._size(settings.source, ct)
            found.append(ct)
        self._check_room(settings, [ct for ct in found if not ct["refused"] and not ct["migrated"]])
        self.log.info("containers on %s:\n%s", settings.source, table(found))
        return found

    def _reach(self, role: str, host: str) -> None:
        """A node that does not exist or is not the one known_hosts knows is bad input, refused
        at once; a node that does not answer now is left to the retries."""
        import socket

        import paramiko

        try:
            self.nodes.connect_to(host)
        except socket.gaierror as exc:
            raise StepError(f"{role} {host}: no such host ({exc.strerror})") from exc
        except paramiko.SSHException as exc:  # unknown or changed host key, refused login
            raise StepError(f"{role} {host}: {exc}") from exc

    def _size(self, host: str, ct: dict) -> int:
        if ct["layout"] == "zfs":
            return int(self.nodes.zfs_get(host, ct["dataset"], "used") or 0)
        path = ct["private"] if ct["private"] and ct["private"].startswith("/") else None
        if path is None:
            return 0
        return int(self.nodes.run(host, f"du -sb -- {shlex.quote(path)} | cut -f1", check=False).stdout.strip() or 0)

    def _check_room(self, settings, movable: list[dict]) -> None:
        free = self.nodes.zfs_get(settings.destination, settings.pool, "available")
        if free is None:
            raise StepError(f"{settings.destination} has no ZFS pool {settings.pool}")
        staged = {ct["ctid"] for ct in movable if self.nodes.os_container(settings.destination, ct["ctid"])}
        need = sum(ct["size"] for ct in movable if ct["ctid"] not in staged)
        if need > int(free):
            raise StepError(f"pool {settings.pool} on {settings.destination} has {int(free):,} bytes free; the "
                            f"containers to move need {need:,} bytes")





def table(found: list[dict]) -> str:
    """The containers as a short markdown table (what the log and the review show)."""
    lines = ["| CT | layout | state | distribution | size | verdict |", "|---|---|---|---|---|---|"]
    for ct in found:
        if ct.get("migrated"):
            verdict = f"already moved ({ct['migrated']})"
        elif ct["refused"]:
            verdict = "refused: " + "; ".join(ct["refused"])
        else:
            verdict = "to move"
        lines.append(f"| {ct['ctid']} | {ct.get('layout') or '-'} | {'running' if ct.get('running') else 'stopped'} "
                     f"| {ct.get('distribution', '-')} {ct.get('version', '')} | {ct.get('size', 0) >> 20} MiB "
                     f"| {verdict} |")
    return "\n".join(lines)


class ConverterInstalledOperator(MigrationStepOperator):
    """The converter needs Ruby newer than 2.0 and OpenVZ nodes ship 1.8: adds the runbook's
    vpsFree repository, installs its Ruby, then the converter gems (seed 003, Installation).
    Records which converter and which osctl the run talks to, and refuses a pair that speak
    different receive protocols."""

    def probe(self, context) -> Plan:
        settings = self.settings(context)
        source = settings.source
        changes = []
        if self.nodes.read_file(source, "/etc/yum.repos.d/vpsfree.repo") is None:
            changes.append(f"{source}: write /etc/yum.repos.d/vpsfree.repo (the runbook's Ruby)")
        ruby = self.nodes.run(source, "ruby --version", check=False).stdout.split()
        if not ruby or ruby[1].split(".")[0] in ("0", "1"):
            changes.append(f"{source}: yum install -y ruby (has {' '.join(ruby[:2]) or 'no ruby'}; the converter needs > 2.0)")
        version = self.nodes.converter_version(source)
        if version is None:
            changes.append(f"{source}: {shlex.join(GEM_INSTALL)}")
        osctl = self.nodes.osctl(settings.destination, ["--version"]).stdout.strip()
        details = {"converter": version, "osctl": osctl}
        if version:
            details["protocol"] = protocol(version)
            if protocol(osctl) != details["protocol"]:
                raise StepError(f"the converter on {source} ({version}) speaks the {details['protocol']} receive "
                                f"protocol, osctl on {settings.destination} ({osctl}) the {protocol(osctl)} one")
        return Plan(changes, details=details)

    def apply(self, context, plan: Plan) -> dict:
        source = self.settings(context).source
        for change in plan.changes:
            if "vpsfree.repo" in change:
                self.nodes.run(source, "mkdir -p /etc/yum.repos.d && cat > /etc/yum.repos.d/vpsfree.repo",
                               stdin=VPSFREE_REPO)
            elif "yum install" in change:
                self.nodes.run(source, ["yum", "install", "-y", "ruby"], timeout=1800)
            else:
                self.nodes.run(source, GEM_INSTALL, timeout=1800)
        return {}


def protocol(version: str) -> str:
    """The receive protocol a version line speaks (openvz.receive_protocol), as a step error."""
    from openvz import receive_protocol

    try:
        return receive_protocol(version)
    except ValueError as exc:
        raise StepError(str(exc)) from exc


class SshKeysOperator(MigrationStepOperator):
    """The OpenVZ node's root key (made when it has none) authorised on the vpsAdminOS node
    twice: for osctld's receive (`osctl receive authorized-keys add`; today's osctld names its
    keys: `airlift-<source>`) and for root, in /etc/ssh/authorized_keys.d/root. The runbook
    asks root's only for simfs and ploop (rsync); the DAG's ZFS streams go to `zfs recv -s` as
    root too (resumable receives, which osctld's receive does not offer), so every layout needs
    it. Checked by logging in from the source."""

    def _add_key(self, src: str, dst: str) -> list[str]:
        """`osctl receive authorized-keys add` and its name, if the destination's osctld names
        its keys (since 2020-09; before, `add` took none)."""
        era = protocol(self.nodes.osctl(dst, ["--version"]).stdout)
        return ["receive", "authorized-keys", "add", *([f"airlift-{src}"] if era == "tokens" else [])]

    def _key(self, source: str) -> str | None:
        for name in ("id_ed25519.pub", "id_rsa.pub"):
            text = self.nodes.read_file(source, f"/root/.ssh/{name}")
            if text and text.strip():
                return text.strip()
        return None

    def probe(self, context) -> Plan:
        settings = self.settings(context)
        src, dst = settings.source, settings.destination
        key = self._key(src)
        if key is None:
            return Plan([f"{src}: ssh-keygen -t rsa -b 4096 (root has no key pair)",
                         f"{dst}: osctl {' '.join(self._add_key(src, dst))} (the new key)",
                         f"{dst}: add the new key to /etc/ssh/authorized_keys.d/root"])
        changes = []
        listed = self.nodes.osctl(dst, ["receive", "authorized-keys", "ls"]).stdout
        if key.split()[1] not in listed:
            changes.append(f"{dst}: osctl {' '.join(self._add_key(src, dst))} ({key.split()[0]} key of root@{src})")
        if key.split()[1] not in (self.nodes.read_file(dst, "/etc/ssh/authorized_keys.d/root") or ""):
            changes.append(f"{dst}: add root@{src}'s key to /etc/ssh/authorized_keys.d/root")
        return Plan(changes)

    def apply(self, context, plan: Plan) -> dict:
        settings = self.settings(context)
        src, dst = settings.source, settings.destination
        key = self._key(src)
        if key is None:
            self.nodes.run(src, "ssh-keygen -q -t rsa -b 4096 -N '' -f /root/.ssh/id_rsa")
            key = self._key(src)
        if key.split()[1] not in self.nodes.osctl(dst, ["receive", "authorized-keys", "ls"]).stdout:
            self.nodes.osctl(dst, self._add_key(src, dst), stdin=key + "\n")
        if key.split()[1] not in (self.nodes.read_file(dst, "/etc/ssh/authorized_keys.d/root") or ""):
            self.nodes.run(dst, "mkdir -p /etc/ssh/authorized_keys.d && cat >> /etc/ssh/authorized_keys.d/root && "
                                "chmod 600 /etc/ssh/authorized_keys.d/root", stdin=key + "\n")
        return {}

    def verify(self, context, plan: Plan) -> Plan:
        settings = self.settings(context)
        port = self.nodes.port or 22
        self.nodes.run(settings.source, ["ssh", "-p", str(port), "-o", "BatchMode=yes", "-l", "root",
                                         settings.destination, "true"])
        return self.probe(context)
