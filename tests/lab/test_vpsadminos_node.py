"""The lab's vpsAdminOS nodes over real SSH: osctl (lab/openvz/tools/osctl.py), the receive
side sshd runs for osctl-ct-receive, and who may log in (lab/core/sshd.py)."""

from __future__ import annotations

import base64
import io
import json
import tarfile
import time

import pytest
import yaml

from tests.helpers import new_lab

OS1, VZ1 = "127.0.1.41", "127.0.1.31"
RECV = "ssh -l osctl-ct-receive os1"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """vz1, os1 and os2 built and seeded by hand (os1/os2 by lab.openvz.vpsadminos), started."""
    from lab.core import nodes, sshd
    from lab.core.tools.zfs import Zfs
    from lab.core.topology import host
    from lab.openvz import vpsadminos

    lab = new_lab(tmp_path_factory.mktemp("lab"))
    sshd.generate_keys(lab.cfg)
    for name in ("vz1", "os1", "os2"):
        nodes.build_node(lab.cfg, host(name), lab.cfg.ssh_dir / f"root_{name}")
    for name in ("os1", "os2"):
        vpsadminos.seed_node(lab.node_root(name))
    z = Zfs(lab.node_root("vz1"))
    z.create_pool("vz")
    z.create("vz/private/101", parents=True)
    private = z.path("vz/private/101") / "private"
    (private / "etc").mkdir(parents=True)
    (private / "etc/hostname").write_text("ct101\n")
    (private / "root").mkdir()
    (private / "root/data.bin").write_bytes(bytes(range(256)) * 64)
    z.snapshot("vz/private/101@migrate-base")
    lab.start()
    yield lab
    lab.destroy()


@pytest.fixture
def hook(lab, monkeypatch):
    from hooks.node import NodeHook

    for name, value in lab.env().items():
        monkeypatch.setenv(name, value)
    h = NodeHook(ssh_conn_id="openvz_ssh")
    yield h
    h.close()


def osctl(hook, command: str, stdin=None, check=True):
    return hook.run(OS1, f"osctl {command}", stdin=stdin, check=check)


