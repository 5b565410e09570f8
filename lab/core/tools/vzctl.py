#!/usr/bin/python3
"""`vzctl` and `vzlist` of vzctl 4 (OpenVZ on CentOS 6 / Scientific Linux 6) for a lab node, one
multi-call program (the node's PATH links both here). Standard library only: it runs inside the
node sandbox on the host's /usr/bin/python3.

Containers are their configs, /etc/vz/conf/<ctid>.conf (as vzctl keeps them), and their
states, /var/lib/lab/vz/<ctid>: "running", "mounted" (stopped, its root mounted) or "stopped".
`vzctl status|start|stop|restart|mount|umount|destroy` and `vzlist [-a] [-H] [-j] [-o fields]
[ctid...]` answer from them with vzctl's words, exit codes and `vzlist -j` types
(kolyshkin/vzctl: src/vzctl-actions.c, src/lib/fs.c, src/lib/destroy.c, src/vzlist.c).

Mounting. A config with VE_LAYOUT (what vzctl 4 writes; the OpenVZ world's containers) has its
files where that layout keeps them and shows them at VE_ROOT only while mounted:
- simfs (also a container whose VE_PRIVATE lies in a ZFS dataset): the tree is VE_PRIVATE;
- ploop: the tree is inside the image directory, VE_PRIVATE/root.hdd/fs (beside the image's
  DiskDescriptor.xml and the `root.hds` image file, here a marker), so it is reachable only
  through VE_ROOT while mounted, as a ploop image's ext4 is.
The lab has no bind or ploop mounts: a mounted container's VE_ROOT is a relative symlink to the
tree (so `ls /vz/root/102/etc`, `tar -C /vz/root/102 .` and `rsync /vz/root/102/ ...` see the
container's files), an unmounted one's VE_ROOT an empty directory. `vzctl mount` and `start`
mount, `umount` and `stop` unmount. A config without VE_LAYOUT (the vpsAdmin world's, whose
mount points live in the plain directory VE_ROOT) keeps VE_ROOT as it is; only its state
changes.

Locking. start, stop, restart, mount, umount and destroy hold an flock on
/var/lib/lab/vz/<ctid>.lock while they change the state; the lab's running containers
(lab/openvz/runtime.py) take the same lock around each write, so once `vzctl stop` returned no
write of the container lands any more.
"""

import contextlib
import fcntl
import json
import os
import re
import shutil

if __package__:  # imported on the host (lab.core.tools.vzctl)
    from lab.core.tools import toolbox
else:  # run as a program: toolbox.py is next to it
    import toolbox

VZ_CONF = "/etc/vz/conf"
VZ_STATE = f"{toolbox.STATE}/vz"
# Where a ploop container's files are inside its VE_PRIVATE (the lab's stand-in for the
# image's ext4), and the image file beside them.
PLOOP_TREE = "root.hdd/fs"
PLOOP_IMAGE = "root.hdd/root.hds"

# vzctl's exit codes (src/include/vzerror.h)
VZ_VE_RUNNING = 32
VZ_FS_NOT_MOUNTED = 40
VZ_FS_MOUNTED = 41
VZ_FS_NOPRVT = 43
VZ_VE_CONFIG_NOT_EXIST = 44


def parse_conf(text, ctid):
    """A container config's KEY="value" lines ($VEID and ${VEID} filled in)."""
    conf = {}
    for line in text.splitlines():
        m = re.match(r'^\s*([A-Z_0-9]+)="?(.*?)"?\s*$', line)
        if m and not line.lstrip().startswith("#"):
            conf[m.group(1)] = m.group(2).replace("${VEID}", str(ctid)).replace("$VEID", str(ctid))
    return conf


def ve_conf(ctid, root="/"):
    text = toolbox.read(os.path.join(root, VZ_CONF.lstrip("/"), f"{ctid}.conf"))
    return None if text is None else parse_conf(text, ctid)


def ve_state(ctid, root="/"):
    """"running", "mounted" or "stopped"."""
    state = (toolbox.read(os.path.join(root, VZ_STATE.lstrip("/"), str(ctid)), "") or "").strip()
    return state if state in ("running", "mounted") else "stopped"


def ve_running(ctid):
    return ve_state(ctid) == "running"


def ve_mounted(ctid):
    return ve_state(ctid) in ("running", "mounted")


def set_state(ctid, state):
    toolbox.write(f"{VZ_STATE}/{ctid}", state + "\n")


