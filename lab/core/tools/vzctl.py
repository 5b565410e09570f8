#!/usr/bin/python3
"""Simulators of the node tools a lab node needs (CentOS 6 / OpenVZ era), one multi-call
program: the node's PATH has a link per tool name (service, crontab, yum, rpm, mount,
umount, vzctl, vzlist, nc) pointing here. Standard library only: it runs inside the node
sandbox on the host's /usr/bin/python3.

Each tool keeps its state on the node's disk, under /var/lib/lab (service states, the mount
table, container states, the rpm database) or where the real tool keeps it
(/var/spool/cron/root, /etc/vz/conf/<veid>.conf). Output and exit codes follow the real
tools: `service` like CentOS 6 initscripts, `yum`/`rpm` like yum 3.2 and rpm 4.8, `mount`/
`umount` like util-linux (exit 32 on a mount failure), `vzctl`/`vzlist` like vzctl 4.
"""

import json
import os
import re
import socket
import sys
import time

STATE = "/var/lib/lab"
MTAB = f"{STATE}/mounts"
CRONTAB = "/var/spool/cron/root"
VZ_CONF = "/etc/vz/conf"

# What the lab's yum repositories offer: name -> version-release.arch
YUM_CATALOG = {
    "nc": "1.84-24.el6.x86_64",
    "rsync": "3.0.6-12.el6.x86_64",
    "screen": "4.0.3-19.el6.x86_64",
    "git": "1.7.1-9.el6_9.x86_64",
}


def out(text=""):
    sys.stdout.write(text + ("\n" if text and not text.endswith("\n") else ""))


def err(text):
    sys.stderr.write(text.rstrip("\n") + "\n")


def read(path, default=None):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return default


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


# -- service ---------------------------------------------------------------------------------

def service_state(name):
    return (read(f"{STATE}/services/{name}", "stopped") or "stopped").strip()


def service(args):
    if len(args) < 2:
        err("Usage: service < option > | --status-all | [ service_name [ command | --full-restart ] ]")
        return 1
    name, action = args[0], args[1]
    if not os.path.exists(f"/etc/init.d/{name}"):
        err(f"{name}: unrecognized service")
        return 1
    state = service_state(name)
    pid = read(f"{STATE}/services/{name}.pid", "").strip() or str(1000 + sum(map(ord, name)))
    label = f"{action.capitalize()}ing {name}:".replace("Stoping", "Stopping")
    if action == "status":
        if state == "running":
            out(f"{name} (pid  {pid}) is running...")
            return 0
        out(f"{name} is stopped")
        return 3
    if action == "start":
        if state == "running":
            out(f"{label:<60}[  OK  ]")
            return 0
        write(f"{STATE}/services/{name}", "running\n")
        out(f"{label:<60}[  OK  ]")
        return 0
    if action == "stop":
        if state != "running":
            out(f"{label:<60}[FAILED]")
            return 1
        write(f"{STATE}/services/{name}", "stopped\n")
        out(f"{label:<60}[  OK  ]")
        return 0
    if action == "restart":
        write(f"{STATE}/services/{name}", "running\n")
        out(f"{'Stopping ' + name + ':':<60}[  OK  ]")
        out(f"{'Starting ' + name + ':':<60}[  OK  ]")
        return 0
    err(f"Usage: /etc/init.d/{name} {{start|stop|restart|status}}")
    return 2


# -- crontab (cronie) -------------------------------------------------------------------------

CRON_LINE = re.compile(r"^\s*(@(reboot|yearly|annually|monthly|weekly|daily|hourly)\s+\S|(\S+\s+){5}\S)")
CRON_ENV = re.compile(r"^\s*[A-Za-z_][A-Za-z0-9_]*\s*=")


def crontab(args):
    user = "root"
    if args[:1] == ["-u"]:
        user, args = args[1], args[2:]
    path = f"/var/spool/cron/{user}"
    if args == ["-l"]:
        text = read(path)
        if text is None:
            err(f"no crontab for {user}")
            return 1
        sys.stdout.write(text)
        return 0
    if args == ["-r"]:
        if read(path) is None:
            err(f"no crontab for {user}")
            return 1
        os.unlink(path)
        return 0
    if len(args) == 1:
        text = sys.stdin.read() if args[0] == "-" else read(args[0])
        if text is None:
            err(f"{args[0]}: No such file or directory")
            return 1
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#") or CRON_ENV.match(line):
                continue
            if not CRON_LINE.match(line):
                err(f'"-":{number}: bad minute')
                err("errors in crontab file, can't install.")
                return 1
        if text and not text.endswith("\n"):
            err('new crontab file is missing newline before EOF, can\'t install.')
            return 1
        write(path, text)
        return 0
    err("usage:\tcrontab [-u user] file\n\tcrontab [-u user] [ -e | -l | -r ]")
    return 1


