"""The OpenVZ world: an OpenVZ Legacy node (vz1) with containers in every layout, a second one
(vz2, the fleet's: two containers), and the two vpsAdminOS nodes (os1, os2) they are to move to.

`seed(cfg, containers=None, sizes=None, profile="2019")` writes vz1's files on the freshly built node
(Lab.seed(world="openvz") calls it): /etc/vz/vz.conf, a config per container as vzctl 4
writes them, the ZFS pool `vz` (dataset vz/private mounted at /vz/private), each container's
root filesystem where its layout keeps it (lab/core/tools/vzctl.py: a simfs VE_PRIVATE, the tree
in a ploop image, a ZFS dataset's private/), their states, a too-old Ruby and no converter.
CONTAINERS is the table of what it seeds (tests and DAGs read it). `containers` limits which
containers are written; `sizes` {ctid: bytes} makes a rootfs about that big (random data in
var/lib/lab-data, written before the ZFS snapshots, so the oldest snapshot carries it).

Root filesystems are small but real-looking Linux trees generated from a seeded random
generator (same ctid, same tree): os-release and friends of the distribution, users, "binaries",
libraries with their symlinks, documentation, files owned by non-root users, a set-uid program,
a 0640 shadow, a hard link, empty directories; about 4 MiB and 400 files each.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import random
from dataclasses import dataclass
from pathlib import Path

from lab.core import nodes
from lab.core.config import LabConfig
from lab.core.nodes import write_file
from lab.core.tools import vzctl
from lab.core.tools.zfs import Zfs
from lab.core.topology import HOSTS

OPENVZ_NODE = "vz1"
POOL = "vz"
PRIVATE_DATASET = "vz/private"


@dataclass(frozen=True)
class Container:
    ctid: int
    layout: str                 # simfs | ploop | zfs (simfs on a ZFS dataset of its own)
    state: str                  # running | stopped (a stopped ploop container is not mounted)
    ostemplate: str
    refusal: str | None = None  # why the migration must refuse it, None: it can be migrated
    rootfs_in_private: bool = True  # zfs: the rootfs in the dataset's private/ (vpsAdmin's)
    subdatasets: tuple[str, ...] = ()
    snapshots: tuple[str, ...] = ()
    veth: bool = False          # NETIF veth instead of venet IP_ADDRESS
    node: str = "vz1"           # the OpenVZ node it is on

    @property
    def distribution(self) -> str:
        return self.ostemplate

    @property
    def dataset(self) -> str | None:
        return f"{PRIVATE_DATASET}/{self.ctid}" if self.layout == "zfs" else None

    @property
    def ve_private(self) -> str:
        """VE_PRIVATE as the config writes it ($VEID)."""
        if self.layout == "zfs" and self.rootfs_in_private:
            return "/vz/private/$VEID/private"
        return "/vz/private/$VEID"

    @property
    def private(self) -> str:
        return self.ve_private.replace("$VEID", str(self.ctid))

    @property
    def ve_layout(self) -> str:
        return "ploop" if self.layout == "ploop" else "simfs"

    @property
    def hostname(self) -> str:
        return f"ct{self.ctid}.{self.node}.lab.vpsfree.cz"

    @property
    def ipv4(self) -> str:
        return f"37.205.9.{self.ctid}"

    @property
    def ipv6(self) -> str:
        return f"2a03:3b40:fe:{self.ctid}::1"


BACKUP_SNAPSHOTS = ("backup-2018-07-01T01:00:00", "backup-2018-07-02T01:00:00",
                    "backup-2018-07-03T01:00:00")

# The OpenVZ node's containers. Supported distributions: seed 002's list (Alpine 3.6/3.7, Arch,
# CentOS 7.5, Debian 8/9, Fedora 27/28, Gentoo, NixOS, Ubuntu 16.04/18.04).
CONTAINERS: dict[int, Container] = {c.ctid: c for c in (
    Container(101, "simfs", "running", "debian-9.0-x86_64"),
    Container(102, "ploop", "running", "ubuntu-16.04-x86_64"),
    Container(103, "ploop", "stopped", "centos-7-x86_64"),
    Container(104, "zfs", "running", "debian-9.0-x86_64", subdatasets=("data",),
              snapshots=BACKUP_SNAPSHOTS),
    Container(105, "zfs", "stopped", "debian-8.0-x86_64"),
    Container(106, "simfs", "running", "centos-6-x86_64",
              refusal="unsupported distribution: CentOS 6 is not among vpsAdminOS's distributions"),
    Container(107, "zfs", "running", "debian-9.0-x86_64", rootfs_in_private=False,
              refusal="unsupported ZFS layout: the rootfs is in the dataset's root, not in private/"),
    Container(108, "simfs", "running", "debian-9.0-x86_64", veth=True,
              refusal="non-venet networking: a veth NETIF, the converter handles venet only"),
)}

# The second OpenVZ node's (the fleet's): a running simfs and a running ZFS container.
VZ2_CONTAINERS: dict[int, Container] = {c.ctid: c for c in (
    Container(201, "simfs", "running", "debian-9.0-x86_64", node="vz2"),
    Container(202, "zfs", "running", "ubuntu-16.04-x86_64", node="vz2"),
)}
NODE_CONTAINERS = {OPENVZ_NODE: CONTAINERS, "vz2": VZ2_CONTAINERS}

# -- node roles ------------------------------------------------------------------------------
# Simulators of the lab's node toolset whose tools a kind of node does not have: an OpenVZ node
# has no osctl (nor its receive side), a vpsAdminOS node no vzctl/vzlist.
FOREIGN_SIMULATORS = {"openvz": frozenset({"osctl.py"}), "vpsadminos": frozenset({"vzctl.py"})}


def role_tools(role: str) -> set[str]:
    """The node tools (names on the PATH) a node of `role` has."""
    foreign = FOREIGN_SIMULATORS.get(role, frozenset())
    return {name for name, program in nodes.TOOLS.items() if program.name not in foreign}


def prune_tools(node_root: Path, roles) -> list[str]:
    """Remove the links of the tools no role of the node has; returns their names."""
    keep = set().union(*(role_tools(r) for r in roles)) if roles else set(nodes.TOOLS)
    removed = []
    for name in sorted(set(nodes.TOOLS) - keep):
        link = node_root / "usr/local/sbin" / name
        if link.is_symlink():
            link.unlink()
            removed.append(name)
    return removed


# -- configs ---------------------------------------------------------------------------------
VZ_CONF = """\
## Global parameters
VIRTUOZZO=yes
LOCKDIR=/vz/lock
DUMPDIR=/vz/dump
VE0CPUUNITS=1000