@contextlib.contextmanager
def ct_lock(ctid, root="/"):
    """The container's lock (vzctl's state changes and the lab's container writes)."""
    directory = os.path.join(root, VZ_STATE.lstrip("/"))
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, f"{ctid}.lock"), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def private_dir(ctid, conf):
    return conf.get("VE_PRIVATE", f"/vz/private/{ctid}")


def root_dir(ctid, conf):
    return conf.get("VE_ROOT", f"/vz/root/{ctid}")


def tree(ctid, conf):
    """The node path of the container's files: VE_PRIVATE, or a ploop image's tree."""
    private = private_dir(ctid, conf)
    if conf.get("VE_LAYOUT", "simfs").startswith("ploop"):
        return f"{private.rstrip('/')}/{PLOOP_TREE}"
    return private


def show_root(ctid, conf, root="/"):
    """Mount: VE_ROOT becomes a relative symlink to the container's tree (see above)."""
    if "VE_LAYOUT" not in conf:
        return
    ve_root = root_dir(ctid, conf)
    at = os.path.join(root, ve_root.lstrip("/"))
    if os.path.islink(at):
        os.unlink(at)
    elif os.path.isdir(at):
        os.rmdir(at)  # an empty mount point (a non-empty one fails loudly)
    os.makedirs(os.path.dirname(at), exist_ok=True)
    os.symlink(os.path.relpath(tree(ctid, conf), os.path.dirname(ve_root)), at)


def hide_root(ctid, conf, root="/"):
    """Unmount: VE_ROOT becomes an empty directory again."""
    if "VE_LAYOUT" not in conf:
        return
    at = os.path.join(root, root_dir(ctid, conf).lstrip("/"))
    if os.path.islink(at):
        os.unlink(at)
    os.makedirs(at, exist_ok=True)


def all_ctids():
    if not os.path.isdir(VZ_CONF):
        return []
    ids = [int(f[:-5]) for f in os.listdir(VZ_CONF) if re.fullmatch(r"\d+\.conf", f) and f != "0.conf"]
    return sorted(ids)


def _mount(ctid, conf):
    """vps_mount: 0, or VZ_FS_NOPRVT when the private area is missing."""
    if not os.path.isdir(private_dir(ctid, conf)):
        toolbox.err(f"Container private area {private_dir(ctid, conf)} does not exist")
        return VZ_FS_NOPRVT
    show_root(ctid, conf)
    return 0


def _start(ctid, conf):
    if not os.path.isdir(private_dir(ctid, conf)) and "VE_LAYOUT" in conf:
        toolbox.err(f"Container private area {private_dir(ctid, conf)} does not exist")
        return VZ_FS_NOPRVT
    if ve_running(ctid):
        toolbox.err("Container is already running")
        return VZ_VE_RUNNING
    toolbox.out("Starting container...")
    if not ve_mounted(ctid):
        show_root(ctid, conf)
        toolbox.out("Container is mounted")
    set_state(ctid, "running")
    toolbox.out("Container start in progress...")
    return 0


def _stop(ctid, conf):
    if not ve_running(ctid):
        toolbox.err("Unable to stop: container is not running")
        return 0
    toolbox.out("Stopping container ...")
    set_state(ctid, "stopped")
    hide_root(ctid, conf)
    toolbox.out("Container was stopped\nContainer is unmounted")
    return 0


def _destroy(ctid, conf):
    if ve_running(ctid):
        toolbox.out("Container is currently running. Stop it first.")
        return VZ_VE_RUNNING
    if ve_mounted(ctid):
        toolbox.out("Container is currently mounted (umount first)")
        return VZ_FS_MOUNTED
    private = private_dir(ctid, conf)
    toolbox.out(f"Destroying container private area: {private}")
    if os.path.islink(private) or os.path.isfile(private):
        os.unlink(private)
    elif os.path.isdir(private):
        shutil.rmtree(private)
    for ext in ("conf", "mount", "umount", "start", "stop"):  # move_config(veid, BACKUP)
        path = f"{VZ_CONF}/{ctid}.{ext}"
        if os.path.exists(path):
            os.replace(path, f"{path}.destroyed")
    ve_root = root_dir(ctid, conf)
    if os.path.islink(ve_root):
        os.unlink(ve_root)
    else:
        with contextlib.suppress(OSError):
            os.rmdir(ve_root)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(f"{VZ_STATE}/{ctid}")
    toolbox.out("Container private area was destroyed")
    return 0


