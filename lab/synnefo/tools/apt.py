#!/usr/bin/python3
"""`apt-get` and `dpkg-query` of a Debian host, for the Synnefo packages (the runbook's 3.1).
Standard library only.

dpkg's state is the node's /var/lib/dpkg/status. `apt-get install` installs what the lab's
sources have (REPOSITORY: the Synnefo packages at 0.13.0-1, kamaki, memcached and
python-memcache): a package they do not have is refused before anything is installed (`E: Unable to locate package`, exit 100). As Debian's
maintainer scripts do, a package's services start once it is set up, which is why the runbook
stops them again (3.1's note); its new conffiles are added where missing, an existing file is
kept (the admin's, as dpkg's --force-confold keeps it). Without -y apt asks, and with no
terminal to answer it aborts.
"""

import os
import sys

if __package__:
    from lab.core.tools import toolbox
    from lab.synnefo.tools import snf_common
else:
    import snf_common
    import toolbox

STATUS = snf_common.DPKG_STATUS
RELEASE = "0.13.0-1"
# The lab's apt sources: GRNET's 0.13 repository, and Debian squeeze for what 3.1 and 3.5
# install beside it (kamaki 0.8 came out with 0.13; the squeeze versions of memcached and
# python-memcache). Research is silent on these versions: plausible ones.
SYNNEFO_PACKAGES = ("snf-common", "snf-webproject", "snf-quotaholder-app", "snf-astakos-app", "snf-pithos-backend",
                    "snf-cyclades-app", "snf-pithos-app", "snf-pithos-webclient", "snf-cyclades-gtools")
REPOSITORY = {**{name: RELEASE for name in SYNNEFO_PACKAGES}, "kamaki": "0.8-1", "memcached": "1.4.5-1+deb6u1",
              "python-memcache": "1.45-1"}
# What a package's postinst starts (Debian starts a daemon when its package is set up).
STARTS = {"snf-astakos-app": ("gunicorn",), "snf-cyclades-app": ("gunicorn", "snf-dispatcher"),
          "snf-pithos-app": ("gunicorn",), "snf-cyclades-gtools": ("snf-ganeti-eventd",), "memcached": ("memcached",)}
INIT_SCRIPT = "#!/bin/sh\n# lab: service state is kept by `service`\n"
# The 0.13 packages' new conffiles: the settings templates with their defaults commented out
# (shared research synnefo.md §6; QUOTAHOLDER_URL/_TOKEN live in Astakos's file, which the host
# has already).
CONFFILES = {
    "snf-cyclades-app": {
        "/etc/synnefo/20-snf-cyclades-app-quotas.conf": (
            "## Cyclades quotas (0.13)\n#CYCLADES_USE_QUOTAHOLDER = False\n"
            "#CYCLADES_QUOTAHOLDER_URL = 'http://127.0.0.1:8008/api/quotaholder/v'\n"
            "#CYCLADES_QUOTAHOLDER_TOKEN = ''\n#CYCLADES_QUOTAHOLDER_POOLSIZE = 200\n"),
        "/etc/synnefo/20-snf-cyclades-app-vmapi.conf": (
            "## VMAPI (0.13)\n#VMAPI_CACHE_BACKEND = 'memcached://127.0.0.1:11211/?timeout=3600'\n"
            "#VMAPI_BASE_URL = 'https://cyclades.okeanos.grnet.gr/'\n"),
    },
}


def read_status():
    """[(package, {field: value})] in the file's order."""
    text = toolbox.read(STATUS, "") or ""
    packages = []
    for stanza in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line)
        if "Package" in fields:
            packages.append((fields["Package"], fields))
    return packages


def write_status(packages):
    order = ("Package", "Status", "Priority", "Section", "Installed-Size", "Maintainer", "Architecture", "Version",
             "Description")
    toolbox.write(STATUS, "\n".join("".join(f"{k}: {f[k]}\n" for k in order if k in f) for _, f in packages))


