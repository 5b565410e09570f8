#!/usr/bin/python3
"""`vpsadminos-convert`, the OpenVZ Legacy -> vpsAdminOS converter gem, for the lab's OpenVZ
node. Standard library only; installed on every node's /usr/local/lib/airlift-lab/ but put on
the PATH (/usr/local/bin/vpsadminos-convert) only by `gem install vpsadminos-converter`.

Profile: the converter of the runbook's time (seed 003, research/vpsadminos.md §1): the
pre-2020 receive protocol with container ids, `--route-via` for routed veth, ZFS migration
working through the `send_ssh_cmd` form. The era's differences sit in PROFILES, chosen by
/etc/lab/converter-profile (default "2019"); "2024" is today's gem (no --route-via, still
container ids in the receive commands, the ZFS migrator's NoMethodError).

Commands (GLI: options precede arguments; `error: <msg>` on stderr, exit 1; a bad command line
-- unknown option, missing argument, a --route-via error -- exit 64 with the command's help):

    vpsadminos-convert [--log-file FILE] [--version] [--help]
    vpsadminos-convert vz6 export [options] <ctid> <file>
    vpsadminos-convert vz6 migrate stage [-p PORT] [options] <id> <dst>
    vpsadminos-convert vz6 migrate sync|transfer <id>
    vpsadminos-convert vz6 migrate cleanup [-d|--[no-]delete] <id>
    vpsadminos-convert vz6 migrate cancel [-f|--force] <id>
    vpsadminos-convert vz6 migrate now [-p PORT] [-d] [-y] [options] <id> <dst>
    vpsadminos-convert man

Migration state: ~/.vpsadminos-converter/<ctid>.state (directory 0700, file 0700), written
atomically as <ctid>.state.new + rename, in Ruby's Marshal format as the gem writes it (the
containers as objects of the gem's classes; plugins/openvz/marshal.py, installed beside it as
ruby_marshal.py). Its content, as JSON:

    {"step": "stage|sync|transfer",
     "vz_ct": {"ctid": "101", "layout": "simfs", "config": [[KEY, value, consumed], ...]},
     "target_ct": {"id": "101", "rootfs": "/vz/private/101", "dataset": "vz/private/104"|null,
                   "config": {<config/container.yml as a dict>}},
     "opts": {"dst": "os1", "port": 22, "zfs": false, "zfs_dataset": null,
              "zfs_subdir": null, "zfs_compressed_send": false},
     "snapshots": ["converter-migrate-base-<ts>", "converter-migrate-incr-<ts>"]}

A routed netif in config/container.yml (--netif-type routed --route-via 10.100.10.0/30
--route-via 2001:db8:ffff::/126), the key names osctld of 2018 loaded (Routing::Via: network,
host, ct). Upstream wrote `host: ` / `ct: ` empty when --route-host-addr/--route-ct-addr were
not given and osctld computed the first/second address of the network; here the converter
writes those computed values (with the network's prefix), so the reader needs no defaults.
An address given by --route-*-addr keeps its own prefix (/32 or /128 when it has none, as
IPAddress parses it):

    net_interfaces:
    - type: routed
      name: eth0
      hwaddr:
      ip_addresses:
        v4:
        - 1.2.3.4/32
        v6:
        - 2001:db8::1/128
      via:
        v4:
          network: 10.100.10.0/30
          host: 10.100.10.1/30
          ct: 10.100.10.2/30
        v6:
          network: 2001:db8:ffff::/126
          host: 2001:db8:ffff::1/126
          ct: 2001:db8:ffff::2/126
      routes:
        v4:
        - 1.2.3.4/32
        v6:
        - 2001:db8::1/128

(`via` has only the IP versions given; a bridged netif has `link: lxcbr0` instead of via and
routes.) YAML is written as Psych does (`---` first, sequences at their key's indentation,
numeric-looking strings single-quoted, nil as an empty value).

Simplifications: IP lists in the consumed/ignored report print as
`[#<IPAddress::IPv4 1.2.3.4/32>, #<IPAddress::IPv6 2001:db8::1/128>]` (Ruby prints the
IPAddress objects' instance variables); DEVICES as `[#<Device c:10:200:rw>]`. No ruby-progressbar
lines (`Copying ...`): streams and rsync run silently between the `> ...` progress lines.
`man` prints the manual as text (no man(1) on the nodes).
"""

import gzip
import io
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

if __package__:  # imported on the host (lab.openvz.tools.vpsadminos_convert; plugins/ on the path)
    from lab.core.tools import toolbox
    from openvz import marshal as ruby_marshal
else:  # run as a program: toolbox.py and ruby_marshal.py (plugins/openvz/marshal.py) are next to it
    import ruby_marshal
    import toolbox

PROG = "vpsadminos-convert"
PROFILE_FILE = "/etc/lab/converter-profile"
# The era's differences. "2019": gem 19.03 with the osctl-ct-receive user and send_ssh_cmd
# (June 2019), still carrying the 2018 --route-via options (seed 003's command line).
PROFILES = {
    "2019": {
        "version": "19.03.0",
        "route_via": True,            # --route-via/--route-host-addr/--route-ct-addr exist
        "receive_user": "osctl-ct-receive",
        "receive_by": "ctid",         # receive base|incremental|transfer|cancel <ctid>
        "zfs_send_cmd": True,         # the ZFS migrator builds its receive command
    },
    # Today's gem (24.05.0, vpsadminos HEAD): --route-via and friends are gone (2018-09); it
    # still sends container ids where osctld now wants tokens (it never read the token
    # `receive skel` prints), and its ZFS migrator calls `migrate_ssh_cmd`, removed in 2019-06
    # (NoMethodError on the first stream).
    "2024": {
        "version": "24.05.0",
        "route_via": False,
        "receive_user": "osctl-ct-receive",
        "receive_by": "ctid",
        "zfs_send_cmd": False,
    },
}
DEFAULT_PROFILE = "2019"
STATE_DIR = "~/.vpsadminos-converter"
STEPS = ("stage", "sync", "cancel", "transfer", "cleanup")
USER_MAP = "0:666000:65536"


def profile():
    name = (toolbox.read(PROFILE_FILE, "") or "").strip() or DEFAULT_PROFILE
    if name not in PROFILES:
        raise Fail(f"unknown converter profile '{name}' in {PROFILE_FILE} "
                   f"(lab: known {', '.join(sorted(PROFILES))})")
    return PROFILES[name]


class Fail(Exception):
    """A RuntimeError reaching GLI: `error: <message>`, exit 1."""


class BadCommandLine(Exception):
    """GLI::BadCommandLine (and OptionParser errors): `error: <message>`, the command's help
    on stdout, exit 64."""

    def __init__(self, message, command=None):
        super().__init__(message)
        self.command = command


class SystemCommandFailed(Fail):
    def __init__(self, cmd, rc, output):
        super().__init__(f"command '{cmd}' exited with code '{rc}', output: '{output}'")
        self.rc, self.output = rc, output


# ----------------------------------------------------------------------------------------
# Running commands (libosctl Utils::System and the ssh invocations)

LOG = {"file": None}


