"""The lab's vpsadminos-convert (lab/openvz/tools/vpsadminos_convert.py), run as the program
inside a node sandbox on a temporary node root with the real vzctl/vzlist/zfs simulators,
tar and rsync; `ssh` is a test double in /usr/local/bin that records what it is asked, keeps
what `receive skel` gets, pipes `receive base|incremental` into the node's own `zfs recv`
(pool `tank`) and runs every other command locally (so rsync's remote end is the same node)."""

from __future__ import annotations

import gzip
import io
import shutil
import tarfile
from pathlib import Path

import pytest
import yaml

from lab.core import nodes
from lab.core.tools.zfs import Zfs

FAKE_SSH = r"""#!/bin/bash
user=root
while [ $# -gt 0 ]; do
  case "$1" in -o|-p|-i) shift 2;; -l) user=$2; shift 2;; -*) shift;; *) break;; esac
done
host=$1; shift
echo "$user@$host $*" >> /var/log/fake-ssh
if [ "$user" = osctl-ct-receive ]; then
  case "$1 $2" in
    "receive skel") cat > /tmp/skel.tar;;
    "receive base"|"receive incremental")
      ds=tank/ct/$3; [ "$4" != / ] && ds=$ds/$4
      zfs recv -F -u $ds || exit 1;;
  esac
  exit $(cat /etc/fake-ssh-rc 2>/dev/null || echo 0)
fi
case "$*" in "osctl -j ct show "*) echo "{\"rootfs\": \"/dst/$5\"}"; exit 0;; esac
exec bash -c "$*"
"""

CONF_101 = """\
# seed 003's example
ONBOOT="yes"
PHYSPAGES="0:1048576"
SWAPPAGES="0:0"
DISKSPACE="2097152:2306867"
DISKINODES="131072:144179"
QUOTATIME="0"
CPUUNITS="32320"
NETFILTER="stateless"
VE_ROOT="/vz/root/$VEID"
VE_PRIVATE="/vz/private/$VEID"
VE_LAYOUT="simfs"
OSTEMPLATE="debian-9.0-amd64-vpsfree"
ORIGIN_SAMPLE="base-privvmpages"
HOSTNAME="vps"
KMEMSIZE="105377561:115915317"
VMGUARPAGES="233030:unlimited"
OOMGUARPAGES="unlimited"
IP_ADDRESS="1.2.3.4 2001:db8::1"
NAMESERVER="8.8.8.8 2001:4860:4860::8888"
CPULIMIT="800"
CPUS="8"
what is this
"""

REPORT_101 = """\
Consumed config items:
  ONBOOT = true
  PHYSPAGES = [0, 1048576]
  SWAPPAGES = [0, 0]
  NETFILTER = "stateless"
  VE_ROOT = "/vz/root/101"
  VE_PRIVATE = "/vz/private/101"
  VE_LAYOUT = "simfs"
  OSTEMPLATE = "debian-9.0-amd64-vpsfree"
  HOSTNAME = "vps"
  IP_ADDRESS = [#<IPAddress::IPv4 1.2.3.4/32>, #<IPAddress::IPv6 2001:db8::1/128>]
  NAMESERVER = [#<IPAddress::IPv4 8.8.8.8/32>, #<IPAddress::IPv6 2001:4860:4860::8888/128>]

Ignored config items:
  DISKSPACE = "2097152:2306867"
  DISKINODES = "131072:144179"
  QUOTATIME = "0"
  CPUUNITS = 32320
  ORIGIN_SAMPLE = "base-privvmpages"
  KMEMSIZE = "105377561:115915317"
  VMGUARPAGES = "233030:unlimited"
  OOMGUARPAGES = "unlimited"
  CPULIMIT = 800
  CPUS = 8
"""


def conf(ctid: int, layout: str, private: str, ostemplate="centos-7-x86_64") -> str:
    return (f'VE_ROOT="/vz/root/$VEID"\nVE_PRIVATE="{private}"\nVE_LAYOUT="{layout}"\n'
            f'OSTEMPLATE="{ostemplate}"\nIP_ADDRESS="10.0.0.{ctid % 250}"\nPHYSPAGES="0:256M"\n')