def apt_get(args):
    if not args:
        toolbox.err("E: No command given (apt-get install|update)")
        return 100
    command, rest = args[0], args[1:]
    if command == "update":
        toolbox.out("Hit http://apt.dev.grnet.gr squeeze Release\nReading package lists... Done")
        return 0
    if command != "install":
        toolbox.err(f"E: Invalid operation {command}")
        return 100
    yes = any(a in ("-y", "--yes", "--assume-yes") for a in rest)
    names = [a for a in rest if not a.startswith("-")]
    toolbox.out("Reading package lists... Done\nBuilding dependency tree\nReading state information... Done")
    missing = [n for n in names if n not in REPOSITORY]
    if missing:
        toolbox.err(f"E: Unable to locate package {missing[0]}")
        return 100
    installed = dict(read_status())
    names = list(dict.fromkeys(names))
    todo = [n for n in names if installed.get(n, {}).get("Version") != REPOSITORY[n]]
    for name in names:
        if name not in todo:
            toolbox.out(f"{name} is already the newest version.")
    if not todo:
        toolbox.out("0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.")
        return 0
    upgraded = [n for n in todo if n in installed]
    toolbox.out(f"{len(upgraded)} upgraded, {len(todo) - len(upgraded)} newly installed, 0 to remove and 0 not "
                "upgraded.")
    if not yes:
        if not sys.stdin.isatty():
            toolbox.out("Do you want to continue [Y/n]? Abort.")
            return 1
    packages = read_status()
    known = {name for name, _ in packages}
    for name in todo:
        toolbox.out(f"Unpacking {name} (from .../{name}_{REPOSITORY[name]}_all.deb) ...")
    for name in todo:
        fields = {"Package": name, "Status": "install ok installed", "Priority": "optional", "Section": "python",
                  "Installed-Size": "512", "Maintainer": "GRNET <synnefo@grnet.gr>", "Architecture": "all",
                  "Version": REPOSITORY[name],
                  "Description": f"Synnefo component {name}" if name in SYNNEFO_PACKAGES else name}
        if name in known:
            packages = [(n, fields if n == name else f) for n, f in packages]
        else:
            packages.append((name, fields))
        for path, text in CONFFILES.get(name, {}).items():
            if not os.path.exists(path):  # dpkg installs a new conffile silently
                toolbox.write(path, text, 0o644)
        toolbox.out(f"Setting up {name} ({REPOSITORY[name]}) ...")
        write_status(packages)  # after each package, as dpkg does: a failure leaves the done ones done
        for service in STARTS.get(name, ()):
            if not os.path.exists(f"/etc/init.d/{service}"):  # the package brings its init script
                toolbox.write(f"/etc/init.d/{service}", INIT_SCRIPT, 0o755)
            if toolbox.service_state(service) != "running":
                toolbox.set_service_state(service, "running")
                toolbox.out(f"Starting {service}: {service}.")
    return 0


def dpkg_query(args):
    """`dpkg-query -W [-f FORMAT] PACKAGE...`: ${db:Status-Abbrev} ("ii ") and ${Version}."""
    fmt, names, i = "${Package}\t${Version}\n", [], 0
    while i < len(args):
        if args[i] in ("-f", "--showformat"):
            fmt, i = args[i + 1], i + 2
            continue
        if args[i] not in ("-W", "--show"):
            names.append(args[i])
        i += 1
    installed = dict(read_status())
    status = 0
    for name in names:
        fields = installed.get(name)
        if fields is None:
            toolbox.err(f"dpkg-query: no packages found matching {name}")
            status = 1
            continue
        abbrev = "ii " if fields.get("Status") == "install ok installed" else "un "
        text = (fmt.replace("${db:Status-Abbrev}", abbrev).replace("${Version}", fields.get("Version", ""))
                .replace("${Package}", name).replace("\\n", "\n"))
        sys.stdout.write(text)
    return status


if __name__ == "__main__":
    toolbox.main({"apt-get": apt_get, "dpkg-query": dpkg_query})
