#!/usr/bin/python3
"""`mount` and `umount` of util-linux (CentOS 6) for a lab node, one multi-call program (the
node's PATH links both here). Standard library only: it runs inside the node sandbox on the
host's /usr/bin/python3.

Nothing is mounted for real: the mount table is /var/lib/lab/mounts, one "source<TAB>target
<TAB>type<TAB>options" line per mount. Messages and exit codes follow util-linux (32 on a
mount failure) and the mount.nfs helper ("is busy or already mounted").
"""

import os

if __package__:  # imported on the host (lab.core.tools.util_linux)
    from lab.core.tools import toolbox
else:  # run as a program: toolbox.py is next to it
    import toolbox

MTAB = f"{toolbox.STATE}/mounts"


def mounts():
    rows = []
    for line in (toolbox.read(MTAB, "") or "").splitlines():
        parts = line.split("\t")
        if len(parts) == 4:
            rows.append(parts)
    return rows


def save_mounts(rows):
    toolbox.write(MTAB, "".join("\t".join(r) + "\n" for r in rows))


def mount(args):
    if not args:
        for src, dst, fstype, opts in mounts():
            toolbox.out(f"{src} on {dst} type {fstype} ({opts})")
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
        toolbox.err("Usage: mount -V                 : print version\n"
                    "       mount [-t type] [-o opts] source target")
        return 1
    src, dst = words
    dst = os.path.normpath(dst)
    if not os.path.isdir(dst):
        toolbox.err(f"mount: mount point {dst} does not exist")
        return 32
    rows = mounts()
    if any(r[1] == dst for r in rows):
        if fstype.startswith("nfs") or ":/" in src:  # the mount.nfs helper words it so
            toolbox.err(f"mount.nfs: {dst} is busy or already mounted")
        else:
            toolbox.err(f"mount: {src} is already mounted or {dst} busy")
        return 32
    rows.append([src, dst, fstype, opts])
    save_mounts(rows)
    return 0


def umount(args):
    targets = [a for a in args if not a.startswith("-")]
    if not targets:
        toolbox.err("Usage: umount [-hV]\n       umount -a [-f] [-r] [-n] [-v] [-t vfstypes] [-O opts]\n"
                    "       umount [-f] [-r] [-n] [-v] special | node...")
        return 1
    rows, status = mounts(), 0
    for target in targets:
        target = os.path.normpath(target)
        keep = [r for r in rows if r[1] != target and r[0] != target]
        if len(keep) == len(rows):
            toolbox.err(f"umount: {target}: not mounted")
            status = 32
        rows = keep
    save_mounts(rows)
    return status


if __name__ == "__main__":
    toolbox.main({"mount": mount, "umount": umount})