@pytest.fixture
def node(tmp_path) -> Path:
    """vz1 in miniature: 101 simfs stopped, 102 ploop running, 104 ZFS running (dataset
    vz/private/104 with a subdataset and an old snapshot), pool tank as the destination."""
    root = tmp_path / "vz1"
    for d in ("usr/local/bin", "usr/local/sbin", "usr/local/lib/airlift-lab", "root", "tmp",
              "proc", "dev", "etc/vz/conf", "var/lib/lab/vz", "var/log", "vz/root/101",
              "vz/root/102", "vz/private/101/etc", "vz/private/102/root.hdd/fs/etc", "dst/101",
              "dst/102"):
        (root / d).mkdir(parents=True)
    for link, target in (("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib"),
                         ("lib64", "usr/lib64")):
        (root / link).symlink_to(target)
    for name in ("passwd", "group"):
        shutil.copy(Path("/etc", name), root / "etc" / name)
    nodes.install_tools(root)
    (root / "usr/local/bin/vpsadminos-convert").symlink_to(
        "/usr/local/lib/airlift-lab/vpsadminos_convert.py")
    nodes.write_file(root / "usr/local/bin/ssh", FAKE_SSH, 0o755)
    nodes.write_file(root / "etc/vz/conf/101.conf", CONF_101)
    nodes.write_file(root / "etc/vz/conf/102.conf", conf(102, "ploop", "/vz/private/$VEID"))
    nodes.write_file(root / "etc/vz/conf/104.conf", conf(104, "simfs", "/vz/private/$VEID/private"))
    (root / "vz/private/101/etc/hostname").write_text("ct101\n")
    (root / "vz/private/102/root.hdd/fs/etc/hostname").write_text("ct102\n")
    (root / "var/lib/lab/vz/102").write_text("running\n")
    (root / "var/lib/lab/vz/104").write_text("running\n")
    z = Zfs(root)
    z.create_pool("vz")
    z.create_pool("tank")
    z.create("tank/ct")
    z.create("vz/private/104", parents=True)
    (root / "vz/private/104/private/etc").mkdir(parents=True)
    (root / "vz/private/104/private/etc/hostname").write_text("ct104\n")
    z.create("vz/private/104/sub")
    (root / "vz/private/104/sub/data").write_text("old\n")
    z.snapshot(["vz/private/104@backup-1"], recursive=True)
    (root / "vz/private/104/sub/data").write_text("new\n")
    return root


def run(node: Path, command: str, stdin: bytes | None = None):
    proc = nodes.run_in_node(node, command, stdin=stdin, timeout=60)
    proc.out, proc.err = proc.stdout.decode(), proc.stderr.decode()
    return proc


def ok(node: Path, command: str, stdin: bytes | None = None) -> str:
    proc = run(node, command, stdin)
    assert proc.returncode == 0, (command, proc.out, proc.err)
    return proc.out


def members(path: Path) -> dict[str, bytes | None]:
    with tarfile.open(path) as tar:
        return {m.name: (tar.extractfile(m).read() if m.isfile() else None) for m in tar}


def converter_state(path: Path) -> dict:
    """The converter's state file (Ruby Marshal), as the DAG reads it."""
    from openvz.marshal import loads

    return loads(path.read_bytes())


def ssh_log(node: Path) -> list[str]:
    path = node / "var/log/fake-ssh"
    return path.read_text().splitlines() if path.exists() else []


def test_version_help_and_command_line_errors(node):
    assert ok(node, "vpsadminos-convert --version") == "vpsadminos-convert version 19.03.0\n"
    assert "vz6  - Convert containers from OpenVZ Legacy" in ok(node, "vpsadminos-convert")
    proc = run(node, "vpsadminos-convert vz6 export 101")
    assert (proc.returncode, proc.err) == (64, "error: missing argument <file>\n")
    assert "vpsadminos-convert [global options] vz6 export [command options] <ctid> <file>" \
        in proc.out
    proc = run(node, "vpsadminos-convert vz6 export --netif-type veth 101 x.tar")
    assert (proc.returncode, proc.err) == (64, "error: invalid argument: --netif-type veth\n")
    proc = run(node, "vpsadminos-convert vz6 migrate stage --bogus 101 os1")
    assert (proc.returncode, proc.err) == (64, "error: invalid option: --bogus\n")
    # Options precede the arguments: after <ctid> everything is an argument.
    proc = run(node, "vpsadminos-convert vz6 export 101 --zfs out.tar")
    assert proc.returncode == 0 and (node / "root/--zfs").is_file(), proc.err
    assert "--route-via=arg" in ok(node, "vpsadminos-convert help vz6 migrate stage")