## Logging parameters
LOGGING=yes
LOGFILE=/var/log/vzctl.log
LOG_LEVEL=0
VERBOSE=0

## Disk quota parameters
DISK_QUOTA=no
VZFASTBOOT=no

# Disable module loading. If set, vz initscript do not load any modules.
#MODULES_DISABLED=yes

# The name of the device whose IP address will be used as source IP for CT.
# By default automatically assigned.
#VE_ROUTE_SRC_DEV="eth0"

# Controls which interfaces to send ARP requests and modify ARP tables on.
NEIGHBOUR_DEVS=detect

## Fail if there is another machine in the network with the same IP
ERROR_ON_ARPFAIL="no"

## Template parameters
TEMPLATE=/vz/template

## Defaults for containers
VE_ROOT=/vz/root/$VEID
VE_PRIVATE=/vz/private/$VEID
CONFIGFILE="basic"
DEF_OSTEMPLATE="debian-9.0-x86_64"
VE_LAYOUT=simfs

## Load vzwdog module
VZWDOG="no"

## IPv4 iptables kernel modules to be enabled in CTs by default
IPTABLES="ipt_REJECT ipt_tos ipt_limit ipt_multiport iptable_filter iptable_mangle ipt_TCPMSS ipt_tcpmss ipt_ttl ipt_length"
## IPv4 iptables kernel modules to be loaded by init.d/vz script
IPTABLES_MODULES="$IPTABLES"

## Enable IPv6
IPV6="yes"

