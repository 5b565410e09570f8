"""The lab's OpenVZ node (vz1) over real SSH: vzctl/vzlist for every layout and state, ploop
mounting, the running containers' writes and their end at `vzctl stop`, the Ruby upgrade and
the converter gem, and the container configs as the converter parses them (research
vpsadminos.md §2, §6.1)."""

from __future__ import annotations

import ipaddress
import os
import re
import time

import pytest

from lab.core.topology import host
from lab.openvz import runtime, world
from lab.openvz.world import CONTAINERS
from tests.helpers import new_lab

pytestmark = pytest.mark.lab

VZ1 = host("vz1").address
GEM_INSTALL = "gem install --source https://rubygems.vpsfree.cz --prerelease vpsadminos-converter libosctl"
VPSFREE_REPO = ("[vpsfree]\nname=vpsFree.cz package repository\nbaseurl=http://repo.vpsfree.cz/stable/\n"
                "enabled=1\ngpgcheck=0\n")
# Seed 002's supported distributions (OSTEMPLATE's first two fields).
SUPPORTED = {("alpine", "3.6"), ("alpine", "3.7"), ("centos", "7"), ("debian", "8.0"),
             ("debian", "9.0"), ("fedora", "27"), ("fedora", "28"), ("ubuntu", "16.04"),
             ("ubuntu", "18.04")}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):

    lab = new_lab(tmp_path_factory.mktemp("lab"))
    lab.info = lab.seed(world="openvz")
    lab.start()
    yield lab
    lab.destroy()


@pytest.fixture(scope="module")
def vz(lab):
    """A NodeHook on the `openvz_ssh` connection (exported from lab.env())."""
    from hooks.node import NodeHook

    with pytest.MonkeyPatch.context() as mp:
        for name, value in lab.env().items():
            mp.setenv(name, value)
        hook = NodeHook(ssh_conn_id="openvz_ssh")
        yield hook
        hook.close()


def sh(vz, command: str, node: str = "vz1"):
    return vz.run(host(node).address, command, check=False)


def tree(lab, ctid: int):
    """The host path of a container's files."""
    return lab.node_root("vz1") / lab.info["containers"][ctid]["tree"].lstrip("/")


def counter(lab, ctid: int) -> str | None:
    try:
        return (tree(lab, ctid) / runtime.COUNTER).read_text()
    except FileNotFoundError:
        return None


def test_seed_reports_every_container(lab):
    made = lab.info["containers"]
    assert sorted(made) == sorted(CONTAINERS) == list(range(101, 109))
    for ctid, ct in made.items():
        assert 300 <= ct["files"] <= 1000 and 2 << 20 <= ct["bytes"] <= 16 << 20, (ctid, ct)
        assert ct["refusal"] == CONTAINERS[ctid].refusal
    assert {c for c, ct in CONTAINERS.items() if ct.refusal} == {106, 107, 108}


def test_status_and_vzlist_for_every_layout_and_state(vz):
    for ctid, ct in CONTAINERS.items():
        words = "mounted running" if ct.state == "running" else "unmounted down"
        assert sh(vz, f"vzctl status {ctid}").stdout == f"CTID {ctid} exist {words}\n"
    assert sh(vz, "vzctl status 999").stdout == "CTID 999 deleted unmounted down\n"
    listed = sh(vz, "vzlist -a -H -o ctid,status,layout").stdout.split("\n")
    rows = {int(r.split()[0]): r.split()[1:] for r in listed if r.strip()}
    assert rows == {c: [ct.state, ct.ve_layout] for c, ct in CONTAINERS.items()}
    running = sh(vz, "vzlist -H -o ctid").stdout.split()
    assert sorted(map(int, running)) == sorted(c for c, ct in CONTAINERS.items() if ct.state == "running")
    unknown = sh(vz, "vzlist 999")
    assert (unknown.exit_status, unknown.stdout, unknown.stderr) == (1, "", "Container(s) not found\n")
    stopped = sh(vz, "vzlist 103 105")  # explicit ids: stopped ones are listed
    assert stopped.exit_status == 0
    assert stopped.stdout.split("\n")[0].split() == ["CTID", "NPROC", "STATUS", "IP_ADDR", "HOSTNAME"]
    assert [line.split()[:3] for line in stopped.stdout.split("\n")[1:] if line] == [
        ["103", "-", "stopped"], ["105", "-", "stopped"]]
    again = sh(vz, "vzctl start 101")
    assert (again.exit_status, again.stderr) == (32, "Container is already running\n")
    missing = sh(vz, "vzctl start 999")
    assert (missing.exit_status, missing.stderr) == (44, "Container config file does not exist\n")
    not_running = sh(vz, "vzctl stop 105")
    assert (not_running.exit_status, not_running.stderr) == (0, "Unable to stop: container is not running\n")


