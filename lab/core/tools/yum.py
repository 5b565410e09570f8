#!/usr/bin/python3
"""`yum` (3.2) and `rpm` (4.8) of CentOS 6 for a lab node, one multi-call program (the node's
PATH links both here). Standard library only: it runs inside the node sandbox on the host's
/usr/bin/python3.

The rpm database is /var/lib/lab/rpm/<name> (its version-release.arch); `rpm -q` reads it,
`yum install` adds what the lab's repositories offer (YUM_CATALOG), asking first unless -y,
and links the programs of packages the lab simulates (nc) into /usr/local/bin.
"""

import os
import sys

if __package__:  # imported on the host (lab.core.tools.yum)
    from lab.core.tools import toolbox
else:  # run as a program: toolbox.py is next to it
    import toolbox

RPM_DB = f"{toolbox.STATE}/rpm"
# What the lab's yum repositories offer: name -> version-release.arch
YUM_CATALOG = {
    "nc": "1.84-24.el6.x86_64",
    "rsync": "3.0.6-12.el6.x86_64",
    "screen": "4.0.3-19.el6.x86_64",
    "git": "1.7.1-9.el6_9.x86_64",
}
# Packages whose program an installation puts on the PATH: name -> its simulator, next to
# this file in the node's /usr/local/lib/airlift-lab.
PROGRAMS = {"nc": "nc.py"}


def rpm_installed(name):
    return toolbox.read(f"{RPM_DB}/{name}")


def rpm(args):
    if args[:1] != ["-q"] or len(args) < 2:
        toolbox.err("rpm: only -q is available on this node")
        return 1
    status = 0
    for name in args[1:]:
        version = rpm_installed(name)
        if version:
            toolbox.out(f"{name}-{version.strip()}")
        else:
            toolbox.out(f"package {name} is not installed")
            status = 1
    return status


def install_binary(name):
    """Make the installed package's program runnable: the lab ships it as a simulator."""
    link = f"/usr/local/bin/{name}"
    if name in PROGRAMS and not os.path.lexists(link):
        os.symlink(f"/usr/local/lib/airlift-lab/{PROGRAMS[name]}", link)


def yum(args):
    assume_yes = "-y" in args or "--assumeyes" in args
    words = [a for a in args if not a.startswith("-")]
    if not words:
        toolbox.err("You need to give some command")
        return 1
    command, packages = words[0], words[1:]
    if command == "list" and packages[:1] == ["installed"]:
        toolbox.out("Installed Packages")
        for name in sorted(os.listdir(RPM_DB)) if os.path.isdir(RPM_DB) else []:
            toolbox.out(f"{name:<40}{rpm_installed(name).strip():<30}@base")
        return 0
    if command != "install":
        toolbox.err(f"No such command: {command}. Please use /usr/bin/yum --help")
        return 1
    toolbox.out("Loaded plugins: fastestmirror")
    missing = [p for p in packages if p not in YUM_CATALOG]
    if missing:
        for p in missing:
            toolbox.out(f"No package {p} available.")
        if len(missing) == len(packages):
            toolbox.err("Error: Nothing to do")
            return 1
    todo = [p for p in packages if p in YUM_CATALOG and not rpm_installed(p)]
    for p in packages:
        if p in YUM_CATALOG and rpm_installed(p):
            toolbox.out(f"Package {p}-{YUM_CATALOG[p]} already installed and latest version")
    if not todo:
        toolbox.out("Nothing to do")
        return 0
    toolbox.out("Resolving Dependencies\n--> Running transaction check")
    for p in todo:
        toolbox.out(f"---> Package {p}.x86_64 0:{YUM_CATALOG[p].rsplit('.', 1)[0]} will be installed")
    toolbox.out("\nTransaction Summary\n" + "=" * 80)
    toolbox.out(f"Install       {len(todo)} Package(s)\n")
    if not assume_yes:
        sys.stdout.write("Is this ok [y/N]: ")
        sys.stdout.flush()
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            toolbox.out("Exiting on user Command")
            return 1
    toolbox.out("Downloading Packages:\nRunning Transaction\n")
    for p in todo:
        toolbox.write(f"{RPM_DB}/{p}", YUM_CATALOG[p] + "\n")
        install_binary(p)
        toolbox.out(f"  Installing : {p}-{YUM_CATALOG[p].replace('.x86_64', '')}.x86_64{'1/1':>30}")
    toolbox.out("\nInstalled:\n  "
                + "  ".join(f"{p}.x86_64 0:{YUM_CATALOG[p].rsplit('.', 1)[0]}" for p in todo))
    toolbox.out("\nComplete!")
    return 0


if __name__ == "__main__":
    toolbox.main({"yum": yum, "rpm": rpm})