def test_export_report_config_and_archive_layout(node):
    proc = run(node, "vpsadminos-convert vz6 export 101 /root/ct-101.tar")
    assert proc.returncode == 0, proc.err
    assert proc.err == "Unknown line 'what is this'\n"
    assert proc.out == ("Parsing config\nExporting metadata\nExporting configs\nExporting rootfs\n"
                        "> packing rootfs\nExport done\n\n" + REPORT_101)
    archive = node / "root/ct-101.tar"
    raw = archive.read_bytes()
    assert raw[-1024:] != b"\0" * 1024 or len(raw) % 10240, "no end-of-archive blocks (upstream)"
    files = members(archive)
    assert list(files) == ["metadata.yml", "config", "config/user.yml", "config/group.yml",
                           "config/container.yml", "rootfs", "rootfs/base.tar.gz"]
    meta = yaml.safe_load(files["metadata.yml"])
    assert {k: v for k, v in meta.items() if k != "exported_at"} == {
        "type": "full", "format": "tar", "user": "default", "group": "default",
        "container": "101", "datasets": []}
    assert yaml.safe_load(files["config/user.yml"]) == {
        "ugid": 1000, "uid_map": ["0:666000:65536"], "gid_map": ["0:666000:65536"]}
    assert yaml.safe_load(files["config/group.yml"]) == {"path": "default", "cgparams": []}
    ct = yaml.safe_load(files["config/container.yml"])
    assert ct == {
        "user": "default", "group": "default", "distribution": "debian", "version": "9.0",
        "arch": ct["arch"],
        "net_interfaces": [{"type": "bridge", "name": "eth0", "hwaddr": None, "link": "lxcbr0",
                            "ip_addresses": {"v4": ["1.2.3.4/32"], "v6": ["2001:db8::1/128"]}}],
        "cgparams": [
            {"subsystem": "memory", "name": "memory.memsw.limit_in_bytes", "value": [4294967296]},
            {"subsystem": "memory", "name": "memory.limit_in_bytes", "value": [4294967296]}],
        "devices": [], "prlimits": [], "mounts": [], "autostart": {"priority": 10, "delay": 5},
        "hostname": "vps", "dns_resolvers": ["8.8.8.8", "2001:4860:4860::8888"],
        "nesting": False}
    with tarfile.open(fileobj=io.BytesIO(files["rootfs/base.tar.gz"]), mode="r:gz") as rootfs:
        assert rootfs.extractfile("./etc/hostname").read() == b"ct101\n"


def test_routed_netif_via_and_route_via_errors(node):
    base = "vpsadminos-convert vz6 export --netif-type routed"
    ok(node, f"{base} --route-via 10.100.10.0/30 --route-via 2001:db8:ffff::/126 101 r.tar")
    netif = yaml.safe_load(members(node / "root/r.tar")["config/container.yml"])["net_interfaces"][0]
    assert netif == {
        "type": "routed", "name": "eth0", "hwaddr": None,
        "ip_addresses": {"v4": ["1.2.3.4/32"], "v6": ["2001:db8::1/128"]},
        "via": {"v4": {"network": "10.100.10.0/30", "host": "10.100.10.1/30", "ct": "10.100.10.2/30"},
                "v6": {"network": "2001:db8:ffff::/126", "host": "2001:db8:ffff::1/126",
                       "ct": "2001:db8:ffff::2/126"}},
        "routes": {"v4": ["1.2.3.4/32"], "v6": ["2001:db8::1/128"]}}
    for options, message in (
            ("--route-via 10.100.10.0/30", "provide --route-via for IPv6"),
            ("--route-via 10.100.10.0/31", "cannot route via IPv4 network smaller than /30"),
            ("--route-via 2001:db8::/127", "cannot route via IPv6 network smaller than /126"),
            ("--route-via 10.100.10.0/30 --route-via 10.100.20.0/30",
             "network for IPv4 has already been set to route via 10.100.10.0/30"),
            ("--route-via 10.100.10.0/30 --route-host-addr 10.100.10.1",
             "provide both host and container address"),
            ("--route-via 10.100.10.0/30 --route-host-addr 10.100.10.1 --route-ct-addr 10.100.10.1",
             "use different addresses for host and container"),
            ("--route-via 10.100.10.0/30 --route-host-addr 10.9.9.9 --route-ct-addr 10.100.10.2",
             "network 10.100.10.0/30 does not include host address 10.9.9.9/32")):
        proc = run(node, f"{base} {options} 101 r.tar")
        assert (proc.returncode, proc.err.splitlines()[-1]) == (64, f"error: {message}"), options
    # migrate stage does not rescue the missing network (upstream quirk): exit 1.
    proc = run(node, "vpsadminos-convert vz6 migrate stage --netif-type routed 101 os1")
    assert (proc.returncode, proc.err.splitlines()[-1]) == (
        1, "error: VpsAdminOS::Converter::RouteViaMissing")