def skel_tar(ctid: str, group: str = "/default", kind: str = "skel", via: bool = True) -> bytes:
    """A skel archive as the converter sends it (research §3), with a routed netif (via a /30
    unless `via` is off, as today's converter writes it)."""
    files = {
        "metadata.yml": {"type": kind, "format": "", "user": "default", "group": group,
                         "container": ctid, "datasets": [], "exported_at": int(time.time())},
        "config/user.yml": {"ugid": 1000, "uid_map": ["0:666000:65536"], "gid_map": ["0:666000:65536"]},
        "config/group.yml": {"path": group, "cgparams": []},
        "config/container.yml": {
            "user": "default", "group": group, "distribution": "debian", "version": "9.0",
            "arch": "x86_64", "hostname": f"ct{ctid}", "dns_resolvers": ["8.8.8.8"],
            "autostart": None, "nesting": False, "devices": [], "prlimits": [], "mounts": [],
            "net_interfaces": [{"type": "routed", "name": "eth0", "hwaddr": None,
                                "ip_addresses": {"v4": ["1.2.3.4/32"], "v6": []},
                                **({"via": {"v4": {"network": "10.100.10.100/30", "host": None, "ct": None}}}
                                   if via else {}),
                                "routes": {"v4": ["1.2.3.4/32"], "v6": []}}],
            "cgparams": [{"subsystem": "memory", "name": "memory.limit_in_bytes", "value": [1 << 30]},
                         {"subsystem": "memory", "name": "memory.memsw.limit_in_bytes", "value": [2 << 30]}],
        },
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, value in files.items():
            data = ("---\n" + yaml.safe_dump(value)).encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_version_listing_and_unknown_container(hook):
    assert osctl(hook, "--version").stdout == "osctl version 19.03.0\n"
    assert osctl(hook, "-j ct ls").stdout.strip() == "[]"
    assert osctl(hook, "ct ls").stdout.split() == ["POOL", "ID", "USER", "GROUP", "DISTRIBUTION",
                                                   "VERSION", "STATE", "INIT_PID", "MEMORY", "CPU_TIME"]
    missing = osctl(hook, "-j ct show 999", check=False)
    assert (missing.exit_status, missing.stderr) == (1, "error: container not found\n")


def test_users_and_id_ranges(hook):
    ranges = json.loads(osctl(hook, "-j id-range ls").stdout)
    assert ranges == [{"pool": "tank", "name": "default", "start_id": 1000000,
                       "last_id": 1000000 + 65536 * 65520 - 1, "block_size": 65536,
                       "block_count": 65520, "allocated": 0, "free": 65520}]
    alloc = json.loads(osctl(hook, "-j id-range allocate default --block-count 8 --owner member:1").stdout)
    assert alloc == {"block_index": 0, "block_count": 8, "owner": "member:1", "first_id": 1000000,
                     "last_id": 1000000 + 8 * 65536 - 1, "id_count": 8 * 65536}
    osctl(hook, "user new alice")  # one block from the default range, after member:1's
    osctl(hook, "user new --map-uid 0:666000:65536 --map-gid 0:666000:65536 bob")
    assert osctl(hook, "user map alice").stdout.splitlines() == [
        "TYPE  NS_ID  HOST_ID  COUNT", "uid   0      1524288  65536", "gid   0      1524288  65536"]
    bob = json.loads(osctl(hook, "-j user show bob").stdout)
    assert (bob["name"], bob["uid_map"], bob["gid_map"]) == ("bob", ["0:666000:65536"], ["0:666000:65536"])
    assert [u["name"] for u in json.loads(osctl(hook, "-j user ls").stdout)] == ["alice", "bob"]
    assert osctl(hook, "user new alice", check=False).stderr == "error: user already exists\n"
    assert osctl(hook, "user show carol", check=False).stderr == "error: user not found\n"
    osctl(hook, "user del alice")
    osctl(hook, "user del bob")
    osctl(hook, "id-range free default --block-index 0")
    assert json.loads(osctl(hook, "-j id-range ls").stdout)[0]["allocated"] == 0
    bad = osctl(hook, "id-range free default --block-index 5", check=False)
    assert (bad.exit_status, bad.stderr) == (1, "error: block at index 5 not found\n")


def test_receive_keys_and_logins(lab, hook):
    vz1_key = (lab.node_root("vz1") / "root/.ssh/id_ed25519.pub").read_text().strip()
    # Not in the keychain: the receive user is refused.
    refused = hook.run(VZ1, f"{RECV} receive cancel 1", check=False)
    assert refused.exit_status == 255 and "Permission denied" in refused.stderr
    osctl(hook, "receive authorized-keys add", stdin="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOther other@x\n")
    osctl(hook, "receive authorized-keys add", stdin=vz1_key + "\n")
    listing = osctl(hook, "receive authorized-keys ls").stdout.splitlines()
    assert listing[0].split() == ["INDEX", "KEY"] and listing[2].startswith("1      ssh-ed25519 ")
    osctl(hook, "receive authorized-keys del 0")
    assert [k["key"] for k in json.loads(osctl(hook, "-j receive authorized-keys ls").stdout)] == [vz1_key]
    deployed = (lab.node_root("os1") / "run/osctl/send-receive/authorized_keys").read_text()
    assert deployed == f'command="/usr/local/sbin/osctl-ct-receive",restrict {vz1_key}\n'
    # In the keychain: only the forced command runs, whatever was asked.
    shell = hook.run(VZ1, f"{RECV} 'echo hi; id'", check=False)
    assert shell.exit_status == 1 and shell.stdout == "" and shell.stderr.startswith("Usage:\n  receive skel [pool]\n")
    scp = hook.run(VZ1, "echo x >/tmp/x && scp -o User=osctl-ct-receive /tmp/x os1:/tmp/x", check=False)
    assert scp.exit_status != 0 and not (lab.node_root("os1") / "tmp/x").exists()
    # Root on a vpsAdminOS node: the Airflow key (this hook) or authorized_keys.d/root only.
    assert hook.run(VZ1, "ssh os1 true", check=False).exit_status == 255
    keys = lab.node_root("os1") / "etc/ssh/authorized_keys.d/root"
    keys.parent.mkdir(parents=True, exist_ok=True)
    keys.write_text(vz1_key + "\n")
    assert hook.run(VZ1, "ssh os1 hostname").stdout == "os1\n"
    # os2 has no such file: still refused; a node of another role keeps the lab's keys.
    assert hook.run(VZ1, "ssh os2 true", check=False).exit_status == 255
    assert hook.run(VZ1, "ssh vz1 hostname").stdout == "vz1\n"


def send_skel(lab, hook, ctid: str, group: str = "/default", check=True):
    (lab.node_root("vz1") / f"tmp/skel-{ctid}.tar").write_bytes(skel_tar(ctid, group))
    return hook.run(VZ1, f"{RECV} receive skel < /tmp/skel-{ctid}.tar", check=check)


def test_full_receive_session(lab, hook):
    send_skel(lab, hook, "101")
    staged = json.loads(osctl(hook, "-j ct show 101").stdout)
    assert {k: staged[k] for k in ("pool", "id", "user", "group", "dataset", "rootfs", "state", "hostname",
                                   "dns_resolvers", "distribution", "version")} == {
        "pool": "tank", "id": "101", "user": "default", "group": "/default", "dataset": "tank/ct/101",
        "rootfs": "/tank/ct/101/private", "state": "staged", "hostname": "ct101",
        "dns_resolvers": ["8.8.8.8"], "distribution": "debian", "version": "9.0"}
    assert osctl(hook, "ct start 101", check=False).stderr == "error: start not available\n"
    again = send_skel(lab, hook, "101", check=False)
    assert (again.exit_status, again.stderr) == (1, "Error: container tank:101 already exists\n")
    early = hook.run(VZ1, f"{RECV} receive base 999 /", check=False)
    assert early.stderr == "Error: container not found\n"
    hook.run(VZ1, f"zfs send vz/private/101@migrate-base | {RECV} receive base 101 / migrate-base")
    hook.run(VZ1, f"{RECV} receive transfer 101 start")
    done = json.loads(osctl(hook, "-j ct show 101").stdout)
    assert done["state"] == "running" and isinstance(done["init_pid"], int)
    src, dst = lab.node_root("vz1") / "vz/private/101/private", lab.node_root("os1") / "tank/ct/101/private"
    assert sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*")) == sorted(
        p.relative_to(src).as_posix() for p in src.rglob("*"))
    assert (dst / "root/data.bin").read_bytes() == (src / "root/data.bin").read_bytes()
    assert hook.run(OS1, "zfs list -H -t snapshot -o name -r tank/ct/101").stdout == ""
    late = hook.run(VZ1, f"{RECV} receive transfer 101", check=False)
    assert late.stderr == "Error: this container is not staged\n"
    # What the DAG reads: netifs with their interconnect, cgparams, limits.
    netifs = json.loads(osctl(hook, "-j ct netif ls 101").stdout)
    assert netifs == [{"pool": "tank", "ctid": "101", "name": "eth0", "index": 0, "type": "routed",
                       "link": None, "veth": "vz101i0", "via": {"4": "10.100.10.100/30"},
                       "host_addr": {"4": "10.100.10.101/30"}, "ct_addr": {"4": "10.100.10.102/30"},
                       "hwaddr": None, "ip_addresses": {"4": ["1.2.3.4/32"], "6": []}}]
    assert json.loads(osctl(hook, "-j ct netif ip ls 101").stdout) == [
        {"pool": "tank", "ctid": "101", "netif": "eth0", "version": 4, "addr": "1.2.3.4/32"}]
    params = {p["parameter"]: p["value"] for p in json.loads(osctl(hook, "-j ct cgparams ls 101").stdout)}
    assert params == {"memory.limit_in_bytes": [1 << 30], "memory.memsw.limit_in_bytes": [2 << 30]}
    osctl(hook, "ct set cpu-limit 101 200")
    osctl(hook, "ct set memory-limit 101 2G")
    params = {p["parameter"]: p["value"] for p in json.loads(osctl(hook, "-j ct cgparams ls 101").stdout)}
    assert params == {"memory.limit_in_bytes": [2 << 30], "cpu.cfs_period_us": [100000],
                      "cpu.cfs_quota_us": [200000]}
    osctl(hook, "ct unset cpu-limit 101")
    assert "cpu.cfs_quota_us" not in osctl(hook, "ct cgparams ls 101").stdout
    # Ownership, stop, delete.
    osctl(hook, "user new --map-uid 0:700000:65536 --map-gid 0:700000:65536 member2")
    assert osctl(hook, "ct chown 101 member2", check=False).stderr == "error: container has to be stopped first\n"
    assert osctl(hook, "ct del 101", check=False).stderr == "error: the container is running\n"
    osctl(hook, "ct stop 101")
    osctl(hook, "ct chown 101 member2")
    row = osctl(hook, "ct ls -H -o id,user,state").stdout
    assert row.split() == ["101", "member2", "stopped"]
    osctl(hook, "ct start -w 60 101")
    osctl(hook, "ct del -f 101")
    assert osctl(hook, "-j ct ls").stdout.strip() == "[]"
    assert "tank/ct/101" not in hook.run(OS1, "zfs list -H -o name -r tank").stdout