# -- yum / rpm --------------------------------------------------------------------------------

def rpm_installed(name):
    return read(f"{STATE}/rpm/{name}")


def rpm(args):
    if args[:1] != ["-q"] or len(args) < 2:
        err("rpm: only -q is available on this node")
        return 1
    status = 0
    for name in args[1:]:
        version = rpm_installed(name)
        if version:
            out(f"{name}-{version.strip()}")
        else:
            out(f"package {name} is not installed")
            status = 1
    return status


def install_binary(name):
    """Make the installed package's program runnable: the lab ships it as this multi-call tool."""
    link = f"/usr/local/bin/{name}"
    if name in ("nc",) and not os.path.lexists(link):
        os.symlink("/usr/local/lib/airlift-lab/labtool.py", link)


def yum(args):
    assume_yes = "-y" in args or "--assumeyes" in args
    words = [a for a in args if not a.startswith("-")]
    if not words:
        err("You need to give some command")
        return 1
    command, packages = words[0], words[1:]
    if command == "list" and packages[:1] == ["installed"]:
        out("Installed Packages")
        for name in sorted(os.listdir(f"{STATE}/rpm")) if os.path.isdir(f"{STATE}/rpm") else []:
            out(f"{name:<40}{rpm_installed(name).strip():<30}@base")
        return 0
    if command != "install":
        err(f"No such command: {command}. Please use /usr/bin/yum --help")
        return 1
    out("Loaded plugins: fastestmirror")
    missing = [p for p in packages if p not in YUM_CATALOG]
    if missing:
        for p in missing:
            out(f"No package {p} available.")
        if len(missing) == len(packages):
            err("Error: Nothing to do")
            return 1
    todo = [p for p in packages if p in YUM_CATALOG and not rpm_installed(p)]
    for p in packages:
        if p in YUM_CATALOG and rpm_installed(p):
            out(f"Package {p}-{YUM_CATALOG[p]} already installed and latest version")
    if not todo:
        out("Nothing to do")
        return 0
    out("Resolving Dependencies\n--> Running transaction check")
    for p in todo:
        out(f"---> Package {p}.x86_64 0:{YUM_CATALOG[p].rsplit('.', 1)[0]} will be installed")
    out("\nTransaction Summary\n" + "=" * 80)
    out(f"Install       {len(todo)} Package(s)\n")
    if not assume_yes:
        sys.stdout.write("Is this ok [y/N]: ")
        sys.stdout.flush()
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            out("Exiting on user Command")
            return 1
    out("Downloading Packages:\nRunning Transaction\n")
    for p in todo:
        write(f"{STATE}/rpm/{p}", YUM_CATALOG[p] + "\n")
        install_binary(p)
        out(f"  Installing : {p}-{YUM_CATALOG[p].replace('.x86_64', '')}.x86_64{'1/1':>30}")
    out("\nInstalled:\n  " + "  ".join(f"{p}.x86_64 0:{YUM_CATALOG[p].rsplit('.', 1)[0]}" for p in todo))
    out("\nComplete!")
    return 0


# -- nc (the nc package, once installed) ------------------------------------------------------

def nc(args):
    zero_io = "-z" in args
    words = [a for a in args if not a.startswith("-")]
    if len(words) != 2:
        err("usage: nc [-z] hostname port")
        return 1
    host, port = words
    try:
        conn = socket.create_connection((host, int(port)), timeout=5)
    except OSError as e:
        err(f"nc: connect to {host} port {port} (tcp) failed: {e.strerror}")
        return 1
    if not zero_io:
        conn.sendall(sys.stdin.buffer.read())
        conn.shutdown(socket.SHUT_WR)
        while data := conn.recv(65536):
            sys.stdout.buffer.write(data)
    conn.close()
    return 0


# -- mount / umount ---------------------------------------------------------------------------

def mounts():
    rows = []
    for line in (read(MTAB, "") or "").splitlines():
        parts = line.split("\t")
        if len(parts) == 4:
            rows.append(parts)
    return rows


