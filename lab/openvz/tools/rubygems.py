#!/usr/bin/python3
"""`ruby` and `gem` of an OpenVZ node for the lab, one multi-call program (the node's PATH
links both here). Standard library only: it runs inside the node sandbox on the host's
/usr/bin/python3.

The Ruby is the rpm database's (/var/lib/lab/rpm/ruby, which `yum install ruby` updates from
vpsFree.cz's repository, lab/core/tools/yum.py); a node without that entry has its base
system's Ruby 1.8.7. `ruby --version` prints that Ruby's own line. `gem install [--source URL]
[--prerelease] NAME...` installs the gems the lab's gem source offers (GEMS: the converter and
libosctl, which both require Ruby >= 2.0.0 in their gemspecs): on Ruby 1.8 it refuses with
rubygems 1.3.7's words for a required_ruby_version mismatch; on Ruby 2 it records the gems in
/var/lib/lab/gems/<name> (their version) and links the executables the lab simulates
(vpsadminos-convert) into /usr/local/bin. Installing again reinstalls quietly and exits 0, as
gem does. The gems' own runtime dependencies (gli, ipaddress, ...) are not modelled. `gem list`
shows what is installed.
"""

import os
import sys

if __package__:  # imported on the host (lab.openvz.tools.rubygems)
    from lab.core.tools import toolbox
else:  # run as a program: toolbox.py is next to it
    import toolbox

RPM_RUBY = f"{toolbox.STATE}/rpm/ruby"
GEM_DB = f"{toolbox.STATE}/gems"
BASE_RUBY = "1.8.7.374-5.el6.x86_64"
# rpm version -> (Ruby version, `ruby --version` line, rubygems version)
RUBIES = {
    "1.8.7": ("1.8.7", "ruby 1.8.7 (2013-06-27 patchlevel 374) [x86_64-linux]", "1.3.7"),
    "2.4.4": ("2.4.4", "ruby 2.4.4p296 (2018-03-28 revision 63013) [x86_64-linux]", "2.6.14.1"),
}
GEM_SOURCE = "https://rubygems.vpsfree.cz"
# name -> (version, required Ruby, executables: name -> simulator next to this file on the node)
GEMS = {
    "vpsadminos-converter": ("19.07.0", (2, 0, 0), {"vpsadminos-convert": "vpsadminos_convert.py"}),
    "libosctl": ("19.07.0", (2, 0, 0), {}),
}
BIN_DIR = "/usr/local/bin"
TOOLS_LIB = "/usr/local/lib/airlift-lab"


def installed_ruby():
    """(Ruby version, its --version line, its rubygems version)."""
    rpm = (toolbox.read(RPM_RUBY) or BASE_RUBY).strip()
    for prefix, ruby in RUBIES.items():
        if rpm.startswith(prefix):
            return ruby
    return RUBIES["1.8.7"]


def ruby_version_tuple():
    return tuple(int(p) for p in installed_ruby()[0].split("."))


def ruby(args):
    if args[:1] in (["--version"], ["-v"]):
        toolbox.out(installed_ruby()[1])
        return 0
    if not args:  # the program on stdin
        if sys.stdin.read().strip():
            toolbox.err("ruby: the lab's ruby runs no programs")
            return 1
        return 0
    toolbox.err("ruby: the lab's ruby answers only --version")
    return 1


def installed_gems():
    if not os.path.isdir(GEM_DB):
        return {}
    return {name: (toolbox.read(f"{GEM_DB}/{name}") or "").strip() for name in sorted(os.listdir(GEM_DB))}


def gem_install(args):
    names, sources, i = [], [], 0
    while i < len(args):
        a = args[i]
        if a in ("--source", "-s") and i + 1 < len(args):
            sources.append(args[i + 1].rstrip("/"))
            i += 2
            continue
        if not a.startswith("-"):
            names.append(a)
        i += 1
    if not names:
        toolbox.err("ERROR:  While executing gem ... (Gem::CommandLineError)\n"
                    "    Please specify at least one gem name (e.g. gem build GEMNAME)")
        return 1
    ruby_version, _, rubygems = installed_ruby()
    old = rubygems.startswith("1.")
    status, done = 0, []
    for name in names:
        if name not in GEMS or (sources and GEM_SOURCE not in sources):
            if old:
                toolbox.err(f"ERROR:  could not find gem {name} locally or in a repository")
            else:
                toolbox.err(f"ERROR:  Could not find a valid gem '{name}' (>= 0) in any repository")
            status = 2 if not old else 1
            continue
        version, required, executables = GEMS[name]
        if ruby_version_tuple() < required:
            # rubygems' Installer: "#{name} requires Ruby version #{required_ruby_version}."
            requirement = ">= " + ".".join(str(p) for p in required)
            toolbox.err(f"ERROR:  Error installing {name}:\n\t{name} requires Ruby version {requirement}.")
            status = 1
            continue
        if installed_gems().get(name) != version:
            toolbox.out(f"Fetching: {name}-{version}.gem (100%)")
        toolbox.write(f"{GEM_DB}/{name}", version + "\n")
        for exe, program in executables.items():
            link = f"{BIN_DIR}/{exe}"
            if not os.path.lexists(link):
                os.makedirs(BIN_DIR, exist_ok=True)
                os.symlink(f"{TOOLS_LIB}/{program}", link)
        toolbox.out(f"Successfully installed {name}-{version}")
        done.append(f"{name}-{version}")
    if done:
        if not old:
            for gem in done:
                toolbox.out(f"Parsing documentation for {gem}\nInstalling ri documentation for {gem}")
            toolbox.out(f"Done installing documentation for {', '.join(g.rsplit('-', 1)[0] for g in done)} "
                        "after 0 seconds")
        toolbox.out(f"{len(done)} gem{'s' if len(done) != 1 else ''} installed")
    return status


def gem(args):
    if not args:
        toolbox.out("RubyGems is a sophisticated package manager for Ruby.  This is a\n"
                    "basic help message containing pointers to more information.\n\n"
                    "  Usage:\n    gem -h/--help\n    gem -v/--version\n"
                    "    gem command [arguments...] [options...]")
        return 0
    if args[0] in ("-v", "--version"):
        toolbox.out(installed_ruby()[2])
        return 0
    if args[0] == "install":
        return gem_install(args[1:])
    if args[0] == "list":
        toolbox.out("\n*** LOCAL GEMS ***\n\n")
        for name, version in installed_gems().items():
            toolbox.out(f"{name} ({version})")
        return 0
    toolbox.err(f"ERROR:  While executing gem ... (Gem::CommandLineError)\n    Unknown command {args[0]}")
    return 1


if __name__ == "__main__":
    toolbox.main({"ruby": ruby, "gem": gem})