def test_cancel_removes_everything(lab, hook):
    send_skel(lab, hook, "102")
    hook.run(VZ1, f"zfs send vz/private/101@migrate-base | {RECV} receive base 102 / migrate-base")
    assert hook.run(OS1, "zfs list -H -t snapshot -o name -r tank/ct/102").stdout == "tank/ct/102@migrate-base\n"
    hook.run(VZ1, f"{RECV} receive cancel 102")
    assert osctl(hook, "ct show 102", check=False).stderr == "error: container not found\n"
    assert "tank/ct/102" not in hook.run(OS1, "zfs list -H -o name -r tank").stdout
    assert not (lab.node_root("os1") / "tank/conf/ct/102.yml").exists()


def test_era_group_names_and_archive_checks(lab, hook):
    # the converter's relative group `default`: the lab's 2019 profile takes it as /default
    # (research infers real osctld refused it; see PROFILES in osctl.py)
    relative = send_skel(lab, hook, "103", group="default", check=False)
    assert (relative.exit_status, relative.stderr) == (0, "")
    assert json.loads(osctl(hook, "-j ct show 103").stdout)["group"] == "/default"
    hook.run(VZ1, f"{RECV} receive cancel 103")
    (lab.node_root("vz1") / "tmp/full.tar").write_bytes(skel_tar("104", kind="full"))
    wrong = hook.run(VZ1, f"{RECV} receive skel < /tmp/full.tar", check=False)
    assert wrong.stderr == "Error: expected archive type to be 'skel', got 'full'\n"