def save_mounts(rows):
    write(MTAB, "".join("\t".join(r) + "\n" for r in rows))


def mount(args):
    if not args:
        for src, dst, fstype, opts in mounts():
            out(f"{src} on {dst} type {fstype} ({opts})")
        return 0
    fstype, opts, words, i = "none", "rw", [], 0
    while i < len(args):
        a = args[i]
        if a == "-t":
            fstype, i = args[i + 1], i + 2
        elif a.startswith("-t") and len(a) > 2:
            fstype, i = a[2:], i + 1
        elif a == "-o":
            opts, i = args[i + 1], i + 2
        elif a.startswith("-o") and len(a) > 2:
            opts, i = a[2:], i + 1
        elif a in ("--bind", "-B"):
            fstype, opts, i = "none", "rw,bind", i + 1
        elif a.startswith("-"):
            i += 1
        else:
            words.append(a)
            i += 1
    if len(words) != 2:
        err("Usage: mount -V                 : print version\n       mount [-t type] [-o opts] source target")
        return 1
    src, dst = words
    dst = os.path.normpath(dst)
    if not os.path.isdir(dst):
        err(f"mount: mount point {dst} does not exist")
        return 32
    rows = mounts()
    if any(r[1] == dst for r in rows):
        if fstype.startswith("nfs") or ":/" in src:  # the mount.nfs helper words it so
            err(f"mount.nfs: {dst} is busy or already mounted")
        else:
            err(f"mount: {src} is already mounted or {dst} busy")
        return 32
    rows.append([src, dst, fstype, opts])
    save_mounts(rows)
    return 0


def umount(args):
    targets = [a for a in args if not a.startswith("-")]
    if not targets:
        err("Usage: umount [-hV]\n       umount -a [-f] [-r] [-n] [-v] [-t vfstypes] [-O opts]\n"
            "       umount [-f] [-r] [-n] [-v] special | node...")
        return 1
    rows, status = mounts(), 0
    for target in targets:
        target = os.path.normpath(target)
        keep = [r for r in rows if r[1] != target and r[0] != target]
        if len(keep) == len(rows):
            err(f"umount: {target}: not mounted")
            status = 32
        rows = keep
    save_mounts(rows)
    return status


# -- vzctl / vzlist ---------------------------------------------------------------------------

def ve_conf(veid):
    text = read(f"{VZ_CONF}/{veid}.conf")
    if text is None:
        return None
    conf = {}
    for line in text.splitlines():
        m = re.match(r'^\s*([A-Z_]+)="?(.*?)"?\s*$', line)
        if m:
            conf[m.group(1)] = m.group(2).replace("$VEID", str(veid))
    return conf


def ve_running(veid):
    return (read(f"{STATE}/vz/{veid}", "stopped") or "").strip() == "running"


def all_veids():
    if not os.path.isdir(VZ_CONF):
        return []
    ids = [int(f[:-5]) for f in os.listdir(VZ_CONF) if re.fullmatch(r"\d+\.conf", f) and f != "0.conf"]
    return sorted(ids)


def vzctl(args):
    if len(args) < 2 or not args[1].isdigit():
        err("Usage: vzctl [options] <command> <ctid> [parameters]")
        return 2
    command, veid = args[0], int(args[1])
    conf = ve_conf(veid)
    if command == "status":
        if conf is None:
            out(f"VEID {veid} deleted unmounted down")
        elif ve_running(veid):
            out(f"VEID {veid} exist mounted running")
        else:
            out(f"VEID {veid} exist unmounted down")
        return 0
    if conf is None:
        err("Container config file does not exist")
        return 44
    if command == "start":
        if ve_running(veid):
            err("Container is already running")
            return 32
        write(f"{STATE}/vz/{veid}", "running\n")
        out("Starting container...\nContainer is mounted\nContainer start in progress...")
        return 0
    if command == "stop":
        if not ve_running(veid):
            err("Unable to stop: container is not running")
            return 0
        write(f"{STATE}/vz/{veid}", "stopped\n")
        out("Stopping container ...\nContainer was stopped\nContainer is unmounted")
        return 0
    if command == "restart":
        write(f"{STATE}/vz/{veid}", "running\n")
        out("Restarting container\nStopping container ...\nContainer was stopped\n"
            "Starting container...\nContainer start in progress...")
        return 0
    err(f"Invalid action: {command}")
    return 2