def test_convert_ct_errors_in_order(node):
    def error(command):
        proc = run(node, f"vpsadminos-convert {command}")
        return proc.returncode, proc.out, proc.err.splitlines()[-1]

    assert error("vz6 export --zfs 101 x.tar") == (
        1, "", "error: unsupported configuration, only '--zfs-subdir private' is implemented")
    assert error("vz6 export 999 x.tar") == (1, "", "error: container not found")
    assert error("vz6 export --zfs --zfs-subdir private --zfs-dataset vz/private/102 102 x.tar") \
        == (1, "Parsing config\n", "error: container uses ploop, but ZFS was enabled")
    for line, message in (
            ('ONBOOT="maybe"', 'unable to parse config: unexpected boolean value ONBOOT="maybe"'),
            ('PHYSPAGES="0:12X"', "unable to parse config: unsupported suffix 'X'"),
            ('FEATURES="nfs:maybe"', "unable to parse config: unknown mode 'nfs:maybe'"),
            ('IP_ADDRESS="1.2.3.400"', "Invalid IP 1.2.3.400"),
            ('OSTEMPLATE=""', None)):
        conf_path = node / "etc/vz/conf/101.conf"
        conf_path.write_text(CONF_101 + line + "\n")
        if message:
            assert error("vz6 export 101 x.tar") == (1, "Parsing config\n", f"error: {message}")
    (node / "etc/vz/conf/101.conf").write_text(CONF_101.replace('OSTEMPLATE="debian-9.0-amd64-vpsfree"\n', ""))
    assert error("vz6 export 101 x.tar")[2] == "error: config missing OSTEMPLATE"
    (node / "etc/vz/conf/101.conf").write_text(CONF_101.replace('VE_LAYOUT="simfs"\n', ""))
    assert error("vz6 export 101 x.tar")[2] == "error: unable to determine VE_LAYOUT"
    (node / "etc/vz/conf/101.conf").write_text(CONF_101 + 'DEVICES="x:1:2:rw"\n')
    assert error("vz6 export 101 x.tar")[2] == "error: unsupported device type 'x'"


def test_export_zfs_streams_snapshots_and_consistency(node):
    out = ok(node, "vpsadminos-convert vz6 export --zfs --zfs-dataset vz/private/104 "
                   "--zfs-subdir private 104 /root/ct-104.tar")
    assert out.split("Export done")[0] == (
        "Parsing config\nExporting metadata\nExporting configs\nExporting rootfs\n"
        "> base stream\n> stopping container\n> incremental stream\n> restarting container\n")
    files = members(node / "root/ct-104.tar")
    assert list(files) == [
        "metadata.yml", "config", "config/user.yml", "config/group.yml", "config/container.yml",
        "rootfs", "rootfs/sub", "rootfs/base.dat.gz", "rootfs/sub/base.dat.gz",
        "rootfs/incremental.dat.gz", "rootfs/sub/incremental.dat.gz", "snapshots.yml"]
    meta = yaml.safe_load(files["metadata.yml"])
    assert (meta["format"], meta["datasets"]) == ("zfs", ["sub"])
    snaps = yaml.safe_load(files["snapshots.yml"])
    assert [s.split("-")[1] for s in snaps] == ["incr", "base"]
    assert gzip.decompress(files["rootfs/sub/base.dat.gz"])[:4] == b"LAB-"
    assert (node / "var/lib/lab/vz/104").read_text() == "running\n"
    listed = ok(node, "zfs list -H -t snapshot -o name -r vz/private/104")
    assert "osctl-" not in listed and "backup-1" in listed
    # Stopped (or --no-consistent): the base stream only; --compression off: raw .dat.
    out = ok(node, "vpsadminos-convert vz6 export --no-consistent -c off --zfs --zfs-dataset "
                   "vz/private/104 --zfs-subdir private 104 /root/b.tar")
    assert "> stopping container" not in out
    files = members(node / "root/b.tar")
    assert "rootfs/base.dat" in files and not any("incremental" in f for f in files)