def vzctl(args):
    if len(args) < 2 or not args[1].isdigit():
        toolbox.err("Usage: vzctl [options] <command> <ctid> [parameters]")
        return 2
    command, ctid = args[0], int(args[1])
    conf = ve_conf(ctid)
    if command == "status":
        exist = conf is not None and ("VE_LAYOUT" not in conf or os.path.exists(private_dir(ctid, conf)))
        state = ve_state(ctid) if conf is not None else "stopped"
        toolbox.out(f"CTID {ctid} {'exist' if exist else 'deleted'} "
                    f"{'mounted' if state != 'stopped' else 'unmounted'} "
                    f"{'running' if state == 'running' else 'down'}")
        return 0
    if conf is None:
        toolbox.err("Container config file does not exist")
        return VZ_VE_CONFIG_NOT_EXIST
    if command not in ("start", "stop", "restart", "mount", "umount", "destroy", "delete"):
        toolbox.err(f"Invalid action: {command}")
        return 2
    with ct_lock(ctid):
        if command == "start":
            return _start(ctid, conf)
        if command == "stop":
            return _stop(ctid, conf)
        if command == "restart":
            toolbox.out("Restarting container")
            if ve_running(ctid):
                _stop(ctid, conf)
            return _start(ctid, conf)
        if command == "mount":
            if ve_mounted(ctid):
                toolbox.err("Container is already mounted")
                return 0
            rc = _mount(ctid, conf)
            if rc == 0:
                set_state(ctid, "mounted")
                toolbox.out("Container is mounted")
            return rc
        if command == "umount":
            if not ve_mounted(ctid):
                toolbox.err("CT is not mounted")
                return VZ_FS_NOT_MOUNTED
            if ve_running(ctid):
                toolbox.err("Container is running -- stop it first")
                return VZ_VE_RUNNING
            hide_root(ctid, conf)
            set_state(ctid, "stopped")
            toolbox.out("Container is unmounted")
            return 0
        return _destroy(ctid, conf)


VZLIST_FIELDS = {
    "ctid": ("CTID", lambda v, c: v), "veid": ("CTID", lambda v, c: v),
    "numproc": ("NPROC", lambda v, c: 23 if ve_running(v) else "-"),
    "status": ("STATUS", lambda v, c: ve_state(v)),
    "ip": ("IP_ADDR", lambda v, c: c.get("IP_ADDRESS", "-").strip() or "-"),
    "hostname": ("HOSTNAME", lambda v, c: c.get("HOSTNAME", "-")),
    "onboot": ("ONBOOT", lambda v, c: c.get("ONBOOT", "no")),
    "private": ("PRIVATE", lambda v, c: private_dir(v, c)),
    "root": ("ROOT", lambda v, c: root_dir(v, c)),
    "layout": ("LAYOUT", lambda v, c: c.get("VE_LAYOUT", "simfs")),
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
    barrier = UNLIMITED if barrier == "unlimited" else int(barrier)
    limit = barrier if not limit else UNLIMITED if limit == "unlimited" else int(limit)
    return {"held": 0, "maxheld": 0, "barrier": barrier, "limit": limit, "failcnt": 0}


def vzlist_json_value(field, ctid, conf):
    """vzlist -j types: numbers, booleans, lists and beancounter objects, null when unset."""
    if field in ("ctid", "veid"):
        return ctid
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
        return 23 if ve_running(ctid) else None
    return VZLIST_FIELDS[field][1](ctid, conf)


def vzlist(args):
    # getopt: short flags combine (`vzlist -aj -o ...`)
    args = [
        x for a in args for x in ([f"-{c}" for c in a[1:]] if re.fullmatch(r"-[aHj]{2,}", a) else [a])]
    show_all = "-a" in args or "--all" in args
    no_header = "-H" in args or "--no-header" in args
    as_json = "-j" in args or "--json" in args
    fields = ["ctid", "numproc", "status", "ip", "hostname"]
    named = []
    for i, a in enumerate(args):
        if a in ("-o", "--output"):
            fields = args[i + 1].split(",")
        elif a.isdigit() and (i == 0 or args[i - 1] not in ("-o", "--output")):
            named.append(int(a))
    unknown = [f for f in fields if f not in VZLIST_FIELDS]
    if unknown:
        toolbox.err(f"Unknown field: {unknown[0]}")
        return 1
    if named:  # explicit ids: listed whatever their state
        existing = set(all_ctids())
        ctids = [v for v in named if v in existing]
    else:
        ctids = [v for v in all_ctids() if show_all or ve_running(v)]
    if named and not ctids:
        toolbox.err("Container(s) not found")
        return 1
    rows = [[VZLIST_FIELDS[f][1](v, ve_conf(v) or {}) for f in fields] for v in ctids]
    if as_json:
        toolbox.out(json.dumps([{f: vzlist_json_value(f, v, ve_conf(v) or {}) for f in fields}
                                for v in ctids], indent=2))
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