## IPv6 ip6tables kernel modules
IP6TABLES="ip6_tables ip6table_filter ip6table_mangle ip6t_REJECT"
"""

CONF_HEADER = """\
#  Copyright (C) 2000-2011, Parallels, Inc. All rights reserved.
#
#  This program is free software; you can redistribute it and/or modify
#  it under the terms of the GNU General Public License as published by
#  the Free Software Foundation; either version 2 of the License, or
#  (at your option) any later version.
#
#  This program is distributed in the hope that it will be useful,
#  but WITHOUT ANY WARRANTY; without even the implied warranty of
#  MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
#  GNU General Public License for more details.
#
#  You should have received a copy of the GNU General Public License
#  along with this program; if not, write to the Free Software
#  Foundation, Inc., 59 Temple Place, Suite 330, Boston, MA  02111-1307  USA
#
"""

# The beancounters of seed 003's example (what vzctl saved on vpsFree.cz's nodes).
UBC = (
    ("KMEMSIZE", "105377561:115915317"), ("LOCKEDPAGES", "5145"),
    ("PRIVVMPAGES", "1048576:1585152"), ("SHMPAGES", "139818"), ("NUMPROC", "2572"),
    ("VMGUARPAGES", "233030:unlimited"), ("OOMGUARPAGES", "unlimited"),
    ("NUMTCPSOCK", "2572"), ("NUMFLOCK", "1000:1100"), ("NUMPTY", "257"),
    ("NUMSIGINFO", "1024"), ("TCPSNDBUF", "24590942:35125854"),
    ("TCPRCVBUF", "24590942:35125854"), ("OTHERSOCKBUF", "12295471:22830383"),
    ("DGRAMRCVBUF", "12295471"), ("NUMOTHERSOCK", "2572"), ("NUMFILE", "41152"),
    ("DCACHESIZE", "23013157:23703552"), ("NUMIPTENT", "62"),
)


def ct_conf(ct: Container) -> str:
    """/etc/vz/conf/<ctid>.conf as vzctl 4 writes it: the sample's header and sections, then
    what `vzctl set --save` appended (addresses, hostname, resolvers, devices, ...)."""
    ram = 1048576 if ct.ctid % 2 == 0 else 524288  # 4 GiB or 2 GiB in 4 KiB pages
    lines = [CONF_HEADER, 'ONBOOT="yes"', "", "# UBC parameters (in form of barrier:limit)"]
    lines += [f'{name}="{value}"' for name, value in UBC]
    lines += ["", "# RAM", f'PHYSPAGES="0:{ram}"', "", "# Swap", f'SWAPPAGES="0:{ram // 4}"', "",
              "# Disk quota parameters (in form of softlimit:hardlimit)",
              'DISKSPACE="2097152:2306867"', 'DISKINODES="131072:144179"', 'QUOTATIME="0"', "",
              "# CPU fair scheduler parameter", 'CPUUNITS="32320"', 'CPULIMIT="800"', 'CPUS="8"', "",
              'NETFILTER="stateless"', 'VE_ROOT="/vz/root/$VEID"', f'VE_PRIVATE="{ct.ve_private}"',
              f'VE_LAYOUT="{ct.ve_layout}"', f'OSTEMPLATE="{ct.ostemplate}"',
              'ORIGIN_SAMPLE="basic"', f'HOSTNAME="{ct.hostname}"']
    if ct.veth:
        lines.append(f'NETIF="ifname=eth0,mac=00:18:51:5A:{ct.ctid // 100:02X}:{ct.ctid % 100:02X},'
                     f'host_ifname=veth{ct.ctid}.0,host_mac=00:18:51:A5:{ct.ctid // 100:02X}:'
                     f'{ct.ctid % 100:02X}"')
    else:
        lines.append(f'IP_ADDRESS="{ct.ipv4} {ct.ipv6}"')
    lines += ['NAMESERVER="77.93.223.251 37.205.9.100"', 'DEVICES="c:10:200:rw c:10:229:rw "',
              'CAPABILITY="NET_ADMIN:on "', 'FEATURES="nfs:on ppp:off "']
    return "\n".join(lines) + "\n"


# -- root filesystems ------------------------------------------------------------------------
DISTROS = {
    "debian": {"os_release": {
        "8.0": 'PRETTY_NAME="Debian GNU/Linux 8 (jessie)"\nNAME="Debian GNU/Linux"\nVERSION_ID="8"\n'
             'VERSION="8 (jessie)"\nID=debian\nHOME_URL="http://www.debian.org/"\n'
             'SUPPORT_URL="http://www.debian.org/support"\nBUG_REPORT_URL="https://bugs.debian.org/"\n',
        "9.0": 'PRETTY_NAME="Debian GNU/Linux 9 (stretch)"\nNAME="Debian GNU/Linux"\nVERSION_ID="9"\n'
               'VERSION="9 (stretch)"\nID=debian\nHOME_URL="https://www.debian.org/"\n'
               'SUPPORT_URL="https://www.debian.org/support"\nBUG_REPORT_URL="https://bugs.debian.org/"\n'},
        "extra": {"8.0": {"etc/debian_version": "8.11\n"}, "9.0": {"etc/debian_version": "9.5\n"}},
        "web": ("www-data", 33), "shell": "dash"},
    "ubuntu": {"os_release": {
        "16.04": 'NAME="Ubuntu"\nVERSION="16.04.5 LTS (Xenial Xerus)"\nID=ubuntu\nID_LIKE=debian\n'
                 'PRETTY_NAME="Ubuntu 16.04.5 LTS"\nVERSION_ID="16.04"\nHOME_URL="http://www.ubuntu.com/"\n'
                 'SUPPORT_URL="http://help.ubuntu.com/"\nBUG_REPORT_URL="http://bugs.launchpad.net/ubuntu/"\n'
                 'VERSION_CODENAME=xenial\nUBUNTU_CODENAME=xenial\n'},
        "extra": {"16.04": {"etc/debian_version": "stretch/sid\n",
                            "etc/lsb-release": "DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=16.04\n"
                            "DISTRIB_CODENAME=xenial\nDISTRIB_DESCRIPTION=\"Ubuntu 16.04.5 LTS\"\n"}},
        "web": ("www-data", 33), "shell": "dash"},
    "centos": {"os_release": {
        "7": 'NAME="CentOS Linux"\nVERSION="7 (Core)"\nID="centos"\nID_LIKE="rhel fedora"\n'
             'VERSION_ID="7"\nPRETTY_NAME="CentOS Linux 7 (Core)"\nANSI_COLOR="0;31"\n'
             'CPE_NAME="cpe:/o:centos:centos:7"\nHOME_URL="https://www.centos.org/"\n'
             'BUG_REPORT_URL="https://bugs.centos.org/"\n\nCENTOS_MANTISBT_PROJECT="CentOS-7"\n'
             'CENTOS_MANTISBT_PROJECT_VERSION="7"\nREDHAT_SUPPORT_PRODUCT="centos"\n'
             'REDHAT_SUPPORT_PRODUCT_VERSION="7"\n\n',
        "6": None},  # CentOS 6 has no os-release, only the *-release files
        "extra": {"7": {"etc/centos-release": "CentOS Linux release 7.5.1804 (Core)\n",
                        "etc/redhat-release": "CentOS Linux release 7.5.1804 (Core)\n"},
                  "6": {"etc/centos-release": "CentOS release 6.10 (Final)\n",
                        "etc/redhat-release": "CentOS release 6.10 (Final)\n",
                        "etc/system-release": "CentOS release 6.10 (Final)\n"}},
        "web": ("apache", 48), "shell": "bash"},
}

PASSWD_DEBIAN = """\
root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
bin:x:2:2:bin:/bin:/usr/sbin/nologin
sys:x:3:3:sys:/dev:/usr/sbin/nologin
sync:x:4:65534:sync:/bin:/bin/sync
games:x:5:60:games:/usr/games:/usr/sbin/nologin
man:x:6:12:man:/var/cache/man:/usr/sbin/nologin
lp:x:7:7:lp:/var/spool/lpd:/usr/sbin/nologin
mail:x:8:8:mail:/var/mail:/usr/sbin/nologin
news:x:9:9:news:/var/spool/news:/usr/sbin/nologin
www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
backup:x:34:34:backup:/var/backups:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
sshd:x:105:65534::/run/sshd:/usr/sbin/nologin
postfix:x:106:111::/var/spool/postfix:/bin/false
admin:x:1000:1000:Admin,,,:/home/admin:/bin/bash
"""
GROUP_DEBIAN = """\
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
mail:x:8:
www-data:x:33:
shadow:x:42:
staff:x:50:
users:x:100:
postfix:x:111:
nogroup:x:65534:
admin:x:1000:
"""
PASSWD_CENTOS = """\
root:x:0:0:root:/root:/bin/bash
bin:x:1:1:bin:/bin:/sbin/nologin
daemon:x:2:2:daemon:/sbin:/sbin/nologin
adm:x:3:4:adm:/var/adm:/sbin/nologin
lp:x:4:7:lp:/var/spool/lpd:/sbin/nologin
sync:x:5:0:sync:/sbin:/bin/sync
shutdown:x:6:0:shutdown:/sbin:/sbin/shutdown
halt:x:7:0:halt:/sbin:/sbin/halt
mail:x:8:12:mail:/var/spool/mail:/sbin/nologin
operator:x:11:0:operator:/root:/sbin/nologin
nobody:x:99:99:Nobody:/:/sbin/nologin
apache:x:48:48:Apache:/usr/share/httpd:/sbin/nologin
sshd:x:74:74:Privilege-separated SSH:/var/empty/sshd:/sbin/nologin
postfix:x:89:89::/var/spool/postfix:/sbin/nologin
admin:x:1000:1000::/home/admin:/bin/bash
"""
GROUP_CENTOS = """\
root:x:0:
bin:x:1:
daemon:x:2:
adm:x:4:
mail:x:12:postfix
wheel:x:10:admin
nobody:x:99:
apache:x:48:
sshd:x:74:
postfix:x:89:
admin:x:1000:
"""
PROGRAMS = ("bash", "cat", "chmod", "chown", "cp", "date", "dd", "df", "echo", "false", "grep",
            "gzip", "hostname", "kill", "ln", "ls", "mkdir", "mknod", "mount", "mv", "ps", "pwd",
            "rm", "rmdir", "sed", "sleep", "stty", "su", "sync", "tar", "touch", "true", "umount",
            "uname", "which", "less", "find", "xargs", "awk", "diff", "du", "env", "head", "id",
            "tail", "tee", "tr", "wc", "whoami", "curl", "vim", "ssh", "scp", "rsync", "top")
SBIN = ("init", "ip", "iptables", "sshd", "cron", "rsyslogd", "agetty", "fsck", "ldconfig",
        "sysctl", "useradd", "userdel", "groupadd", "postfix", "nginx", "logrotate")
LIBS = ("libc.so.6:libc-2.24.so", "libz.so.1:libz.so.1.2.8", "libssl.so.1.1:libssl.so.1.1.0",
        "libcrypto.so.1.1:libcrypto.so.1.1.0", "libpcre.so.3:libpcre.so.3.13.3",
        "libncursesw.so.5:libncursesw.so.5.9", "libselinux.so.1:libselinux.so.1.0",
        "libacl.so.1:libacl.so.1.1.0", "libattr.so.1:libattr.so.1.1.0",
        "libpam.so.0:libpam.so.0.83.1", "libsystemd.so.0:libsystemd.so.0.17.0",
        "libgcrypt.so.20:libgcrypt.so.20.1.6")
WORDS = ("the", "container", "package", "license", "copyright", "free", "software", "GNU",
         "General", "Public", "version", "modify", "redistribute", "warranty", "debian", "upstream",
         "maintainer", "source", "files", "changes", "release", "system", "configuration")


def _text(rng: random.Random, lines: int) -> str:
    return "".join(" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12))) + "\n"
                   for _ in range(lines))


def _binary(rng: random.Random, size: int) -> bytes:
    return b"\x7fELF\x02\x01\x01\x00" + rng.randbytes(size - 8)


# When the seeded files were written: long before the first backup snapshot, as on a real
# node (the zfs simulator shares a snapshot's files with the live ones only when they have not
# changed for a while; files written the instant before a snapshot are copied).
SEEDED_AT = dt.datetime(2018, 6, 1, tzinfo=dt.UTC).timestamp()


def _backdate(top: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(top):
        for name in filenames + dirnames:
            os.utime(Path(dirpath) / name, (SEEDED_AT, SEEDED_AT), follow_symlinks=False)


def _put(tree: Path, rel: str, data: str | bytes, mode: int = 0o644, owner: tuple[int, int] | None = None):
    path = tree / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or path.exists():
        path.unlink()
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    os.chmod(path, mode)
    if owner:
        os.chown(path, *owner, follow_symlinks=False)
    return path


def write_rootfs(tree: Path, ct: Container, size: int | None = None) -> dict:
    """A container's root filesystem at `tree` (host path); returns {"files", "bytes"}."""
    rng = random.Random(f"airlift-lab-ct-{ct.ctid}")
    family, version = ct.ostemplate.split("-")[:2]
    distro = DISTROS[family]
    debianish = family in ("debian", "ubuntu")
    tree.mkdir(parents=True, exist_ok=True)
    web_user, web_id = distro["web"]
    files = {
        "etc/hostname": ct.hostname + "\n",
        "etc/hosts": f"127.0.0.1 localhost\n{ct.ipv4} {ct.hostname} ct{ct.ctid}\n::1 localhost ip6-localhost\n",
        "etc/resolv.conf": "nameserver 77.93.223.251\nnameserver 37.205.9.100\n",
        "etc/passwd": PASSWD_DEBIAN if debianish else PASSWD_CENTOS,
        "etc/group": GROUP_DEBIAN if debianish else GROUP_CENTOS,
        "etc/fstab": "# <file system> <mount point> <type> <options> <dump> <pass>\n",
        "etc/motd": f"Welcome to {ct.hostname}\n",
        "etc/ssh/sshd_config": "Port 22\nPermitRootLogin yes\nUsePAM yes\n" + _text(rng, 30),
        "etc/crontab": "SHELL=/bin/sh\nPATH=/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin\n"
                       "17 *\t* * *\troot\tcd / && run-parts --report /etc/cron.hourly\n",
        **distro["extra"][version],
    }
    if distro["os_release"].get(version):
        files["usr/lib/os-release" if debianish else "etc/os-release"] = distro["os_release"][version]
    for rel, text in files.items():
        _put(tree, rel, text)
    if debianish:
        (tree / "etc/os-release").symlink_to("../usr/lib/os-release")
        _put(tree, "etc/shadow", "root:*:17000:0:99999:7:::\nadmin:$6$lab$x:17000:0:99999:7:::\n", 0o640, (0, 42))
    else:
        _put(tree, "etc/shadow", "root:!!:17000:0:99999:7:::\nadmin:$6$lab$x:17000:0:99999:7:::\n", 0o000)
    for d in ("usr/bin", "usr/sbin", "usr/lib/x86_64-linux-gnu", "var/log", "var/tmp", "root"):
        (tree / d).mkdir(parents=True, exist_ok=True)
    for name, target in (("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib")):
        (tree / name).symlink_to(target)
    for name in PROGRAMS:
        _put(tree, f"usr/bin/{name}", _binary(rng, rng.randint(8, 48) << 10), 0o755)
    for name in SBIN:
        _put(tree, f"usr/sbin/{name}", _binary(rng, rng.randint(8, 64) << 10), 0o755)
    (tree / "usr/bin/sh").symlink_to(distro["shell"])
    if distro["shell"] == "dash":
        _put(tree, "usr/bin/dash", _binary(rng, 120 << 10), 0o755)
    _put(tree, "usr/bin/passwd", _binary(rng, 50 << 10), 0o4755)  # set-uid root
    _put(tree, "usr/bin/wall", _binary(rng, 14 << 10), 0o2755, (0, 5))  # set-gid tty
    perl = _put(tree, "usr/bin/perl", _binary(rng, 200 << 10), 0o755)
    os.link(perl, tree / "usr/bin/perl5.24.1")  # a hard link, as the perl package ships it
    for entry in LIBS:
        soname, real = entry.split(":")
        _put(tree, f"usr/lib/x86_64-linux-gnu/{real}", _binary(rng, rng.randint(60, 200) << 10))
        (tree / f"usr/lib/x86_64-linux-gnu/{soname}").symlink_to(real)
    for i in range(180):
        pkg = f"{rng.choice(WORDS)}-{rng.choice(WORDS)}{i}"
        _put(tree, f"usr/share/doc/{pkg}/copyright", _text(rng, rng.randint(5, 40)))
        if i % 3 == 0:
            _put(tree, f"usr/share/doc/{pkg}/changelog.gz", b"\x1f\x8b\x08\x00" + rng.randbytes(rng.randint(200, 3000)))
    (tree / "usr/share/zoneinfo/Europe").mkdir(parents=True, exist_ok=True)
    _put(tree, "usr/share/zoneinfo/Europe/Prague", b"TZif2" + rng.randbytes(2300))
    (tree / "etc/localtime").symlink_to("/usr/share/zoneinfo/Europe/Prague")
    # Someone's home and a web site, owned by non-root users; a private key directory.
    home = tree / "home/admin"
    home.mkdir(parents=True, exist_ok=True)
    os.chown(home, 1000, 1000)
    for i in range(12):
        _put(tree, f"home/admin/notes/{i:02d}.txt", _text(rng, rng.randint(3, 30)), 0o664, (1000, 1000))
    os.chown(home / "notes", 1000, 1000)
    (home / ".ssh").mkdir(exist_ok=True)
    os.chmod(home / ".ssh", 0o700)
    os.chown(home / ".ssh", 1000, 1000)
    _put(tree, "home/admin/.ssh/authorized_keys", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIlab admin@laptop\n",
         0o600, (1000, 1000))
    _put(tree, "home/admin/.bash_history", _text(rng, 20), 0o600, (1000, 1000))
    for i in range(25):
        _put(tree, f"var/www/html/page{i}.html", f"<html><body>{_text(rng, 8)}</body></html>\n", 0o644,
             (web_id, web_id))
    os.chown(tree / "var/www/html", web_id, web_id)
    _put(tree, "var/www/html/upload.php", "<?php move_uploaded_file($_FILES['f']['tmp_name'], 'up/x');\n",
         0o640, (0, web_id))
    for name in ("syslog" if debianish else "messages", "auth.log" if debianish else "secure", "dmesg"):
        _put(tree, f"var/log/{name}", _text(rng, 60), 0o640, (0, 4) if debianish else None)
    (tree / "var/mail").mkdir(exist_ok=True)
    os.chmod(tree / "var/mail", 0o2775)
    os.chown(tree / "var/mail", 0, 8 if debianish else 12)
    _put(tree, "var/mail/admin", "From root@localhost\nSubject: cron\n\nhello\n", 0o660, (1000, 8 if debianish else 12))
    for d in ("tmp", "var/tmp"):
        (tree / d).mkdir(exist_ok=True)
        os.chmod(tree / d, 0o1777)
    for d in ("mnt", "srv", "opt", "media", "proc", "sys", "dev", "run", "var/cache/empty"):
        (tree / d).mkdir(parents=True, exist_ok=True)  # empty directories
    if size:
        _fill(tree, size)
    return _measure(tree)