def test_export_ploop_mounts_stops_and_restarts(node):
    out = ok(node, "vpsadminos-convert vz6 export 102 /root/ct-102.tar")
    assert "> stopping container\n> packing rootfs\n> restarting container\nExport done" in out
    files = members(node / "root/ct-102.tar")
    with tarfile.open(fileobj=io.BytesIO(files["rootfs/base.tar.gz"]), mode="r:gz") as rootfs:
        assert rootfs.extractfile("./etc/hostname").read() == b"ct102\n"
    assert ok(node, "vzctl status 102") == "CTID 102 exist mounted running\n"


def test_state_machine_and_simfs_migration(node):
    cv = "vpsadminos-convert vz6 migrate"
    proc = run(node, f"{cv} sync 101")
    assert (proc.returncode, proc.err) == (
        1, "error: No such file or directory @ rb_sysopen - /root/.vpsadminos-converter/101.state\n")
    out = ok(node, f"{cv} stage -p 2222 101 os1")
    assert out == "Parsing config\n" + REPORT_101 + (
        "\nMigration stage successful\n"
        "Continue with vz6 migrate sync, or abort with vz6 migrate cancel\n")
    assert ssh_log(node) == ["osctl-ct-receive@os1 receive skel"]
    skel = members(node / "tmp/skel.tar")
    assert list(skel) == ["metadata.yml", "config", "config/user.yml", "config/group.yml",
                          "config/container.yml"]
    meta = yaml.safe_load(skel["metadata.yml"])
    assert (meta["type"], meta["format"], meta["datasets"]) == ("skel", "", [])
    state_dir = node / "root/.vpsadminos-converter"
    assert state_dir.stat().st_mode & 0o777 == 0o700
    state = converter_state(state_dir / "101.state")
    assert (state["step"], state["opts"]["port"], state["opts"]["dst"]) == ("stage", 2222, "os1")
    assert sorted(p.name for p in state_dir.iterdir()) == ["101.state"]

    proc = run(node, f"{cv} stage -p 2222 101 os1")
    assert (proc.returncode, proc.err.splitlines()[-1]) == (
        1, "error: migration for CT 101 has already been started")
    for step in ("transfer", "cleanup"):
        proc = run(node, f"{cv} {step} 101")
        assert (proc.returncode, proc.err) == (1, "error: invalid migration sequence\n"), step

    assert ok(node, f"{cv} sync 101") == "> Synchronizing /\n"
    assert (node / "dst/101/etc/hostname").read_text() == "ct101\n"
    assert ssh_log(node)[1] == "root@os1 osctl -j ct show 101"
    proc = run(node, f"{cv} sync 101")
    assert (proc.returncode, proc.err) == (1, "error: invalid migration sequence\n")

    (node / "vz/private/101/etc/motd").write_text("later\n")
    ok(node, "vzctl start 101")
    assert ok(node, f"{cv} transfer 101") == "> Synchronizing /\n> Starting on the target node\n"
    assert ssh_log(node)[-1] == "osctl-ct-receive@os1 receive transfer 101 start"
    assert (node / "dst/101/etc/motd").read_text() == "later\n"
    assert ok(node, "vzctl status 101") == "CTID 101 exist unmounted down\n"
    proc = run(node, f"{cv} cancel 101")
    assert (proc.returncode, proc.err) == (1, "error: invalid migration sequence\n")
    assert ok(node, f"{cv} cleanup 101") == ""
    assert not (state_dir / "101.state").exists()
    assert (node / "etc/vz/conf/101.conf").exists(), "no --delete: the container stays"


def test_stage_and_cancel_failures(node):
    cv = "vpsadminos-convert vz6 migrate"
    (node / "etc/fake-ssh-rc").write_text("1\n")
    proc = run(node, f"{cv} stage 101 os1")
    assert (proc.returncode, proc.err.splitlines()[-1]) == (1, "error: stage failed")
    assert not (node / "root/.vpsadminos-converter/101.state").exists()
    (node / "etc/fake-ssh-rc").write_text("0\n")
    ok(node, f"{cv} stage 101 os1")
    (node / "etc/fake-ssh-rc").write_text("1\n")
    proc = run(node, f"{cv} cancel 101")
    assert (proc.returncode, proc.err) == (1, "error: cancel failed\n")
    assert ok(node, f"{cv} cancel -f 101") == ""
    assert ssh_log(node)[-1] == "osctl-ct-receive@os1 receive cancel 101"
    assert not (node / "root/.vpsadminos-converter/101.state").exists()
    # now: the prompt, anything but y cancels.
    (node / "etc/fake-ssh-rc").write_text("0\n")
    proc = run(node, f"{cv} now 101 os1", stdin=b"n\n")
    assert proc.returncode == 0, proc.err
    assert proc.out.startswith("* Staging migration\nParsing config\n")
    assert proc.out.endswith("Do you wish to continue? [y/N]: * Cancelling migration\n")