VZLIST_FIELDS = {
    "ctid": ("CTID", lambda v, c: v), "veid": ("CTID", lambda v, c: v),
    "numproc": ("NPROC", lambda v, c: 23 if ve_running(v) else "-"),
    "status": ("STATUS", lambda v, c: "running" if ve_running(v) else "stopped"),
    "ip": ("IP_ADDR", lambda v, c: c.get("IP_ADDRESS", "-").strip() or "-"),
    "hostname": ("HOSTNAME", lambda v, c: c.get("HOSTNAME", "-")),
    "onboot": ("ONBOOT", lambda v, c: c.get("ONBOOT", "no")),
    "private": ("PRIVATE", lambda v, c: c.get("VE_PRIVATE", f"/vz/private/{v}")),
    "root": ("ROOT", lambda v, c: c.get("VE_ROOT", f"/vz/root/{v}")),
    "ostemplate": ("OSTEMPLATE", lambda v, c: c.get("OSTEMPLATE", "-")),
    "physpages": ("PHYSP.L", lambda v, c: ubc(c, "PHYSPAGES")["limit"]),
    "swappages": ("SWAPP.L", lambda v, c: ubc(c, "SWAPPAGES")["limit"]),
    "cpus": ("CPUS", lambda v, c: c.get("CPUS", "-")),
    "cpulimit": ("CPULIM", lambda v, c: c.get("CPULIMIT", "-")),
}
UNLIMITED = 9223372036854775807


def ubc(conf, name):
    """A beancounter "barrier:limit" of the container config (unset is unlimited)."""
    barrier, _, limit = conf.get(name, f"{UNLIMITED}:{UNLIMITED}").partition(":")
    return {"held": 0, "maxheld": 0, "barrier": int(barrier), "limit": int(limit or barrier),
            "failcnt": 0}


def vzlist_json_value(field, veid, conf):
    """vzlist -j types: numbers, booleans, lists and beancounter objects, null when unset."""
    if field in ("ctid", "veid"):
        return veid
    if field == "onboot":
        return conf.get("ONBOOT", "no") == "yes"
    if field == "ip":
        return conf.get("IP_ADDRESS", "").split()
    if field in ("physpages", "swappages"):
        return ubc(conf, field.upper())
    if field in ("cpus", "cpulimit"):
        value = conf.get(field.upper())
        return int(value) if value and value.isdigit() else None
    if field == "numproc":
        return 23 if ve_running(veid) else None
    return VZLIST_FIELDS[field][1](veid, conf)


def vzlist(args):
    # getopt: short flags combine (`vzlist -aj -o ...`)
    args = [
        x for a in args for x in ([f"-{c}" for c in a[1:]] if re.fullmatch(r"-[aHj]{2,}", a) else [a])]
    show_all = "-a" in args or "--all" in args
    no_header = "-H" in args or "--no-header" in args
    as_json = "-j" in args or "--json" in args
    fields = ["ctid", "numproc", "status", "ip", "hostname"]
    for i, a in enumerate(args):
        if a in ("-o", "--output"):
            fields = args[i + 1].split(",")
    unknown = [f for f in fields if f not in VZLIST_FIELDS]
    if unknown:
        err(f"Unknown field: {unknown[0]}")
        return 1
    veids = [v for v in all_veids() if show_all or ve_running(v)]
    rows = [[VZLIST_FIELDS[f][1](v, ve_conf(v) or {}) for f in fields] for v in veids]
    if as_json:
        out(json.dumps([{f: vzlist_json_value(f, v, ve_conf(v) or {}) for f in fields} for v in veids],
                       indent=2))
        return 0
    if not rows and not show_all:
        err("Container(s) not found")
        return 1
    if not no_header:
        out(" ".join(f"{VZLIST_FIELDS[f][0]:>10}" for f in fields))
    for r in rows:
        out(" ".join(f"{str(x):>10}" for x in r))
    return 0


TOOLS = {
    "service": service, "crontab": crontab, "yum": yum, "rpm": rpm, "nc": nc,
    "mount": mount, "umount": umount, "vzctl": vzctl, "vzlist": vzlist,
}


def main():
    name = os.path.basename(sys.argv[0])
    tool = TOOLS.get(name)
    if tool is None:
        err(f"labtool: unknown tool name {name}")
        return 127
    try:
        return tool(sys.argv[1:])
    except BrokenPipeError:
        return 141


if __name__ == "__main__":
    time.tzset()
    sys.exit(main())