def _fill(tree: Path, size: int) -> None:
    """Random data in var/lib/lab-data until the tree is about `size` bytes."""
    missing = size - _measure(tree)["bytes"]
    data = tree / "var/lib/lab-data"
    data.mkdir(parents=True, exist_ok=True)
    chunk, per_file, i = 4 << 20, 64 << 20, 0
    while missing > 0:
        with open(data / f"blob-{i:04d}.bin", "wb") as f:
            left = min(per_file, missing)
            missing -= left
            while left > 0:
                f.write(os.urandom(min(chunk, left)))
                left -= chunk
        i += 1


def _measure(tree: Path) -> dict:
    files = size = 0
    for dirpath, _, names in os.walk(tree):
        for name in names:
            st = os.lstat(os.path.join(dirpath, name))
            files += 1
            size += st.st_size if not os.path.islink(os.path.join(dirpath, name)) else 0
    return {"files": files, "bytes": size}


def _replace(path: Path, data: str) -> None:
    """Change a file as a program would: a new inode renamed over it."""
    tmp = path.with_name(f".{path.name}.new")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text(data)
    os.replace(tmp, path)


def _backup_history(z: Zfs, ct: Container, rootfs: Path, data: Path | None) -> None:
    """Snapshots of the container's datasets a day apart, with files added, changed and
    removed between them (and after the last one: the live data differs from it too)."""
    for day, name in enumerate(ct.snapshots):
        _replace(rootfs / "etc/motd", f"Welcome to {ct.hostname} (day {day})\n")
        _replace(rootfs / f"var/backups/dpkg.status.{day}", f"status of day {day}\n" * 40)
        if day > 0:
            (rootfs / f"var/backups/dpkg.status.{day - 1}").unlink()
            (rootfs / f"var/www/html/page{day}.html").unlink()
        if data is not None:
            _replace(data / f"db/day-{day}.sql", f"INSERT INTO t VALUES ({day});\n" * 200)
            _replace(data / "db/current", f"{day}\n")
            if day > 0:
                (data / f"db/day-{day - 1}.sql").unlink()
        when = dt.datetime.strptime(name.split("-", 1)[1], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.UTC)
        z.snapshot(f"{ct.dataset}@{name}", recursive=True, creation=int(when.timestamp()))
    _replace(rootfs / "etc/motd", f"Welcome to {ct.hostname}\n")
    if data is not None:
        _replace(data / "db/current", "live\n")


