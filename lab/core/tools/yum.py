#!/usr/bin/python3
"""`yum` (3.2) and `rpm` (4.8) of CentOS 6 for a lab node, one multi-call program (the node's
PATH links both here). Standard library only: it runs inside the node sandbox on the host's
/usr/bin/python3.

The rpm database is /var/lib/lab/rpm/<name> (its version-release.arch); `rpm -q` reads it,
`yum install` adds what the lab's repositories offer (YUM_CATALOG, and EXTRA_REPOS while their
repo file is in /etc/yum.repos.d), asking first unless -y, updates a package a repository
offers newer, and links the programs of packages the lab simulates (nc) into /usr/local/bin.
"""

import os
import re
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
    "ruby": "1.8.7.374-5.el6.x86_64",
}
# Repositories beyond the base ones: (file in /etc/yum.repos.d, its baseurl) -> what they offer.
# vpsFree.cz's (seed 003: the converter needs a Ruby newer than 2.0).
EXTRA_REPOS = {
    ("vpsfree.repo", "http://repo.vpsfree.cz/stable/"): {"ruby": "2.4.4-1.el6.x86_64"},
}
# Packages whose program an installation puts on the PATH: name -> its simulator, next to
# this file in the node's /usr/local/lib/airlift-lab.
PROGRAMS = {"nc": "nc.py"}


def rpm_installed(name):
    return toolbox.read(f"{RPM_DB}/{name}")


def _version_key(version):
    """rpm's order, roughly: numeric parts as numbers (version-release, the arch left out)."""
    return [(int(p), "") if p.isdigit() else (-1, p) for p in re.split(r"[.-]", version.rsplit(".", 1)[0])]


def catalog():
    """What the enabled repositories offer: name -> version-release.arch (the newest)."""
    offered = dict(YUM_CATALOG)
    for (name, baseurl), packages in EXTRA_REPOS.items():
        text = toolbox.read(f"/etc/yum.repos.d/{name}") or ""
        settings = dict(line.replace(" ", "").split("=", 1) for line in text.splitlines() if "=" in line)
        if settings.get("baseurl", "").rstrip("/") == baseurl.rstrip("/") and settings.get("enabled", "1") != "0":
            for package, version in packages.items():
                if package not in offered or _version_key(version) > _version_key(offered[package]):
                    offered[package] = version
    return offered


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
    offered = catalog()
    missing = [p for p in packages if p not in offered]
    if missing:
        for p in missing:
            toolbox.out(f"No package {p} available.")
        if len(missing) == len(packages):
            toolbox.err("Error: Nothing to do")
            return 1

    def installed(p):
        return (rpm_installed(p) or "").strip()

    todo = [p for p in packages if p in offered and not installed(p)]
    updates = [p for p in packages if p in offered and installed(p)
               and _version_key(offered[p]) > _version_key(installed(p))]
    for p in packages:
        if p in offered and installed(p) and p not in updates:
            toolbox.out(f"Package {p}-{installed(p)} already installed and latest version")
    if not todo and not updates:
        toolbox.out("Nothing to do")
        return 0
    toolbox.out("Resolving Dependencies\n--> Running transaction check")
    for p in updates:
        toolbox.out(f"---> Package {p}.x86_64 0:{installed(p).rsplit('.', 1)[0]} will be updated\n"
                    f"---> Package {p}.x86_64 0:{offered[p].rsplit('.', 1)[0]} will be an update")
    for p in todo:
        toolbox.out(f"---> Package {p}.x86_64 0:{offered[p].rsplit('.', 1)[0]} will be installed")
    toolbox.out("\nTransaction Summary\n" + "=" * 80)
    if todo:
        toolbox.out(f"Install       {len(todo)} Package(s)")
    if updates:
        toolbox.out(f"Upgrade       {len(updates)} Package(s)")
    toolbox.out("")
    if not assume_yes:
        sys.stdout.write("Is this ok [y/N]: ")
        sys.stdout.flush()
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            toolbox.out("Exiting on user Command")
            return 1
    toolbox.out("Downloading Packages:\nRunning Transaction\n")
    total, step = 2 * len(updates) + len(todo), 0
    for p in updates:
        old = installed(p)
        toolbox.write(f"{RPM_DB}/{p}", offered[p] + "\n")
        step += 1
        toolbox.out(f"  Updating   : {p}-{offered[p].replace('.x86_64', '')}.x86_64{f'{step}/{total}':>30}")
        step += 1
        toolbox.out(f"  Cleanup    : {p}-{old.replace('.x86_64', '')}.x86_64{f'{step}/{total}':>30}")
    for p in todo:
        toolbox.write(f"{RPM_DB}/{p}", offered[p] + "\n")
        install_binary(p)
        step += 1
        toolbox.out(f"  Installing : {p}-{offered[p].replace('.x86_64', '')}.x86_64{f'{step}/{total}':>30}")
    if todo:
        toolbox.out("\nInstalled:\n  "
                    + "  ".join(f"{p}.x86_64 0:{offered[p].rsplit('.', 1)[0]}" for p in todo))
    if updates:
        toolbox.out("\nUpdated:\n  "
                    + "  ".join(f"{p}.x86_64 0:{offered[p].rsplit('.', 1)[0]}" for p in updates))
    toolbox.out("\nComplete!")
    return 0


if __name__ == "__main__":
    toolbox.main({"yum": yum, "rpm": rpm})