def test_zfs_migration_sends_all_snapshots_and_cleans_up(node):
    cv = "vpsadminos-convert vz6 migrate"
    ok(node, f"{cv} stage --zfs --zfs-dataset vz/private/104 --zfs-subdir private 104 os1")
    out = ok(node, f"{cv} sync 104")
    assert out == "> Syncing /\n> Syncing sub\n"
    state = converter_state(node / "root/.vpsadminos-converter/104.state")
    (base,) = state["snapshots"]
    assert state["step"] == "sync" and base.startswith("converter-migrate-base-")
    assert ssh_log(node)[1:] == [
        "osctl-ct-receive@os1 receive base 104 /",
        f"osctl-ct-receive@os1 receive incremental 104 / {base}",
        "osctl-ct-receive@os1 receive base 104 sub",
        f"osctl-ct-receive@os1 receive incremental 104 sub {base}"]
    assert ok(node, "zfs list -H -t snapshot -o name -r tank/ct/104").split() == [
        "tank/ct/104@backup-1", f"tank/ct/104@{base}",
        "tank/ct/104/sub@backup-1", f"tank/ct/104/sub@{base}"]
    out = ok(node, f"{cv} transfer 104")
    assert out == "> Syncing /\n> Syncing sub\n> Starting on the target node\n"
    incr = converter_state(node / "root/.vpsadminos-converter/104.state")["snapshots"][1]
    assert ssh_log(node)[-3:] == [f"osctl-ct-receive@os1 receive incremental 104 / {incr}",
                                  f"osctl-ct-receive@os1 receive incremental 104 sub {incr}",
                                  "osctl-ct-receive@os1 receive transfer 104 start"]
    assert (node / "tank/ct/104/sub/data").read_text() == "new\n"
    ok(node, f"{cv} cleanup --delete 104")
    assert ok(node, "zfs list -H -o name -r vz").split() == ["vz", "vz/private"]
    assert not (node / "etc/vz/conf/104.conf").exists()


def test_zfs_cancel_keeps_local_snapshots(node):
    cv = "vpsadminos-convert vz6 migrate"
    # --vpsadmin means routed veth: the era wants its interconnecting network.
    ok(node, f"{cv} stage --vpsadmin --route-via 10.100.10.0/30 104 os1")
    ok(node, f"{cv} sync 104")
    ok(node, f"{cv} cancel 104")
    assert "converter-migrate-base-" in ok(node, "zfs list -H -t snapshot -o name -r vz/private/104")


def test_todays_converter_has_no_route_via_and_a_broken_zfs_migrator(node):
    """The "2024" profile: gem 24.05.0 without --route-via (routed veth needs no network now),
    its skel as before, and the ZFS migrator failing on the removed migrate_ssh_cmd after it
    has recorded the sync (so only cancel gets out of it)."""
    nodes.write_file(node / "etc/lab/converter-profile", "2024\n")
    cv = "vpsadminos-convert vz6 migrate"
    assert ok(node, "vpsadminos-convert --version") == "vpsadminos-convert version 24.05.0\n"
    proc = run(node, "vpsadminos-convert vz6 export --netif-type routed --route-via 10.100.10.0/30 101 r.tar")
    assert (proc.returncode, proc.err) == (64, "error: invalid option: --route-via\n")
    ok(node, "vpsadminos-convert vz6 export --netif-type routed 101 r.tar")
    netif = yaml.safe_load(members(node / "root/r.tar")["config/container.yml"])["net_interfaces"][0]
    assert "via" not in netif and netif["routes"]["v4"] == ["1.2.3.4/32"]
    ok(node, f"{cv} stage --zfs --zfs-dataset vz/private/104 --zfs-subdir private --netif-type routed 104 os1")
    proc = run(node, f"{cv} sync 104")
    assert (proc.returncode, proc.err) == (1, "error: undefined method `migrate_ssh_cmd' for an instance of "
                                              "VpsAdminOS::Converter::Vz6::Migrator::Zfs\n")
    state = converter_state(node / "root/.vpsadminos-converter/104.state")
    assert state["step"] == "sync" and ssh_log(node)[1:] == []
    assert (run(node, f"{cv} sync 104").err, run(node, f"{cv} transfer 104").returncode) == (
        "error: invalid migration sequence\n", 1)