def export_archive(ctid: str, fmt: str, group: str, payload: bytes) -> bytes:
    skel = tarfile.open(fileobj=io.BytesIO(skel_tar(ctid, group)))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for member in skel.getmembers():
            data = skel.extractfile(member).read()
            if member.name == "metadata.yml":
                meta = yaml.safe_load(data)
                meta.update(type="full", format=fmt)
                data = ("---\n" + yaml.safe_dump(meta)).encode()
            info = tarfile.TarInfo(member.name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        name = "rootfs/base.tar.gz" if fmt == "tar" else "rootfs/base.dat"
        info = tarfile.TarInfo(name)
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


def test_ct_import(lab, hook):
    rootfs = io.BytesIO()
    with tarfile.open(fileobj=rootfs, mode="w:gz") as tar:
        info = tarfile.TarInfo("etc/hostname")
        info.size = 6
        tar.addfile(info, io.BytesIO(b"ct105\n"))
    os1 = lab.node_root("os1")
    (os1 / "tmp/ct105.tar").write_bytes(export_archive("105", "tar", "default", rootfs.getvalue()))
    osctl(hook, "ct import /tmp/ct105.tar")  # its relative group `default` taken as /default (the 2019 profile)
    shown = json.loads(osctl(hook, "-j ct show 105").stdout)
    assert (shown["state"], shown["group"]) == ("stopped", "/default")
    assert (os1 / "tank/ct/105/private/etc/hostname").read_text() == "ct105\n"
    exists = osctl(hook, "ct import --as-group /default /tmp/ct105.tar", check=False)
    assert exists.stderr == "error: container tank:105 already exists\n"
    # zfs format, under another id: the stream a `zfs send` wrote.
    stream = hook.run(VZ1, "zfs send vz/private/101@migrate-base | base64 -w0").stdout
    (os1 / "tmp/ct101.tar").write_bytes(export_archive("101", "zfs", "/default", base64.b64decode(stream)))
    osctl(hook, "ct import --as-id 106 /tmp/ct101.tar")
    assert (os1 / "tank/ct/106/private/etc/hostname").read_text() == "ct101\n"
    # --as-user: an existing user instead of the archive's.
    osctl(hook, "user new --map-uid 0:800000:65536 --map-gid 0:800000:65536 other")
    (os1 / "tmp/ct107.tar").write_bytes(export_archive("107", "tar", "/default", rootfs.getvalue()))
    osctl(hook, "ct import --as-user other /tmp/ct107.tar")
    assert json.loads(osctl(hook, "-j ct show 107").stdout)["user"] == "other"
    for ctid in ("105", "106", "107"):
        osctl(hook, f"ct del {ctid}")


def test_state_survives_a_lab_restart(lab, hook):
    send_skel(lab, hook, "108")
    hook.close()
    lab.stop()
    lab.start()
    assert json.loads(osctl(hook, "-j ct show 108").stdout)["state"] == "staged"
    hook.run(VZ1, f"{RECV} receive cancel 108")


def test_todays_osctld_named_keys_tokens_and_groups(lab, hook):
    """The "2024" profile (os2 switched to it): named keys, `receive skel` printing the token
    the other receive commands take (kept in the container's send log), routed veth without an
    interconnect, and the converter's relative group refused."""
    (lab.node_root("os2") / "etc/lab/osctl-profile").write_text("2024\n")

    def osctl2(command, stdin=None, check=True):
        return hook.run("127.0.1.42", f"osctl {command}", stdin=stdin, check=check)

    assert osctl2("--version").stdout == "osctl version 24.05.0\n"
    vz1_key = (lab.node_root("vz1") / "root/.ssh/id_ed25519.pub").read_text().strip()
    assert osctl2("receive authorized-keys add", stdin=vz1_key + "\n", check=False).exit_status == 64
    assert osctl2("receive authorized-keys add 'a b'", stdin=vz1_key + "\n", check=False).stderr == (
        "error: key name must consist only of a-z A-Z 0-9, _-:.\n")
    osctl2("receive authorized-keys add airlift-vz1", stdin=vz1_key + "\n")
    again = osctl2("receive authorized-keys add airlift-vz1", stdin=vz1_key + "\n", check=False)
    assert again.stderr == "error: key 'airlift-vz1' already exists\n"
    listed = json.loads(osctl2("-j receive authorized-keys ls").stdout)
    assert [(k["name"], k["pubkey"]) for k in listed] == [("airlift-vz1", vz1_key)]
    assert osctl2("receive authorized-keys ls").stdout.split()[:7] == [
        "NAME", "PUBKEY", "FROM", "CTID", "PASSPHRASE", "SINGLE_USE", "IN_USE"]
    deployed = (lab.node_root("os2") / "run/osctl/send-receive/authorized_keys").read_text()
    assert deployed == f'command="/usr/local/sbin/osctl-ct-receive",restrict {vz1_key}\n'
    recv = "ssh -l osctl-ct-receive os2"
    usage = hook.run(VZ1, f"{recv} receive", check=False)
    assert usage.exit_status == 1 and usage.stderr.startswith("Usage:\n  receive skel [pool|- [passphrase]]\n")

    (lab.node_root("vz1") / "tmp/skel-relative.tar").write_bytes(skel_tar("105", group="default", via=False))
    refused = hook.run(VZ1, f"{recv} receive skel < /tmp/skel-relative.tar", check=False)
    assert (refused.exit_status, refused.stderr) == (1, "Error: group name has to start with /\n")
    assert osctl2("ct show 105", check=False).exit_status == 1

    # the DAG's own skel (plugins/openvz/skel.py), which today's osctld takes
    from openvz.containers import parse_conf
    from openvz.skel import container_config, skel_archive

    config = container_config(parse_conf('OSTEMPLATE="debian-9.0-x86_64"\nIP_ADDRESS="1.2.3.4"\n', 105),
                              arch="x86_64", veth_type="routed", bridge_link="lxcbr0")
    (lab.node_root("vz1") / "tmp/skel-105.tar").write_bytes(skel_archive(105, config))
    token = hook.run(VZ1, f"{recv} receive skel - < /tmp/skel-105.tar").stdout.strip()
    assert len(token) == 40 and int(token, 16) >= 0
    kept = yaml.safe_load((lab.node_root("os2") / "tank/conf/ct/105.yml").read_text())
    assert kept["send_log"]["token"] == token
    assert osctl2("ct show 105").exit_status == 0
    assert hook.run("127.0.1.42", "zfs get -H -o value mounted tank/ct/105").stdout == "no\n", \
        "today's receive skel leaves the staged datasets unmounted"
    by_id = hook.run(VZ1, f"zfs send vz/private/101@migrate-base | {recv} receive base 105 / migrate-base",
                     check=False)
    assert by_id.stderr.endswith("Error: container not found\n")
    hook.run(VZ1, f"zfs send vz/private/101@migrate-base | {recv} receive base {token} / migrate-base")
    assert hook.run(VZ1, f"{recv} receive transfer 105 start", check=False).stderr == "Error: container not found\n"
    hook.run(VZ1, f"{recv} receive transfer {token} start")
    done = json.loads(osctl2("-j ct show 105").stdout)
    assert done["state"] == "running" and "send_log" not in yaml.safe_load(
        (lab.node_root("os2") / "tank/conf/ct/105.yml").read_text())
    netif = json.loads(osctl2("-j ct netif ls 105").stdout)[0]
    assert (netif["type"], netif["via"], netif["ip_addresses"]) == ("routed", {}, {"4": ["1.2.3.4/32"], "6": []})
    assert hook.run(VZ1, f"{recv} receive transfer {token}", check=False).stderr == "Error: container not found\n"