def seed_container(root: Path, z: Zfs, ct: Container, size: int | None = None) -> dict:
    """One container on the OpenVZ node at `root`: config, files, datasets, state."""
    private = root / ct.private.lstrip("/")
    data = None
    if ct.layout == "zfs":
        z.create(ct.dataset)
        for sub in ct.subdatasets:
            z.create(f"{ct.dataset}/{sub}")
            data = z.path(f"{ct.dataset}/{sub}")
            rng = random.Random(f"airlift-lab-ct-{ct.ctid}-{sub}")
            for i in range(20):
                _put(data, f"www/file{i:02d}.dat", rng.randbytes(2048 + i * 512), 0o644, (1000, 1000))
    tree = private / vzctl.PLOOP_TREE if ct.layout == "ploop" else private
    info = write_rootfs(tree, ct, size)
    if ct.layout == "ploop":
        write_file(private / "root.hdd/DiskDescriptor.xml",
                   '<?xml version="1.0"?>\n<Parallels_disk_image Version="1.0">\n  <Disk_Parameters>\n'
                   "    <Disk_size>20971520</Disk_size>\n  </Disk_Parameters>\n  <StorageData>\n"
                   "    <Storage><Start>0</Start><End>20971520</End>\n"
                   "      <Image><GUID>{5fbaabe3-6958-40ff-92a7-860e329aab41}</GUID><Type>Compressed</Type>"
                   "<File>root.hds</File></Image>\n    </Storage>\n  </StorageData>\n</Parallels_disk_image>\n")
        write_file(private / vzctl.PLOOP_IMAGE,
                   "lab: a ploop image; its ext4 is the directory fs/ beside this file\n", 0o600)
    for top in filter(None, (tree, data)):
        _backdate(top)
    if ct.snapshots:
        _backup_history(z, ct, tree, data)
    conf_text = ct_conf(ct)
    write_file(root / f"etc/vz/conf/{ct.ctid}.conf", conf_text)
    conf = vzctl.parse_conf(conf_text, ct.ctid)
    write_file(root / f"var/lib/lab/vz/{ct.ctid}", ct.state + "\n")
    ve_root = root / f"vz/root/{ct.ctid}"
    if ve_root.is_symlink():
        ve_root.unlink()
    ve_root.mkdir(parents=True, exist_ok=True)
    if ct.state == "running":
        vzctl.show_root(ct.ctid, conf, str(root))
    return {"layout": ct.layout, "state": ct.state, "ostemplate": ct.ostemplate,
            "ve_private": ct.private, "ve_root": f"/vz/root/{ct.ctid}",
            "tree": vzctl.tree(ct.ctid, conf), "dataset": ct.dataset,
            "subdatasets": [f"{ct.dataset}/{s}" for s in ct.subdatasets],
            "snapshots": list(ct.snapshots), "refusal": ct.refusal, **info}