def test_roots_show_the_container_only_while_mounted(lab, vz):
    for ctid, ct in CONTAINERS.items():
        listing = sh(vz, f"ls -A /vz/root/{ctid}").stdout.split()
        if ct.state == "running":
            assert "etc" in listing and "usr" in listing, ctid
            family = ct.ostemplate.split("-")[0]
            release = sh(vz, f"cat /vz/root/{ctid}/etc/os-release /vz/root/{ctid}/etc/redhat-release").stdout
            assert family in release.lower(), (ctid, release)
        else:
            assert listing == [], ctid
    # ploop: the files live in the image directory; simfs and ZFS: in VE_PRIVATE
    assert sh(vz, "ls /vz/private/102/root.hdd").stdout.split() == ["DiskDescriptor.xml", "fs", "root.hds"]
    assert sh(vz, "cat /vz/private/101/etc/hostname").stdout == "ct101.vz1.lab.vpsfree.cz\n"
    assert sh(vz, "cat /vz/private/104/private/etc/hostname").stdout == "ct104.vz1.lab.vpsfree.cz\n"
    assert sh(vz, "cat /vz/private/107/etc/hostname").stdout == "ct107.vz1.lab.vpsfree.cz\n"


def test_ploop_mount_umount_and_destroy(lab, vz):
    assert "CentOS Linux 7" in sh(vz, "cat /vz/private/103/root.hdd/fs/etc/os-release").stdout
    mounted = sh(vz, "vzctl mount 103")
    assert (mounted.exit_status, mounted.stdout) == (0, "Container is mounted\n")
    assert sh(vz, "cat /vz/root/103/etc/hostname").stdout == "ct103.vz1.lab.vpsfree.cz\n"
    assert sh(vz, "tar -C /vz/root/103 -cf - ./etc/hostname | tar -tf -").stdout == "./etc/hostname\n"
    assert sh(vz, "vzctl status 103").stdout == "CTID 103 exist mounted down\n"
    assert sh(vz, "vzlist -H -o status 103").stdout.split() == ["mounted"]
    twice = sh(vz, "vzctl mount 103")
    assert (twice.exit_status, twice.stderr) == (0, "Container is already mounted\n")
    busy = sh(vz, "vzctl destroy 103")
    assert (busy.exit_status, busy.stdout) == (41, "Container is currently mounted (umount first)\n")
    running = sh(vz, "vzctl umount 102")
    assert running.exit_status == 32 and "stop it first" in running.stderr
    assert sh(vz, "vzctl destroy 102").exit_status == 32
    unmounted = sh(vz, "vzctl umount 103")
    assert (unmounted.exit_status, unmounted.stdout) == (0, "Container is unmounted\n")
    assert sh(vz, "ls -A /vz/root/103").stdout == ""
    assert not (lab.node_root("vz1") / "vz/root/103").is_symlink()
    gone = sh(vz, "vzctl umount 103")
    assert (gone.exit_status, gone.stderr) == (40, "CT is not mounted\n")
    destroyed = sh(vz, "vzctl destroy 103")
    assert destroyed.exit_status == 0
    assert destroyed.stdout == ("Destroying container private area: /vz/private/103\n"
                                "Container private area was destroyed\n")
    assert sh(vz, "vzctl status 103").stdout == "CTID 103 deleted unmounted down\n"
    assert sh(vz, "ls /etc/vz/conf/103.conf.destroyed /vz/private/103 /vz/root/103").stdout == \
        "/etc/vz/conf/103.conf.destroyed\n"
    assert sh(vz, "vzlist 103").exit_status == 1


def test_running_containers_write_until_vzctl_stop_returns(lab, vz):
    writers = [c for c, ct in CONTAINERS.items() if ct.state == "running"]
    before = {c: counter(lab, c) for c in writers}
    time.sleep(1.2)
    after = {c: counter(lab, c) for c in writers}
    for ctid in writers:  # simfs, ploop (inside the image), both ZFS layouts
        assert after[ctid] is not None and after[ctid] != before[ctid], ctid
        logs = os.listdir(tree(lab, ctid) / runtime.LOG_DIR)
        assert logs and all(re.fullmatch(r"\d+\.log", n) for n in logs), ctid
        assert (tree(lab, ctid) / runtime.LOG_DIR / logs[0]).stat().st_size == runtime.LOG_BYTES
    assert counter(lab, 105) is None, "a stopped container does not write"
    for ctid in (104, 108):
        stop = sh(vz, f"vzctl stop {ctid}")
        assert stop.exit_status == 0 and "Container was stopped" in stop.stdout
        frozen = counter(lab, ctid), sorted(os.listdir(tree(lab, ctid) / runtime.LOG_DIR))
        time.sleep(1)
        assert (counter(lab, ctid), sorted(os.listdir(tree(lab, ctid) / runtime.LOG_DIR))) == frozen, ctid
        started = sh(vz, f"vzctl start {ctid}")
        assert started.exit_status == 0 and "Container start in progress..." in started.stdout
        time.sleep(1)
        assert counter(lab, ctid) != frozen[0], f"{ctid} writes again once started"
    os1 = lab.node_root("os1")
    assert not list(os1.rglob("lab-ct")), "vpsAdminOS containers do not write"