def log(text):
    if LOG["file"]:
        with open(LOG["file"], "a") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n")


def syscmd(cmd, valid_rcs=()):
    """`exec <cmd> 2>&1` through the shell: output is stdout and stderr merged."""
    log(f"> {cmd}")
    proc = subprocess.run(["/bin/bash", "-c", f"exec {cmd} 2>&1"], stdout=subprocess.PIPE,
                          stdin=subprocess.DEVNULL)
    output = proc.stdout.decode("utf-8", "replace")
    if proc.returncode != 0 and proc.returncode not in valid_rcs:
        raise SystemCommandFailed(cmd, proc.returncode, output)
    return proc.returncode, output


def zfs(args):
    return syscmd(f"zfs {args}")


def receive_cmd(opts, args):
    """send_ssh_cmd: ssh -o StrictHostKeyChecking=no -T -p PORT -l osctl-ct-receive DST ..."""
    return ["ssh", "-o", "StrictHostKeyChecking=no", "-T", "-p", str(opts["port"]),
            "-l", profile()["receive_user"], opts["dst"], *args]


def system(argv, stdin=None):
    """Ruby's Kernel#system: stdout/stderr inherited; None when it could not run."""
    log("> " + " ".join(argv))
    sys.stdout.flush()
    try:
        return subprocess.run(argv, stdin=stdin).returncode
    except OSError:
        return None


def progress(text):
    toolbox.out(f"> {text}")


# ----------------------------------------------------------------------------------------
# Ruby-ish presentation: inspect and YAML.dump