def seed_openvz_node(root: Path, containers=None, sizes=None, table: dict[int, Container] = CONTAINERS) -> dict:
    sizes = sizes or {}
    write_file(root / "etc/vz/vz.conf", VZ_CONF)
    write_file(root / "etc/redhat-release", "Scientific Linux release 6.9 (Carbon)\n")
    # Scientific Linux 6's Ruby and rubygems (too old for the converter); no converter.
    write_file(root / "var/lib/lab/rpm/ruby", "1.8.7.374-5.el6.x86_64\n")
    write_file(root / "var/lib/lab/rpm/rubygems", "1.3.7-5.el6.noarch\n")
    for d in ("vz/root", "vz/template/cache", "vz/dump", "vz/lock", "etc/yum.repos.d"):
        (root / d).mkdir(parents=True, exist_ok=True)
    z = Zfs(root)
    made = {}
    with z.batch():
        if not z.exists(POOL):
            z.create_pool(POOL)
        if not z.exists(PRIVATE_DATASET):
            z.create(PRIVATE_DATASET, props={"mountpoint": "/vz/private"})
        for ctid in sorted(table if containers is None else (int(c) for c in containers if int(c) in table)):
            made[ctid] = seed_container(root, z, table[ctid], sizes.get(ctid))
    return made