def test_the_writes_land_in_new_inodes_and_old_logs_go(tmp_path):
    logs = tmp_path / runtime.LOG_DIR
    logs.mkdir(parents=True)
    for n in range(1, runtime.KEEP_LOGS + 5):
        (logs / f"{n}.log").write_text("old\n")
    first = runtime.write_once(tmp_path, 101)
    inode = (tmp_path / runtime.COUNTER).stat().st_ino
    held = open(tmp_path / runtime.COUNTER)  # a snapshot sharing the inode keeps the old data
    second = runtime.write_once(tmp_path, 101)
    assert (first, second) == (runtime.KEEP_LOGS + 5, runtime.KEEP_LOGS + 6)
    assert (tmp_path / runtime.COUNTER).stat().st_ino != inode
    assert held.read() == f"{first}\n"
    held.close()
    names = sorted(int(n[:-4]) for n in os.listdir(logs))
    assert len(names) == runtime.KEEP_LOGS and names[-1] == second and names[0] == second - runtime.KEEP_LOGS + 1


def test_ruby_upgrade_and_the_converter_gem(vz):
    assert sh(vz, "ruby --version").stdout == "ruby 1.8.7 (2013-06-27 patchlevel 374) [x86_64-linux]\n"
    assert sh(vz, "cat /etc/redhat-release").stdout == "Scientific Linux release 6.9 (Carbon)\n"
    assert sh(vz, "command -v vpsadminos-convert").exit_status == 1
    refused = sh(vz, GEM_INSTALL)
    assert refused.exit_status == 1
    assert refused.stderr == ("ERROR:  Error installing vpsadminos-converter:\n"
                              "\tvpsadminos-converter requires Ruby version >= 2.0.0.\n"
                              "ERROR:  Error installing libosctl:\n"
                              "\tlibosctl requires Ruby version >= 2.0.0.\n")
    base = sh(vz, "yum -y install ruby")  # without vpsFree.cz's repository: nothing newer
    assert base.exit_status == 0
    assert "Package ruby-1.8.7.374-5.el6.x86_64 already installed and latest version\nNothing to do" in base.stdout
    vz.run(VZ1, "cat > /etc/yum.repos.d/vpsfree.repo", stdin=VPSFREE_REPO)
    upgraded = sh(vz, "yum -y install ruby")
    assert upgraded.exit_status == 0 and "Updated:\n  ruby.x86_64 0:2.4.4-1.el6" in upgraded.stdout
    assert sh(vz, "rpm -q ruby").stdout == "ruby-2.4.4-1.el6.x86_64\n"
    assert sh(vz, "ruby --version").stdout.startswith("ruby 2.4.4p296 ")
    installed = sh(vz, GEM_INSTALL)
    assert installed.exit_status == 0, installed.stderr
    assert "Successfully installed vpsadminos-converter-19.07.0\n" in installed.stdout
    assert "Successfully installed libosctl-19.07.0\n" in installed.stdout
    assert installed.stdout.endswith("2 gems installed\n")
    assert sh(vz, "readlink /usr/local/bin/vpsadminos-convert").stdout == \
        "/usr/local/lib/airlift-lab/vpsadminos_convert.py\n"
    again = sh(vz, GEM_INSTALL)
    assert again.exit_status == 0 and again.stdout.endswith("2 gems installed\n")
    assert sh(vz, "gem list").stdout == ("\n*** LOCAL GEMS ***\n\nlibosctl (19.07.0)\n"
                                         "vpsadminos-converter (19.07.0)\n")


def _parse_like_the_converter(text: str) -> tuple[dict, list[str]]:
    """vpsadminos-converter's vz6/config.rb: comments and blank lines skipped, KEY="value" or
    KEY=value, anything else an unknown line; the last value of a key wins."""
    items, unknown = {}, []
    for line in text.splitlines():
        if re.match(r"^\s*#", line) or not line.strip():
            continue
        m = re.match(r'^([A-Z_]+)="([^"]+)"', line) or re.match(r"^([A-Z_]+)=([^\s]+)", line)
        if m:
            items[m.group(1)] = m.group(2)
        else:
            unknown.append(line)
    return items, unknown


