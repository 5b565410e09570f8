#!/usr/bin/python3
"""`bundle` / `bundler` (bundler 1.7) for a lab node, one multi-call program (the node's PATH
links both names here). Standard library only: it runs inside the node sandbox on the
host's /usr/bin/python3.

`bundle install` installs the gems of the Gemfile (found from the working directory up)
into the node-wide gem list /var/lib/lab/gems ("name version" lines), at the versions the
lab's gem source offers (GEM_VERSIONS), and writes Gemfile.lock; `bundle check` tells
whether every gem of the Gemfile is installed.
"""

import os
import re

if __package__:  # imported on the host (lab.core.tools.bundler)
    from lab.core.tools import toolbox
else:  # run as a program: toolbox.py is next to it
    import toolbox

GEMS = f"{toolbox.STATE}/gems"
# Versions the lab's gem source offers (what rubygems had late in 2015).
GEM_VERSIONS = {
    "activerecord": "4.1.14", "ancestry": "2.1.0", "bcrypt": "3.1.10", "composite_primary_keys": "7.0.15",
    "daemons": "1.2.3", "eventmachine": "1.0.8", "haveapi": "0.4.2", "ipaddress": "0.8.0", "json": "1.8.3",
    "mail": "2.6.3", "mysql": "2.9.1", "mysql2": "0.3.20", "paper_trail": "4.0.0", "pry-remote": "0.1.8",
    "rake": "10.4.2", "remote-pry": "0.0.1", "require_all": "1.3.2", "rspec": "3.4.0", "sinatra": "1.4.6",
    "sinatra-activerecord": "2.0.9", "thin": "1.6.4", "rack": "1.6.4", "activesupport": "4.1.14",
    "pry": "0.10.3", "highline": "1.7.8", "rest-client": "1.8.0",
}


def gemfile_gems(path):
    gems = []
    for line in (toolbox.read(path, "") or "").splitlines():
        match = re.match(r"""\s*gem\s+['"]([^'"]+)['"]""", line)
        if match:
            gems.append(match.group(1))
    return gems


def installed_gems():
    gems = {}
    for line in (toolbox.read(GEMS, "") or "").splitlines():
        if line.strip():
            name, _, version = line.partition(" ")
            gems[name] = version
    return gems


def find_gemfile():
    top = toolbox.find_upwards(lambda d: os.path.isfile(os.path.join(d, "Gemfile")))
    return os.path.join(top, "Gemfile") if top else None


def bundle(args):
    command = next((a for a in args if not a.startswith("-")), "install")
    gemfile = find_gemfile()
    if gemfile is None:
        toolbox.err("Could not locate Gemfile")
        return 10
    wanted, have = gemfile_gems(gemfile), installed_gems()
    if command == "check":
        missing = [g for g in wanted if g not in have]
        if missing:
            toolbox.out(f"Could not find gem '{missing[0]}' in any of the gem sources listed in your Gemfile.\n"
                "Install missing gems with `bundle install`.")
            return 1
        toolbox.out("The Gemfile's dependencies are satisfied")
        return 0
    if command != "install":
        toolbox.err(f'Could not find command "{command}".')
        return 15
    toolbox.out("Fetching gem metadata from https://rubygems.org/.........\nResolving dependencies...")
    for name in sorted(set(wanted) | {"bundler"}):
        version = "1.7.12" if name == "bundler" else have.get(name) or GEM_VERSIONS.get(name, "1.0.0")
        toolbox.out(f"{'Using' if name in have or name == 'bundler' else 'Installing'} {name} {version}")
        have[name] = version
    toolbox.write(GEMS, "".join(f"{n} {v}\n" for n, v in sorted(have.items())))
    toolbox.write(os.path.join(os.path.dirname(gemfile), "Gemfile.lock"),
          "GEM\n  remote: https://rubygems.org/\n  specs:\n"
          + "".join(f"    {n} ({have[n]})\n" for n in sorted(set(wanted)))
          + "\nPLATFORMS\n  ruby\n\nDEPENDENCIES\n" + "".join(f"  {n}\n" for n in sorted(set(wanted))))
    toolbox.out("Your bundle is complete!\nUse `bundle show [gemname]` to see where a bundled gem is installed.")
    return 0


if __name__ == "__main__":
    toolbox.main({"bundle": bundle, "bundler": bundle})