def inspect(value):
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        out = []
        for ch in value:
            if ch in '"\\':
                out.append("\\" + ch)
            elif ch == "\n":
                out.append("\\n")
            elif ch == "\t":
                out.append("\\t")
            elif ord(ch) < 32 or ord(ch) == 127:
                out.append(f"\\x{ord(ch):02X}")
            else:
                out.append(ch)
        return '"' + "".join(out).replace("#{", "\\#{") + '"'
    if isinstance(value, list):
        return "[" + ", ".join(inspect(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{inspect(k)}=>{inspect(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (ipaddress.IPv4Interface, ipaddress.IPv6Interface)):
        return f"#<IPAddress::IPv{value.version} {value.with_prefixlen}>"
    if isinstance(value, Device):
        return f"#<Device {value.text}>"
    return repr(value)


_PLAIN_UNSAFE = re.compile(
    r"""^(?:|~|null|Null|NULL|true|True|TRUE|false|False|FALSE|yes|Yes|YES|no|No|NO|on|On|ON|
    off|Off|OFF|y|Y|n|N|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])*|[-+]?(?:[0-9][0-9_]*)?\.[0-9_]*
    (?:[eE][-+]?[0-9]+)?|0x[0-9a-fA-F_]+|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""", re.X)


def yaml_scalar(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if (_PLAIN_UNSAFE.match(text) or text[0] in "-?:,[]{}#&*!|>'\"%@`" or ": " in text
            or " #" in text or text != text.strip() or text.endswith(":")
            or any(ord(c) < 32 for c in text)):
        if "\n" in text or any(ord(c) < 32 for c in text):
            return json.dumps(text)
        return "'" + text.replace("'", "''") + "'"
    return text


def _yaml_lines(value, indent):
    pad = " " * indent
    lines = []
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, dict) and v:
                lines.append(f"{pad}{k}:")
                lines += _yaml_lines(v, indent + 2)
            elif isinstance(v, list) and v:
                lines.append(f"{pad}{k}:")
                lines += _yaml_lines(v, indent)
            else:
                lines.append(f"{pad}{k}:" + _yaml_inline(v))
    else:
        for v in value:
            if isinstance(v, (dict, list)) and v:
                sub = _yaml_lines(v, indent + 2)
                lines.append(f"{pad}- " + sub[0][indent + 2:])
                lines += sub[1:]
            else:
                lines.append(f"{pad}-" + _yaml_inline(v))
    return lines


def _yaml_inline(v):
    if isinstance(v, dict):
        return " {}"
    if isinstance(v, list):
        return " []"
    text = yaml_scalar(v)
    return f" {text}" if text else ""


def yaml_dump(value):
    """YAML.dump of a Hash or an Array (block style, as Psych writes them)."""
    if isinstance(value, (dict, list)) and value:
        return "---\n" + "\n".join(_yaml_lines(value, 0)) + "\n"
    return "---" + _yaml_inline(value) + "\n"


# ----------------------------------------------------------------------------------------
# OpenVZ config (vz6/config.rb, config_item.rb)

STRING_KEYS = {"NAME", "DESCRIPTION", "OSTEMPLATE", "MOUNT_OPTS", "ORIGIN_SAMPLE", "VE_LAYOUT",
               "HOSTNAME", "NETFILTER"}
PATH_KEYS = {"VE_ROOT", "VE_PRIVATE"}
BOOL_KEYS = {"ONBOOT", "DISABLED"}
INT_KEYS = {"BOOTORDER", "STOP_TIMEOUT", "CPUUNITS", "CPUS", "CPULIMIT"}
IP_KEYS = {"NAMESERVER", "IP_ADDRESS"}
UNIT_BYTES = {"B": 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3, "T": 1024 ** 4}


class Device:
    def __init__(self, text):
        self.text = text
        self.type, self.major, self.minor, self.mode = (text.split(":") + ["", "", "", ""])[:4]

    def to_ct_device(self):
        types = {"b": "block", "c": "char"}
        if self.type not in types:
            raise Fail(f"unsupported device type '{self.type}'")
        mode = "" if self.mode == "none" else self.mode.replace("q", "")
        return {"type": types[self.type], "major": self.major, "minor": self.minor,
                "mode": mode, "name": None, "inherit": True}


def ruby_to_i(text):
    m = re.match(r"\s*([-+]?\d[\d_]*)", text)
    return int(m.group(1).replace("_", "")) if m else 0


def ip_parse(text):
    """IPAddress.parse: bare addresses get /32 or /128; ArgumentError texts of ipaddress 0.8."""
    if "." not in text and ":" not in text:
        raise Fail(f"Unknown IP Address {text}")
    try:
        return ipaddress.ip_interface(text)
    except ValueError:
        raise Fail(f"Invalid IP {text}") from None


def parse_unit(text):
    if text == "unlimited":
        return 0
    if re.fullmatch(r"\d+", text):
        return int(text)
    m = re.fullmatch(r"(\d+)(.)", text)
    suffix = m.group(2) if m else text[-1:]
    if m and suffix == "P":
        return int(m.group(1))
    if m and suffix in UNIT_BYTES:
        return int(m.group(1)) * UNIT_BYTES[suffix] // 4096
    raise RuntimeError(f"unsupported suffix '{suffix}'")


def parse_value(ctid, key, raw):
    if key in STRING_KEYS:
        return raw
    if key in PATH_KEYS:
        return raw.replace("${VEID}", str(ctid)).replace("$VEID", str(ctid))
    if key in BOOL_KEYS:
        if raw in ("yes", "no"):
            return raw == "yes"
        raise RuntimeError(f'unexpected boolean value {key}="{raw}"')
    if key in INT_KEYS:
        return ruby_to_i(raw)
    if key in IP_KEYS:
        return [ip_parse(v) for v in raw.split()]
    if key == "SEARCHDOMAIN":
        return raw.split()
    if key in ("PHYSPAGES", "SWAPPAGES"):
        parts = raw.split(":")
        return [parse_unit(parts[0]), parse_unit(parts[1] if len(parts) > 1 else parts[0])]
    if key == "DEVICES":
        return [Device(v) for v in raw.split()]
    if key in ("CAPABILITY", "FEATURES"):
        ret = {}
        for v in raw.split():
            name, _, mode = v.partition(":")
            if mode not in ("on", "off"):
                raise RuntimeError(f"unknown mode '{v}'")
            ret[name.lower()] = mode == "on"
        return ret
    return raw


class Config:
    """The items of /etc/vz/conf/<ctid>.conf in file order: [key, value, consumed]."""

    def __init__(self, items):
        self.items = items  # {key: [value, consumed]}, insertion = file order

    @classmethod
    def parse(cls, ctid, path):
        text = toolbox.read(path)
        if text is None:
            raise Fail(f"No such file or directory @ rb_sysopen - {path}")
        items = {}
        for line in text.splitlines():
            if re.match(r"^\s*#", line) or not line.strip():
                continue
            m = re.match(r'^([A-Z_]+)="([^"]+)"', line) or re.match(r"^([A-Z_]+)=(\S+)", line)
            if not m:
                toolbox.err(f"Unknown line '{line}'")
                continue
            key = m.group(1)
            value = parse_value(ctid, key, m.group(2))
            items[key] = [value, items.get(key, [None, False])[1]]
        return cls(items)

    def __contains__(self, key):
        return key in self.items

    def get(self, key):
        return self.items[key][0] if key in self.items else None

    def consume(self, key):
        if key not in self.items:
            return None
        self.items[key][1] = True
        return self.items[key][0]

    def report(self):
        toolbox.out("Consumed config items:")
        for key, (value, consumed) in self.items.items():
            if consumed:
                toolbox.out(f"  {key} = {inspect(value)}")
        toolbox.out()
        toolbox.out("Ignored config items:")
        for key, (value, consumed) in self.items.items():
            if not consumed:
                toolbox.out(f"  {key} = {inspect(value)}")


# ----------------------------------------------------------------------------------------
# The OpenVZ container and its conversion (vz6/container.rb, cli/vz6/base.rb)

class VzCt:
    def __init__(self, ctid, layout=None):
        self.ctid = ctid
        self.config = None
        self._layout = layout

    def exist(self):
        rc, _ = syscmd(f"vzlist {self.ctid}", valid_rcs=(1,))
        return rc == 0

    def status(self):
        stats = syscmd(f"vzctl status {self.ctid}")[1].strip().split()
        stats += [""] * 5
        return {"exist": stats[2] == "exist", "mounted": stats[3] == "mounted",
                "running": stats[4] == "running"}

    def running(self):
        return self.status()["running"]

    def load(self):
        self.config = Config.parse(self.ctid, f"/etc/vz/conf/{self.ctid}.conf")

    def layout(self):
        if self._layout is not None:
            return self._layout
        if "VE_LAYOUT" not in self.config:
            raise Fail("unable to determine VE_LAYOUT")
        return self.config.get("VE_LAYOUT")

    def ploop(self):
        return self.layout().startswith("ploop")


class RouteViaMissing(Exception):
    def __init__(self, ip_v):
        super().__init__("VpsAdminOS::Converter::RouteViaMissing")
        self.ip_v = ip_v


def convert(vz_ct, netif_opts):
    """Vz6::Container#convert: the target container as {id, rootfs, config}."""
    config = vz_ct.config
    for key in ("VE_ROOT", "VE_PRIVATE", "VE_LAYOUT", "NETFILTER"):
        config.consume(key)
    rootfs = config.consume("VE_ROOT") if vz_ct.ploop() else config.consume("VE_PRIVATE")
    if "OSTEMPLATE" not in config:
        raise Fail("config missing OSTEMPLATE")
    parts = config.consume("OSTEMPLATE").split("-")
    distribution, version = (parts + [None, None])[:2]
    hostname = config.consume("HOSTNAME") or "vps"
    dns = [str(ip.ip) for ip in config.consume("NAMESERVER")] if "NAMESERVER" in config else []
    autostart = {"priority": 10, "delay": 5} if config.consume("ONBOOT") else None
    cgparams = []
    if "PHYSPAGES" in config:
        mem = config.consume("PHYSPAGES")[1] * 4096
        if "SWAPPAGES" in config:
            memsw = mem + config.consume("SWAPPAGES")[1] * 4096
            cgparams.append({"subsystem": "memory", "name": "memory.memsw.limit_in_bytes",
                             "value": [memsw]})
        cgparams.append({"subsystem": "memory", "name": "memory.limit_in_bytes", "value": [mem]})
    netifs = []
    if "IP_ADDRESS" in config:
        netif = {"type": netif_opts["type"], "name": netif_opts["name"],
                 "hwaddr": netif_opts["hwaddr"], "ip_addresses": {}}
        all_ips = config.consume("IP_ADDRESS")
        routes = {}
        for ip_v in (4, 6):
            ips = [ip for ip in all_ips if ip.version == ip_v]
            netif["ip_addresses"][f"v{ip_v}"] = [ip.with_prefixlen for ip in ips]
            if netif["type"] == "routed":
                if ips and ip_v not in netif_opts["via"] and profile()["route_via"]:
                    raise RouteViaMissing(ip_v)
                routes[f"v{ip_v}"] = [ip.with_prefixlen for ip in ips]
        if netif["type"] == "bridge":
            netif["link"] = netif_opts["link"]
        else:
            if profile()["route_via"]:  # today's: routed via the host's osrtr0, no network
                netif["via"] = {f"v{v}": net for v, net in sorted(netif_opts["via"].items())}
            netif["routes"] = routes
        netifs.append(netif)
    devices = [d.to_ct_device() for d in config.consume("DEVICES")] if "DEVICES" in config else []
    ct_config = {
        "user": "default", "group": "default", "distribution": distribution or "unknown",
        "version": version, "arch": syscmd("uname -m")[1].strip(), "net_interfaces": netifs,
        "cgparams": cgparams, "devices": devices, "prlimits": [], "mounts": [],
        "autostart": autostart, "hostname": hostname, "dns_resolvers": dns or None,
        "nesting": False,
    }
    return {"id": vz_ct.ctid, "rootfs": rootfs, "dataset": None, "config": ct_config}


def parse_route_via(opts):
    """The 2018 --route-via/--route-host-addr/--route-ct-addr checks, GLI::BadCommandLine."""
    ret = {}
    host_addrs = [ip_parse(v) for v in opts.get("route-host-addr", [])]
    ct_addrs = [ip_parse(v) for v in opts.get("route-ct-addr", [])]
    for text in opts.get("route-via", []):
        network = ip_parse(text)
        ip_v = network.version
        if ip_v in ret:
            raise BadCommandLine(f"network for IPv{ip_v} has already been set to route via "
                                 f"{ret[ip_v]['network']}")
        if ip_v == 4 and network.network.prefixlen > 30:
            raise BadCommandLine("cannot route via IPv4 network smaller than /30")
        if ip_v == 6 and network.network.prefixlen > 126:
            raise BadCommandLine("cannot route via IPv6 network smaller than /126")

        host, ct = (_net_addr(network, host_addrs, "host"),
                    _net_addr(network, ct_addrs, "container"))
        if (host is None) != (ct is None):
            raise BadCommandLine("provide both host and container address")
        if host is not None and host == ct:
            raise BadCommandLine("use different addresses for host and container")
        base = network.network.network_address
        prefix = network.network.prefixlen
        ret[ip_v] = {
            "network": network.with_prefixlen,
            "host": host.with_prefixlen if host else f"{base + 1}/{prefix}",
            "ct": ct.with_prefixlen if ct else f"{base + 2}/{prefix}",
        }
    return ret


def _net_addr(network, addrs, kind):
    """The first address of the network's IP version given for `kind`, or None."""
    addr = next((a for a in addrs if a.version == network.version), None)
    if addr is None or addr.ip in network.network:
        return addr
    raise BadCommandLine(f"network {network.with_prefixlen} does not include {kind} "
                         f"address {addr.with_prefixlen}")


def convert_ct(ctid, opts):
    """cli/vz6/base.rb#convert_ct: (vz_ct, target_ct) or an error, in upstream's order."""
    if opts.get("vpsadmin"):
        opts.update({"zfs": True, "zfs-dataset": f"vz/private/{ctid}", "zfs-subdir": "private",
                     "netif-type": "routed", "netif-name": "eth0"})
    if opts.get("zfs") and opts.get("zfs-subdir") != "private":
        raise Fail("unsupported configuration, only '--zfs-subdir private' is implemented")
    vz_ct = VzCt(ctid)
    if not vz_ct.exist():
        raise Fail("container not found")
    toolbox.out("Parsing config")
    try:
        vz_ct.load()
    except RuntimeError as e:
        raise Fail(f"unable to parse config: {e}") from None
    if opts.get("zfs") and vz_ct.ploop():
        raise Fail("container uses ploop, but ZFS was enabled")
    netif = {"type": opts["netif-type"], "name": opts["netif-name"],
             "hwaddr": opts.get("netif-hwaddr"), "link": opts["bridge-link"],
             "via": parse_route_via(opts) if profile()["route_via"] else {}}
    target_ct = convert(vz_ct, netif)
    if opts.get("zfs"):
        target_ct["dataset"] = opts.get("zfs-dataset")
    return vz_ct, target_ct


# ----------------------------------------------------------------------------------------
# ZFS datasets (libosctl Zfs::Dataset)

def datasets(base):
    """[(name, relative name)]: the dataset (`/`) then its descendants."""
    out = zfs(f"get -r -H -p -o name,property,value -t filesystem name {base}")[1]
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    return [(n, "/" if n == base else n[len(base) + 1:]) for n in names]


def snapshots(ds):
    out = zfs(f"get -r -H -p -o name,property,value -t snapshot -d 1 name {ds}")[1]
    return [line.split()[0].split("@", 1)[1] for line in out.splitlines() if "@" in line]


# ----------------------------------------------------------------------------------------
# Archives (libosctl Exporter::Base/Tar/Zfs with the converter's config dump)

class Archive:
    """Gem::Package::TarWriter on a file: entries written as they come; `close()` is never
    called by `vz6 export`, so the two end-of-archive blocks are missing (GNU tar and Ruby's
    reader accept that)."""

    def __init__(self, fileobj):
        self.fileobj = fileobj
        self.tar = tarfile.TarFile(fileobj=fileobj, mode="w", format=tarfile.USTAR_FORMAT)

    def _info(self, name, kind, mode, size=0):
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.size, info.mtime = kind, mode, size, int(time.time())
        return info

    def mkdir(self, name):
        self.tar.addfile(self._info(name, tarfile.DIRTYPE, 0o755))

    def add_bytes(self, name, data):
        self.tar.addfile(self._info(name, tarfile.REGTYPE, 0o644, len(data)), io.BytesIO(data))

    def add_file(self, name, path):
        with open(path, "rb") as f:
            self.tar.addfile(self._info(name, tarfile.REGTYPE, 0o644, os.path.getsize(path)), f)

    def finish(self):
        """TarWriter#close (the skel archive): the end-of-archive blocks."""
        self.tar.close()


def dump_metadata(archive, target_ct, kind, fmt, subdatasets=()):
    archive.add_bytes("metadata.yml", yaml_dump({
        "type": kind, "format": fmt, "user": "default", "group": "default",
        "container": target_ct["id"], "datasets": list(subdatasets),
        "exported_at": int(time.time())}).encode())


def dump_configs(archive, target_ct):
    archive.mkdir("config")
    archive.add_bytes("config/user.yml", yaml_dump(
        {"ugid": 1000, "uid_map": [USER_MAP], "gid_map": [USER_MAP]}).encode())
    archive.add_bytes("config/group.yml", yaml_dump({"path": "default", "cgparams": []}).encode())
    archive.add_bytes("config/container.yml", yaml_dump(target_ct["config"]).encode())


# ----------------------------------------------------------------------------------------
# vz6 export (cli/vz6/export.rb)

def cmd_export(opts, args):
    require_args(args, "ctid", "file")
    ctid, path = args[0], args[1]
    try:
        vz_ct, target_ct = convert_ct(ctid, opts)
    except RouteViaMissing as e:
        raise BadCommandLine(f"provide --route-via for IPv{e.ip_v}") from None
    with open(path, "wb") as f:
        archive = Archive(f)
        toolbox.out("Exporting metadata")
        subs = [rel for _, rel in datasets(target_ct["dataset"])[1:]] if opts.get("zfs") else []
        dump_metadata(archive, target_ct, "full", "zfs" if opts.get("zfs") else "tar", subs)
        toolbox.out("Exporting configs")
        dump_configs(archive, target_ct)
        toolbox.out("Exporting rootfs")
        if opts.get("zfs"):
            export_streams(vz_ct, target_ct, archive, opts)
        elif vz_ct.ploop():
            export_tar_ploop(vz_ct, target_ct, archive, opts)
        else:
            export_tar_simfs(vz_ct, target_ct, archive, opts)
        f.flush()
    toolbox.out("Export done")
    toolbox.out()
    vz_ct.config.report()
    return 0


def pack_rootfs(target_ct, archive):
    archive.mkdir("rootfs")
    with tempfile.TemporaryDirectory(prefix="converter-") as tmp:
        out = os.path.join(tmp, "base.tar.gz")
        rc = subprocess.run(["/bin/bash", "-c", "exec tar --xattrs-include=security.capability "
                             f"--xattrs -cz -C {target_ct['rootfs']} . > {out}"]).returncode
        if rc != 0:
            raise Fail(f"tar failed with exit status {rc}")
        archive.add_file("rootfs/base.tar.gz", out)


def export_tar_simfs(vz_ct, target_ct, archive, opts):
    running = vz_ct.running() and opts["consistent"]
    try:
        if running:
            toolbox.out("> stopping container")
            syscmd(f"vzctl stop {vz_ct.ctid}")
        toolbox.out("> packing rootfs")
        pack_rootfs(target_ct, archive)
    finally:
        if running:
            toolbox.out("> restarting container")
            syscmd(f"vzctl start {vz_ct.ctid}")


def export_tar_ploop(vz_ct, target_ct, archive, opts):
    status = vz_ct.status()
    try:
        if status["running"] and opts["consistent"]:
            toolbox.out("> stopping container")
            syscmd(f"vzctl stop {vz_ct.ctid}")
            syscmd(f"vzctl mount {vz_ct.ctid}")
        elif not status["mounted"]:
            syscmd(f"vzctl mount {vz_ct.ctid}")
        toolbox.out("> packing rootfs")
        pack_rootfs(target_ct, archive)
    finally:
        if status["running"] and opts["consistent"]:
            toolbox.out("> restarting container")
            syscmd(f"vzctl start {vz_ct.ctid}")
        elif not status["mounted"]:
            syscmd(f"vzctl umount {vz_ct.ctid}")


def export_streams(vz_ct, target_ct, archive, opts):
    base = target_ct["dataset"]
    all_ds = datasets(base)
    archive.mkdir("rootfs")
    for _, rel in all_ds[1:]:
        archive.mkdir(f"rootfs/{rel}")
    snaps = []
    send = "zfs send -c" if opts.get("zfs-compressed-send") else "zfs send"

    def compression(ds):
        mode = opts["compression"]
        if mode != "auto":
            return mode
        if not opts.get("zfs-compressed-send"):
            return "gzip"
        return "gzip" if zfs(f"get -H -o value compression {ds}")[1].strip() == "off" else "off"

    def dump(kind, snap, from_snap=None):
        for ds, rel in all_ds:
            comp = compression(ds)
            name = "rootfs/" + ("" if rel == "/" else rel + "/") + kind + ".dat"
            name += ".gz" if comp == "gzip" else ""
            cmd = f"{send} -I @{from_snap} {ds}@{snap}" if from_snap else f"{send} {ds}@{snap}"
            with tempfile.NamedTemporaryFile(prefix="converter-stream-") as tmp:
                writer = gzip.GzipFile(fileobj=tmp, mode="wb") if comp == "gzip" else tmp
                proc = subprocess.Popen(["/bin/bash", "-c", f"exec {cmd}"], stdout=subprocess.PIPE)
                shutil.copyfileobj(proc.stdout, writer, 16 * 1024)
                proc.wait()  # the exit status of zfs send is not checked upstream
                if writer is not tmp:
                    writer.close()
                tmp.flush()
                archive.add_file(name, tmp.name)

    toolbox.out("> base stream")
    base_snap = f"osctl-base-{int(time.time())}"
    zfs(f"snapshot -r {base}@{base_snap}")
    snaps.append(base_snap)
    dump("base", base_snap)
    if vz_ct.running() and opts["consistent"]:
        toolbox.out("> stopping container")
        syscmd(f"vzctl stop {vz_ct.ctid}")
        toolbox.out("> incremental stream")
        incr_snap = f"osctl-incr-{int(time.time())}"
        zfs(f"snapshot -r {base}@{incr_snap}")
        snaps.append(incr_snap)
        dump("incremental", incr_snap, base_snap)
        toolbox.out("> restarting container")
        syscmd(f"vzctl start {vz_ct.ctid}")
    snaps.reverse()
    for ds, _ in all_ds:
        for snap in snaps:
            zfs(f"destroy  {ds}@{snap}")
    archive.add_bytes("snapshots.yml", yaml_dump(snaps).encode())


# ----------------------------------------------------------------------------------------
# Migration state (vz6/migrator/state.rb)

class State:
    def __init__(self, ctid, data):
        self.ctid = ctid
        self.step = data["step"]
        self.vz_ct = data["vz_ct"]
        self.target_ct = data["target_ct"]
        self.opts = data["opts"]
        self.snapshots = data["snapshots"]

    @staticmethod
    def path(ctid):
        return os.path.join(os.path.expanduser(STATE_DIR), f"{ctid}.state")

    # The converter's classes of the two containers the state holds (Ruby objects; their
    # instance variables are the lab's dict keys with an @).
    CLASSES = {"vz_ct": "VpsAdminOS::Converter::Vz6::Container", "target_ct": "VpsAdminOS::Converter::Container"}

    @classmethod
    def load(cls, ctid):
        path = cls.path(ctid)
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            raise Fail(f"No such file or directory @ rb_sysopen - {path}") from None
        try:
            data = ruby_marshal.loads(raw)
        except (ValueError, IndexError):
            data = None
        if not isinstance(data, dict) or not all(k in data for k in ("step", "opts", "snapshots")) \
                or not all(isinstance(data.get(k), ruby_marshal.RubyObject) for k in cls.CLASSES):
            raise Fail("invalid state format")
        for key in cls.CLASSES:
            data[key] = {name[1:]: value for name, value in data[key].ivars.items()}
        data["step"] = str(data["step"])
        data["opts"] = {str(k): v for k, v in data["opts"].items()}
        return cls(ctid, data)

    def can_proceed(self, new):
        if new == self.step:
            return False
        new_i, cur_i = STEPS.index(new), STEPS.index(self.step)
        if new_i < cur_i:
            return False
        if new == "transfer" and self.step == "sync":
            return True
        return not (new != "cancel" and new_i != cur_i + 1)

    def set_step(self, new):
        if not self.can_proceed(new):
            raise Fail("invalid migration sequence")
        self.step = new

    def save(self):
        directory = os.path.expanduser(STATE_DIR)
        if not os.path.isdir(directory):
            os.mkdir(directory, 0o700)
        path = self.path(self.ctid)
        sym, obj = ruby_marshal.Symbol, ruby_marshal.RubyObject
        data = {sym("step"): sym(self.step),
                **{sym(key): obj(cls, {f"@{k}": v for k, v in getattr(self, key).items()})
                   for key, cls in self.CLASSES.items()},
                sym("opts"): {sym(k): v for k, v in self.opts.items()}, sym("snapshots"): list(self.snapshots)}
        with open(path + ".new", "wb") as f:
            os.chmod(path + ".new", 0o700)
            f.write(ruby_marshal.dumps(data))
        os.rename(path + ".new", path)

    def destroy(self):
        os.unlink(self.path(self.ctid))


# ----------------------------------------------------------------------------------------
# Migrators (vz6/migrator/{base,simfs,ploop,zfs}.rb)

class Migrator:
    def __init__(self, state):
        self.state = state
        self.opts = state.opts
        self.ctid = state.vz_ct["ctid"]
        self.id = state.target_ct["id"]

    @staticmethod
    def for_state(state):
        if state.opts["zfs"]:
            return ZfsMigrator(state)
        if state.vz_ct["layout"].startswith("ploop"):
            return PloopMigrator(state)
        return SimfsMigrator(state)

    def vz(self):
        return VzCt(self.ctid, self.state.vz_ct["layout"])

    def stage(self):
        with tempfile.TemporaryFile(prefix=f"ct-{self.id}-skel") as f:
            archive = Archive(f)
            dump_metadata(archive, self.state.target_ct, "skel", "")
            dump_configs(archive, self.state.target_ct)
            archive.finish()
            f.seek(0)
            self.opts["port"] = self.opts.get("port") or 22
            argv = receive_cmd(self.opts, ["receive", "skel"])
            log("> " + " ".join(argv))
            sys.stdout.flush()
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            try:
                while True:
                    chunk = f.read(16 * 1024)
                    if not chunk:
                        break
                    proc.stdin.write(chunk)
                proc.stdin.close()
            except BrokenPipeError:
                pass
            proc.stdout.read()  # IO.popen 'r+': what skel prints is never looked at
            rc = proc.wait()
        if rc != 0:
            raise Fail("stage failed")
        self.state.save()

    def transfer_container(self, start):
        progress("Starting on the target node")
        rc = system(receive_cmd(self.opts, ["receive", "transfer", self.id]
                                + (["start"] if start else [])))
        if rc is None or rc != 0:
            raise Fail("transfer failed")
        self.state.set_step("transfer")
        self.state.save()

    def cancel(self, cmd_opts):
        rc = system(receive_cmd(self.opts, ["receive", "cancel", self.id]))
        if rc is None or (rc != 0 and not cmd_opts.get("force")):
            raise Fail("cancel failed")
        self.state.destroy()


class SimfsMigrator(Migrator):
    def src_rootfs(self):
        return self.state.target_ct["rootfs"]

    def dst_rootfs(self):
        if not hasattr(self, "_dst_rootfs"):
            cmd = " ".join(["ssh", "-o", "StrictHostKeyChecking=no", "-T", "-p",
                            str(self.opts["port"]), "-l", "root", self.opts["dst"],
                            f"osctl -j ct show {self.id}"])
            out = syscmd(cmd)[1].strip()
            try:
                self._dst_rootfs = json.loads(out)["rootfs"]
            except (ValueError, KeyError, TypeError):
                raise Fail(f"unexpected token in JSON: '{out[:40]}'") from None
        return self._dst_rootfs

    def do_sync(self):
        progress("Synchronizing /")
        syscmd("rsync -rlptgoDHX --numeric-ids --inplace --delete-after --exclude .zfs/ "
               f"-e \"ssh -p {self.opts['port']}\" {self.src_rootfs()}/ "
               f"{self.opts['dst']}:{self.dst_rootfs()}/", valid_rcs=(23, 24))

    def sync(self):
        self.do_sync()
        self.state.set_step("sync")
        self.state.save()

    def transfer(self):
        running = self.vz().running()
        syscmd(f"vzctl stop {self.ctid}")
        self.do_sync()
        self.transfer_container(running)

    def cleanup(self, cmd_opts):
        if cmd_opts.get("delete"):
            syscmd(f"vzctl destroy {self.ctid}")
        self.state.destroy()


class PloopMigrator(SimfsMigrator):
    def sync(self):
        mounted = False
        if not self.vz().status()["mounted"]:
            mounted = True
            syscmd(f"vzctl mount {self.ctid}")
        super().sync()
        if mounted:
            syscmd(f"vzctl umount {self.ctid}")

    def transfer(self):
        running = self.vz().running()
        syscmd(f"vzctl stop {self.ctid}")
        syscmd(f"vzctl mount {self.ctid}")
        self.do_sync()
        self.transfer_container(running)
        syscmd(f"vzctl umount {self.ctid}")


class ZfsMigrator(Migrator):
    def check_subdir(self):
        if self.opts.get("zfs_subdir") != "private":
            raise Fail("only zfs-subdir=private is implemented")

    def sync(self):
        self.check_subdir()
        base = self.state.target_ct["dataset"]
        snap = f"converter-migrate-base-{int(time.time())}"
        zfs(f"snapshot -r {base}@{snap}")
        self.state.set_step("sync")
        self.state.snapshots.append(snap)
        self.state.save()
        for ds, rel in datasets(base):
            progress(f"Syncing {rel}")
            snaps = snapshots(ds)
            self.send(ds, rel, snap, snaps[0])
            if len(snaps) > 1:
                self.send(ds, rel, snap, snaps[-1], snaps[0])

    def transfer(self):
        self.check_subdir()
        running = self.vz().running()
        syscmd(f"vzctl stop {self.ctid}")
        base = self.state.target_ct["dataset"]
        snap = f"converter-migrate-incr-{int(time.time())}"
        zfs(f"snapshot -r {base}@{snap}")
        self.state.snapshots.append(snap)
        self.state.save()
        for ds, rel in datasets(base):
            progress(f"Syncing {rel}")
            self.send(ds, rel, snap, snap, self.state.snapshots[-2])
        self.transfer_container(running)

    def send(self, ds, rel, base_snap, snap, from_snap=None):
        """zfs send [-c] -p -L -v [-I @from] ds@snap | ssh ... receive base|incremental."""
        if not profile()["zfs_send_cmd"]:
            raise Fail("undefined method `migrate_ssh_cmd' for an instance of "
                       "VpsAdminOS::Converter::Vz6::Migrator::Zfs")
        send = ["zfs", "send"] + (["-c"] if self.opts.get("zfs_compressed_send") else [])
        send += ["-p", "-L", "-v"] + (["-I", f"@{from_snap}"] if from_snap else [])
        send.append(f"{ds}@{snap}")
        recv = receive_cmd(self.opts, ["receive", "incremental" if from_snap else "base",
                                       self.id, rel] + ([base_snap] if base_snap == snap else []))
        log("> " + " ".join(send) + " | " + " ".join(recv))
        sys.stdout.flush()
        sender = subprocess.Popen(send, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            receiver = subprocess.Popen(recv, stdin=sender.stdout)
        except OSError:
            sender.kill()
            raise Fail("sync failed") from None
        sender.stdout.close()
        sender.stderr.read()  # the -v progress, for the progress bar upstream
        sender.wait()
        if receiver.wait() != 0:
            raise Fail("sync failed")

    def cleanup(self, cmd_opts):
        base = self.state.target_ct["dataset"]
        for ds, _ in datasets(base):
            for snap in self.state.snapshots:
                zfs(f"destroy  {ds}@{snap}")
        if cmd_opts.get("delete"):
            syscmd(f"vzctl destroy {self.ctid}")
            zfs(f"destroy -r {base}")
        self.state.destroy()


# ----------------------------------------------------------------------------------------
# vz6 migrate (cli/vz6/migrate.rb)

def load_migrator(ctid, step):
    migrator = Migrator.for_state(State.load(ctid))
    if not migrator.state.can_proceed(step):
        raise Fail("invalid migration sequence")
    return migrator


def cmd_stage(opts, args):
    require_args(args, "ctid", "dst")
    vz_ct, target_ct = convert_ct(args[0], opts)
    if os.path.exists(State.path(vz_ct.ctid)):
        raise Fail(f"migration for CT {vz_ct.ctid} has already been started")
    state = State(target_ct["id"], {
        "step": "stage",
        "vz_ct": {"ctid": vz_ct.ctid, "layout": vz_ct.layout(),
                  "config": [[k, inspect(v), c] for k, (v, c) in vz_ct.config.items.items()]},
        "target_ct": target_ct,
        "opts": {"dst": args[1], "port": opts.get("port"), "zfs": bool(opts.get("zfs")),
                 "zfs_dataset": opts.get("zfs-dataset"), "zfs_subdir": opts.get("zfs-subdir"),
                 "zfs_compressed_send": bool(opts.get("zfs-compressed-send"))},
        "snapshots": []})
    Migrator.for_state(state).stage()
    vz_ct.config.report()
    toolbox.out()
    toolbox.out("Migration stage successful")
    toolbox.out("Continue with vz6 migrate sync, or abort with vz6 migrate cancel")
    return 0


def cmd_sync(opts, args):
    require_args(args, "ctid")
    load_migrator(args[0], "sync").sync()
    return 0


def cmd_transfer(opts, args):
    require_args(args, "ctid")
    load_migrator(args[0], "transfer").transfer()
    return 0


def cmd_cleanup(opts, args):
    require_args(args, "ctid")
    load_migrator(args[0], "cleanup").cleanup(opts)
    return 0


def cmd_cancel(opts, args):
    require_args(args, "ctid")
    load_migrator(args[0], "cancel").cancel(opts)
    return 0


def cmd_now(opts, args):
    require_args(args, "ctid", "dst")
    toolbox.out("* Staging migration")
    cmd_stage(opts, args)
    if not opts.get("proceed"):
        sys.stdout.write("Do you wish to continue? [y/N]: ")
        sys.stdout.flush()
        line = sys.stdin.readline()
        if not line:
            raise Fail("end of file reached")
        if line.strip().lower() != "y":
            toolbox.out("* Cancelling migration")
            return cmd_cancel(opts, args)
    toolbox.out("* Performing initial synchronization")
    cmd_sync(opts, args)
    toolbox.out("* Transfering container to the destination")
    cmd_transfer(opts, args)
    toolbox.out("* Cleaning up")
    return cmd_cleanup(opts, args)


def cmd_man(opts, args):
    toolbox.out(MAN_TEXT.format(version=profile()["version"]))
    return 0


# ----------------------------------------------------------------------------------------
# The GLI command line

def switch(desc, negatable=True, default=None, short=None):
    return {"kind": "switch", "desc": desc, "negatable": negatable, "default": default,
            "short": short}


def flag(desc, default=None, must_match=None, integer=False, multiple=False, short=None,
         arg="arg"):
    return {"kind": "flag", "desc": desc, "default": default, "must_match": must_match,
            "integer": integer, "multiple": multiple, "short": short, "arg": arg}


def vz6_opts():
    opts = {
        "zfs": switch("Use when the container's private area is on a ZFS dataset"),
        "zfs-dataset": flag("Dataset with the container's private area"),
        "zfs-subdir": flag("Directory in the container's dataset with the rootfs"),
        "zfs-compressed-send": switch("Enable ZFS compressed send (zfs send -c)",
                                      negatable=False),
        "netif-type": flag("Network interface type", default="bridge",
                           must_match=("bridge", "routed")),
        "netif-name": flag("Network interface name within the container", default="eth0"),
        "netif-hwaddr": flag("Network interface hwaddr (MAC)"),
        "bridge-link": flag("Bridge name (for bridged network interface)", default="lxcbr0"),
    }
    if profile()["route_via"]:
        opts.update({
            "route-via": flag("Route via network (for routed network interface)",
                              multiple=True),
            "route-host-addr": flag("Interconnecting address for the host (on routed network "
                                    "interface)", multiple=True),
            "route-ct-addr": flag("Interconnecting address for the container (on routed "
                                  "network interface)", multiple=True),
        })
    opts["vpsadmin"] = switch("Overrides options to conform to vpsAdmin settings, see the "
                              "manual", negatable=False)
    return opts


def port_opt():
    return {"port": flag("SSH port", integer=True, short="p")}


def commands():
    """path -> (description, argument names, options, action)"""
    return {
        ("vz6",): ("Convert containers from OpenVZ Legacy", "", {}, None),
        ("vz6", "export"): (
            "Export OpenVZ container into vpsAdminOS-compatible archive", "<ctid> <file>",
            {"consistent": switch("Stop the container during the export", default=True),
             "compression": flag("Compression", default="gzip",
                                 must_match=("auto", "off", "gzip"), short="c"),
             **vz6_opts()}, cmd_export),
        ("vz6", "migrate"): ("Migrate OpenVZ container onto vpsAdminOS node", "", {}, None),
        ("vz6", "migrate", "stage"): ("Step 1., copy configs to target node", "<id> <dst>",
                                      {**port_opt(), **vz6_opts()}, cmd_stage),
        ("vz6", "migrate", "sync"): ("Step 2., do an initial copy of container rootfs", "<id>",
                                     {}, cmd_sync),
        ("vz6", "migrate", "transfer"): ("Step 3., transfer the container to target node",
                                         "<id>", {}, cmd_transfer),
        ("vz6", "migrate", "cleanup"): (
            "Step 4., cleanup the container on the source node", "<id>",
            {"delete": switch("Delete the container", default=False, short="d")}, cmd_cleanup),
        ("vz6", "migrate", "cancel"): (
            "Cancel ongoing migration in mid-step", "<id>",
            {"force": switch("Cancel the migration on the local node, even if remote fails",
                             negatable=False, short="f")}, cmd_cancel),
        ("vz6", "migrate", "now"): (
            "Migrate container at once (equals to steps 1-4 in succession)", "<id> <dst>",
            {**port_opt(),
             "delete": switch("Delete the container after migration", default=False,
                              short="d"),
             "proceed": switch("Proceed with the migration or ask after successful staging",
                               short="y"),
             **vz6_opts()}, cmd_now),
        ("man",): ("Read man page", "", {}, cmd_man),
    }


def subcommands(path):
    return [p[-1] for p in commands() if len(p) == len(path) + 1 and p[:len(path)] == path]


def option_synopsis(name, spec):
    names = ([f"-{spec['short']}"] if spec.get("short") else [])
    if spec["kind"] == "switch":
        names.append(f"--[no-]{name}" if spec["negatable"] else f"--{name}")
    else:
        names.append(f"--{name}")
    text = ", ".join(names)
    if spec["kind"] == "flag":
        text += f"={spec['arg']}"
    return text


def help_text(path):
    if not path:
        lines = ["NAME", f"    {PROG} - Convert OpenVZ containers into vpsAdminOS", "",
                 "SYNOPSIS", f"    {PROG} [global options] command [command options] "
                 "[arguments...]", "", "VERSION", f"    {profile()['version']}", "",
                 "GLOBAL OPTIONS", "    --help          - Show this message",
                 "    --log-file=arg  - Log file (default: none)",
                 "    --version       - Display the program version", "", "COMMANDS",
                 "    help - Shows a list of commands or help for one command",
                 "    man  - Read man page",
                 "    vz6  - Convert containers from OpenVZ Legacy"]
        return "\n".join(lines) + "\n"
    desc, arg_names, opts, _ = commands()[path]
    subs = subcommands(path)
    synopsis = f"    {PROG} [global options] {' '.join(path)}"
    if subs:
        synopsis += " command [command options] [arguments...]"
    else:
        synopsis += (" [command options]" if opts else "") + (f" {arg_names}" if arg_names else "")
    lines = ["NAME", f"    {path[-1]} - {desc}", "", "SYNOPSIS", synopsis]
    if opts:
        lines += ["", "COMMAND OPTIONS"]
        width = max(len(option_synopsis(n, s)) for n, s in opts.items())
        for name, spec in opts.items():
            text = f"    {option_synopsis(name, spec):<{width}} - {spec['desc']}"
            if spec["kind"] == "flag" and not spec["multiple"]:
                text += f" (default: {spec['default'] if spec['default'] is not None else 'none'})"
            elif spec["kind"] == "switch" and spec["default"] is not None:
                text += f" (default: {'enabled' if spec['default'] else 'disabled'})"
            lines.append(text)
    if subs:
        lines += ["", "COMMANDS"]
        width = max(len(s) for s in subs)
        for sub in subs:
            lines.append(f"    {sub:<{width}} - {commands()[path + (sub,)][0]}")
    return "\n".join(lines) + "\n"


def require_args(args, *names):
    for i, name in enumerate(names):
        if len(args) <= i:
            raise BadCommandLine(f"missing argument <{name}>")


def parse_options(specs, argv, path):
    """OptionParser#order!: options up to the first argument (or `--`)."""
    opts = {name: ([] if spec.get("multiple") else spec["default"]) for name, spec in specs.items()}
    shorts = {spec["short"]: name for name, spec in specs.items() if spec.get("short")}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            i += 1
            break
        if not arg.startswith("-") or arg == "-":
            break
        value = None
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            value = value if eq else None
            negated = False
            if name not in specs and name.startswith("no-") and name[3:] in specs \
                    and specs[name[3:]]["kind"] == "switch" and specs[name[3:]]["negatable"]:
                name, negated = name[3:], True
            if name not in specs:
                raise BadCommandLine(f"invalid option: {arg}", path)
            spec = specs[name]
            if spec["kind"] == "switch":
                if value is not None:
                    raise BadCommandLine(f"needless argument: {arg}", path)
                opts[name] = not negated
                i += 1
                continue
        else:
            letter = arg[1]
            if letter not in shorts:
                raise BadCommandLine(f"invalid option: -{letter}", path)
            name = shorts[letter]
            spec = specs[name]
            if spec["kind"] == "switch":
                opts[name] = True
                rest = arg[2:]
                if rest:
                    argv = argv[:i] + [f"-{rest}"] + argv[i + 1:]
                else:
                    i += 1
                continue
            value = arg[2:] or None
        if value is None:
            if i + 1 >= len(argv):
                raise BadCommandLine(f"missing argument: {arg}", path)
            value = argv[i + 1]
            i += 1
        i += 1
        shown = arg if "=" in arg or not arg.startswith("--") else f"{arg} {value}"
        if spec["must_match"] and value not in spec["must_match"]:
            raise BadCommandLine(f"invalid argument: {shown}", path)
        if spec["integer"]:
            if not re.fullmatch(r"[-+]?\d+", value):
                raise BadCommandLine(f"invalid argument: {shown}", path)
            value = int(value)
        if spec["multiple"]:
            opts[name].append(value)
        else:
            opts[name] = value
    return opts, argv[i:]


def run(argv):
    global_specs = {"log-file": flag("Log file"), "version": switch("", negatable=False),
                    "help": switch("", negatable=False)}
    gopts, rest = parse_options(global_specs, argv, ())
    LOG["file"] = gopts["log-file"]
    if gopts["version"]:
        toolbox.out(f"{PROG} version {profile()['version']}")
        return 0
    if gopts["help"] or not rest:
        sys.stdout.write(help_text(()))
        return 0
    if rest[0] == "help":
        path = tuple(rest[1:])
        if path and path not in commands():
            raise BadCommandLine(f"Unknown command '{' '.join(path)}'")
        sys.stdout.write(help_text(path))
        return 0
    path = ()
    while rest and path + (rest[0],) in commands():
        path += (rest.pop(0),)
        if rest and rest[0] in ("--help", "-h"):
            sys.stdout.write(help_text(path))
            return 0
        _, _, specs, action = commands()[path]
        if action is None:
            opts, rest = parse_options(specs, rest, path)
            continue
        opts, rest = parse_options({**specs, "help": switch("", negatable=False, short="h")},
                                   rest, path)
        if opts.pop("help"):
            sys.stdout.write(help_text(path))
            return 0
        try:
            return action(opts, rest)
        except BadCommandLine as e:
            e.command = path if e.command is None else e.command
            raise
    if not path:
        raise BadCommandLine(f"Unknown command '{rest[0]}'")
    if rest:
        raise BadCommandLine(f"Unknown command '{rest[0]}'", path)
    raise BadCommandLine(f"Command '{path[-1]}' requires a subcommand "
                         f"{','.join(subcommands(path))}", path)


def main(argv):
    try:
        return run(list(argv))
    except BadCommandLine as e:
        toolbox.err(f"error: {e}")
        if e.command is not None:
            sys.stdout.write(help_text(e.command))
        return 64
    except RouteViaMissing as e:  # not rescued by migrate stage/now upstream
        toolbox.err(f"error: {e}")
        return 1
    except Fail as e:
        toolbox.err(f"error: {e}")
        return 1
    except KeyboardInterrupt:
        return 130


MAN_TEXT = """\
VPSADMINOS-CONVERT(8)                                        VPSADMINOS-CONVERT(8)

NAME
    vpsadminos-convert - convert OpenVZ Legacy containers into vpsAdminOS

SYNOPSIS
    vpsadminos-convert [global options] command [command options] [arguments...]

DESCRIPTION
    vpsadminos-convert (version {version}) can export OpenVZ Legacy containers
    into tar archives, which can then be imported by osctl ct import on
    vpsAdminOS nodes. It can also migrate containers to vpsAdminOS nodes
    directly, similarly to vzmigrate.

COMMANDS
    vz6 export [options] <ctid> <file>
    vz6 migrate stage [options] <ctid> <dst>
    vz6 migrate sync <ctid>
    vz6 migrate transfer <ctid>
    vz6 migrate cleanup [-d|--delete] <ctid>
    vz6 migrate cancel [-f|--force] <ctid>
    vz6 migrate now [options] <ctid> <dst>

    The migration state is kept in ~/.vpsadminos-converter/<ctid>.state.
    Authorize the OpenVZ node's root key on the vpsAdminOS node with
    osctl migration authorized-keys add; simfs/ploop containers also need
    the key in /etc/ssh/authorized_keys.d/root (rsync runs as root).
"""


if __name__ == "__main__":
    toolbox.main({"vpsadminos-convert": main, "vpsadminos_convert": main})