def seed(cfg: LabConfig, containers=None, sizes=None, profile: str = "2019") -> dict:
    """The OpenVZ world on the lab's (already built) vz1, vz2, os1 and os2; see the module doc.
    `profile` is the era of the converter the OpenVZ nodes install and of osctld on the
    vpsAdminOS nodes: "2019" (the runbook's) or "2024" (today's)."""
    from lab.openvz.tools import osctl, vpsadminos_convert

    if profile not in osctl.PROFILES or profile not in vpsadminos_convert.PROFILES:
        raise ValueError(f"no lab profile {profile!r}: {', '.join(osctl.PROFILES)}")
    made = {}
    for host in HOSTS:
        root = cfg.node_root(host.name)
        if "openvz" in host.roles:
            made[host.name] = seed_openvz_node(root, containers, sizes, NODE_CONTAINERS[host.name])
            write_file(root / vpsadminos_convert.PROFILE_FILE.lstrip("/"), profile + "\n")
        if host.roles & set(FOREIGN_SIMULATORS):
            prune_tools(root, host.roles & set(FOREIGN_SIMULATORS))
        if "vpsadminos" in host.roles:
            # lab/openvz/vpsadminos.py (pools, users, id ranges, osctl's state) is another
            # part of the lab; until it exists the vpsAdminOS nodes stay bare.
            if importlib.util.find_spec("lab.openvz.vpsadminos") is not None:
                from lab.openvz import vpsadminos

                vpsadminos.seed_node(root, pool="tank", profile=profile)
    return {"containers": made[OPENVZ_NODE], "nodes": made}