def test_configs_parse_as_the_converter_parses_them(vz):
    for ctid, ct in CONTAINERS.items():
        if ctid == 103:  # destroyed above
            continue
        items, unknown = _parse_like_the_converter(sh(vz, f"cat /etc/vz/conf/{ctid}.conf").stdout)
        assert unknown == [], (ctid, unknown)
        assert items["VE_LAYOUT"] == ct.ve_layout and items["VE_ROOT"] == "/vz/root/$VEID"
        private = items["VE_PRIVATE"].replace("$VEID", str(ctid))
        assert private == (f"/vz/private/{ctid}/private" if ct.layout == "zfs" and ctid != 107
                           else f"/vz/private/{ctid}")
        assert items["ONBOOT"] in ("yes", "no")
        for key in ("PHYSPAGES", "SWAPPAGES"):
            barrier, limit = items[key].split(":")
            assert barrier == "0" and int(limit) > 0
        assert int(items["PHYSPAGES"].split(":")[1]) * 4096 in (2 << 30, 4 << 30)
        for key in ("CPUUNITS", "CPUS", "CPULIMIT"):
            assert items[key].isdigit()
        for key in ("KMEMSIZE", "PRIVVMPAGES", "NUMPROC", "DCACHESIZE", "DISKSPACE", "DISKINODES",
                    "QUOTATIME", "NETFILTER", "ORIGIN_SAMPLE", "HOSTNAME", "CAPABILITY", "FEATURES"):
            assert key in items, (ctid, key)
        for device in items["DEVICES"].split():
            assert re.fullmatch(r"[bc]:\d+:\d+:(r|w|rw|none)q?", device)
        for flag in items["CAPABILITY"].split() + items["FEATURES"].split():
            assert re.fullmatch(r"[A-Za-z_]+:(on|off)", flag)
        for server in items["NAMESERVER"].split():
            ipaddress.ip_address(server)
        distribution, version = items["OSTEMPLATE"].split("-")[:2]
        assert ((distribution, version) in SUPPORTED) == (ctid != 106), ctid
        if ct.veth:
            assert "IP_ADDRESS" not in items and "host_ifname=veth108.0" in items["NETIF"]
        else:
            addresses = [ipaddress.ip_address(a) for a in items["IP_ADDRESS"].split()]
            assert sorted(a.version for a in addresses) == [4, 6]


def test_node_roles_and_zfs(lab, vz):
    assert sh(vz, "command -v osctl").exit_status == 1, "no osctl on an OpenVZ node"
    assert sh(vz, "command -v vzctl", node="os1").exit_status == 1, "no vzctl on vpsAdminOS"
    assert sh(vz, "command -v vzlist", node="os2").exit_status == 1
    listed = sh(vz, "zfs list -H -t all -o name -r vz").stdout.split()
    assert {"vz", "vz/private", "vz/private/104", "vz/private/104/data", "vz/private/105",
            "vz/private/107"} <= set(listed)
    for dataset in ("vz/private/104", "vz/private/104/data"):
        assert [n for n in listed if n.startswith(dataset + "@")] == [
            f"{dataset}@{s}" for s in world.BACKUP_SNAPSHOTS]
    assert not [n for n in listed if n.startswith("vz/private/105@")]
    assert sh(vz, "zfs get -H -o value mountpoint vz/private").stdout == "/vz/private\n"
    # the snapshots differ: files added, changed and removed between them (each received
    # anew from its full stream, and listed)
    trees, motd = [], []
    for i, snap in enumerate(world.BACKUP_SNAPSHOTS):
        got = sh(vz, f"zfs send vz/private/104@{snap} | zfs receive vz/check{i}")
        assert got.exit_status == 0, got.stderr
        trees.append(set(sh(vz, f"cd /vz/check{i} && find . -type f").stdout.split()))
        motd.append(sh(vz, f"cat /vz/check{i}/private/etc/motd").stdout)
    assert trees[1] - trees[0] and trees[0] - trees[1], "added and removed between snapshots"
    assert len(set(motd)) == 3, "changed between snapshots"


def test_seed_limits_and_sizes(tmp_path):
    made = world.seed_openvz_node(tmp_path, containers=[105], sizes={105: 24 << 20})
    assert list(made) == [105]
    assert 24 << 20 <= made[105]["bytes"] < 25 << 20
    assert sorted(os.listdir(tmp_path / "etc/vz/conf")) == ["105.conf"]
    assert sorted(os.listdir(tmp_path / "vz/private")) == ["105"]
