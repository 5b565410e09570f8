#!/usr/bin/python3
"""`vzctl` and `vzlist` of vzctl 4 (OpenVZ on CentOS 6) for a lab node, one multi-call program
(the node's PATH links both here). Standard library only: it runs inside the node sandbox on
the host's /usr/bin/python3.

Containers are their configs, /etc/vz/conf/<veid>.conf (as vzctl keeps them), and their
states, /var/lib/lab/vz/<veid> ("running"/"stopped"). `vzctl status|start|stop|restart`
and `vzlist [-a] [-H] [-j] [-o fields]` answer from them with vzctl's words, exit codes
and `vzlist -j` types.
"""

import json
import os
import re

if __package__:  # imported on the host (lab.core.tools.vzctl)
    from lab.core.tools import toolbox
else:  # run as a program: toolbox.py is next to it
    import toolbox

VZ_CONF = "/etc/vz/conf"
VZ_STATE = f"{toolbox.STATE}/vz"


def ve_conf(veid):
    text = toolbox.read(f"{VZ_CONF}/{veid}.conf")
    if text is None:
        return None
    conf = {}
    for line in text.splitlines():
        m = re.match(r'^\s*([A-Z_]+)="?(.*?)"?\s*$', line)
        if m:
            conf[m.group(1)] = m.group(2).replace("$VEID", str(veid))
    return conf


def ve_running(veid):
    return (toolbox.read(f"{VZ_STATE}/{veid}", "stopped") or "").strip() == "running"


def all_veids():
    if not os.path.isdir(VZ_CONF):
        return []
    ids = [int(f[:-5]) for f in os.listdir(VZ_CONF) if re.fullmatch(r"\d+\.conf", f) and f != "0.conf"]
    return sorted(ids)


def vzctl(args):
    if len(args) < 2 or not args[1].isdigit():
        toolbox.err("Usage: vzctl [options] <command> <ctid> [parameters]")
        return 2
    command, veid = args[0], int(args[1])
    conf = ve_conf(veid)
    if command == "status":
        if conf is None:
            toolbox.out(f"VEID {veid} deleted unmounted down")
        elif ve_running(veid):
            toolbox.out(f"VEID {veid} exist mounted running")
        else:
            toolbox.out(f"VEID {veid} exist unmounted down")
        return 0
    if conf is None:
        toolbox.err("Container config file does not exist")
        return 44
    if command == "start":
        if ve_running(veid):
            toolbox.err("Container is already running")
            return 32
        toolbox.write(f"{VZ_STATE}/{veid}", "running\n")
        toolbox.out("Starting container...\nContainer is mounted\nContainer start in progress...")
        return 0
    if command == "stop":
        if not ve_running(veid):
            toolbox.err("Unable to stop: container is not running")
            return 0
        toolbox.write(f"{VZ_STATE}/{veid}", "stopped\n")
        toolbox.out("Stopping container ...\nContainer was stopped\nContainer is unmounted")
        return 0
    if command == "restart":
        toolbox.write(f"{VZ_STATE}/{veid}", "running\n")
        toolbox.out("Restarting container\nStopping container ...\nContainer was stopped\n"
            "Starting container...\nContainer start in progress...")
        return 0
    toolbox.err(f"Invalid action: {command}")
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
        toolbox.err(f"Unknown field: {unknown[0]}")
        return 1
    veids = [v for v in all_veids() if show_all or ve_running(v)]
    rows = [[VZLIST_FIELDS[f][1](v, ve_conf(v) or {}) for f in fields] for v in veids]
    if as_json:
        toolbox.out(json.dumps([{f: vzlist_json_value(f, v, ve_conf(v) or {}) for f in fields}
                                for v in veids], indent=2))
        return 0
    if not rows and not show_all:
        toolbox.err("Container(s) not found")
        return 1
    if not no_header:
        toolbox.out(" ".join(f"{VZLIST_FIELDS[f][0]:>10}" for f in fields))
    for r in rows:
        toolbox.out(" ".join(f"{str(x):>10}" for x in r))
    return 0


if __name__ == "__main__":
    toolbox.main({"vzctl": vzctl, "vzlist": vzlist})
