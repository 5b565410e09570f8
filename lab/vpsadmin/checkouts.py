"""The git checkouts of a v1.22 vpsAdmin cluster, and the v2.0 "remotes" `git pull` brings.

Every checkout the runbook updates gets its v1.22 files and a `.git` the lab's git
(lab/core/tools/git.py) understands; next to it, on the same node, the remote stands in as
/var/lib/lab/git/<repo>/ with REV (the v2.0 rev), COUNT (commits from the v1.22 rev) and
tree/ (the v2.0 files: lab/vpsadmin/v2_0/trees/<repo>/, and for the API every
migration of lab/vpsadmin/v2_0/migrate/ in db/migrate/).

- API host: /opt/haveapi, /opt/vpsadminapi (config/database.yml names the lab's database),
  /var/www/vpsadmin (world.py's config.php stays, untracked);
- every vpsAdmin server (a `servers` row): /opt/vpsadmind (world.py writes VERSION and
  vpsadmind.rb; they are tracked as written), /opt/vpsadmindctl.

The 1.22 Gemfiles' gems are installed (/var/lib/lab/gems), so `bundle check` passes until
a pull brings a Gemfile with new gems. Revs are the upstream ones (research/vpsadmin.md §0;
the API's 1.22 rev is the last commit before 2.0 work, with the shaper migration);
HaveAPI is not in the vpsAdmin repository, its revs are made up.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from lab.core.config import LabConfig
from lab.core.nodes import write_file
from lab.core.topology import HOSTS, host_with_role

V2_0_DIR = Path(__file__).resolve().parent / "v2_0"
MIGRATIONS_DIR = V2_0_DIR / "migrate"
TREES_DIR = V2_0_DIR / "trees"
REMOTES = "var/lib/lab/git"

API_ROOT = "/opt/vpsadminapi"
WEB_ROOT = "/var/www/vpsadmin"

# The migrations a v1.22 deployment had applied (its schema is lab/vpsadmin/v1_22/schema.sql).
V1_22_MIGRATIONS = {
    "20140208170244_setup": "the vpsAdmin 1.x schema (scripts/scheme.sql + upgrade/db/14.sql, 15.sql)",
    "20140227150154_create_versions": "PaperTrail's versions table (upgrade/db/14.sql)",
    "20140615185520_add_api_tokens": "api_tokens",
    "20140815161745_add_shaper": "servers/vps_ip shaper columns, vps_ip.class_id",
}


def _fake_rev(label: str) -> str:
    return hashlib.sha1(f"airlift lab {label}".encode()).hexdigest()


# repo -> (origin URL, v1.22 rev, v2.0 rev, commits between them)
REPOS = {
    "haveapi": ("git://git.vpsfree.cz/haveapi.git", _fake_rev("haveapi 0.3"), _fake_rev("haveapi 0.4.2"), 140),
    "vpsadminapi": ("git://git.vpsfree.cz/vpsadminapi.git", "a79fadce7bcc9020a216be12334652c133f9c24e",
                    "5d85ee934e0f82a76606c692c2204292d6091c92", 762),
    "vpsadmin-web": ("git://git.vpsfree.cz/vpsadmin.git", "73fa4566aac3a5905f73e68d2eba745a9caa75b6",
                     "f988f66e6a58ad132ede52c546fc82b56d261bcd", 328),
    "vpsadmind": ("git://git.vpsfree.cz/vpsadmind.git", "b67a3bfe34eea37f7cd0688299659e25aba11286",
                  "650b4908bb087ed2ef49a78dcdfcc1c4a69d90f4", 319),
    "vpsadmindctl": ("git://git.vpsfree.cz/vpsadmindctl.git", "a605c690e0d93dfc452b257dfa2bdd4423345a64",
                     "cd5bbe2b0b2b9640728271ca44fc29771a534f07", 25),
}

_LAB = "# lab stand-in for the upstream file\n"

# The v1.22 files of each checkout (path -> (text, executable)). None: a file world.py
# writes, tracked with whatever content it has.
V1_22_TREES: dict[str, dict[str, tuple[str, bool] | None]] = {
    "haveapi": {
        "Gemfile": ("source 'https://rubygems.org'\ngemspec\n\ngem 'require_all'\ngem 'activesupport'\n"
                    "gem 'sinatra'\ngem 'json'\n", False),
        "haveapi.gemspec": ("Gem::Specification.new do |s|\n  s.name = 'haveapi'\n  s.version = '0.3.0'\nend\n", False),
        "lib/haveapi.rb": ("module HaveAPI\n  VERSION = '0.3.0'\nend\n" + _LAB, False),
    },
    "vpsadminapi": {
        "Gemfile": ("source 'https://rubygems.org'\n\ngem 'haveapi'\ngem 'activerecord'\ngem 'paper_trail'\n"
                    "gem 'require_all'\ngem 'mysql'\ngem 'rake'\ngem 'rspec'\n", False),
        "Rakefile": ("require 'active_record'\nrequire 'sinatra/activerecord/rake'\nrequire './lib/vpsadmin'\n" + _LAB,
                     False),
        "config.ru": ("require './lib/vpsadmin'\n\nrun VpsAdmin::API.default.app\n" + _LAB, False),
        "lib/vpsadmin.rb": ("module VpsAdmin\n  module API\n    VERSION = '1.22.0'\n  end\nend\n" + _LAB, False),
    },
    "vpsadmin-web": {
        ".gitignore": ("data/\nmaster/\n", False),
        "CHANGELOG": ("* Thu May 07 2015 - version 1.22.5\n", False),
        "index.php": ("<?php\ninclude 'config.php';\n// lab stand-in\n", False),
        "lib/version.lib.php": ("<?php\ndefine(\"VERSION\", '1.22.5');\ndefine(\"DEMO_MODE\", false);\n\n"
                                "define(\"DB_VERSION\", 15);\n?>\n", False),
        "cron_delete.php": ("<?php\n// deletes members and VPSes past their delete timeout (lab stand-in)\n", False),
        "cron_mailer.php": ("<?php\n// payment and expiration mails (lab stand-in)\n", False),
        "cron_nonpayers.php": ("<?php\n// suspends members who did not pay (lab stand-in)\n", False),
    },
    "vpsadmind": {
        "VERSION": None,
        "vpsadmind.rb": None,
        "Gemfile": ("source :rubygems\ngem \"daemons\"\ngem \"json\"\ngem \"mysql\"\ngem \"eventmachine\"\n"
                    "gem \"thin\"\ngem \"sinatra\"\ngem 'pry-remote'\n", False),
        "CHANGELOG": ("* Mon Aug 18 2014 - version 1.22.0\n", False),
        "lib/daemon.rb": ("DB_VERSION = 15\n" + _LAB, False),
        "backup.rb": ("#!/usr/bin/env ruby\n" + _LAB, True),
        "daily_report.rb": ("#!/usr/bin/env ruby\n" + _LAB, True),
        "bin/savetransfers.rb": ("#!/usr/bin/env ruby\n" + _LAB, True),
    },
    "vpsadmindctl": {
        "Gemfile": ("source :rubygems\ngem 'json'\ngem 'remote-pry'\n", False),
        "CHANGELOG": ("* Mon Aug 18 2014 - version 1.22.0\n", False),
        "vpsadmindctl.rb": ("#!/usr/bin/env ruby\n# vpsAdmindctl 1.22.0 (lab)\n", True),
    },
}


# What a v1.22 host had installed for those Gemfiles (mid-2014 releases).
V1_22_GEM_VERSIONS = {
    "activerecord": "4.1.5", "activesupport": "4.1.5", "daemons": "1.1.9", "eventmachine": "1.0.3",
    "haveapi": "0.3.0", "json": "1.8.1", "mysql": "2.9.1", "paper_trail": "3.0.5", "pry-remote": "0.1.8",
    "rake": "10.3.2", "remote-pry": "0.0.1", "require_all": "1.3.2", "rspec": "3.0.0", "sinatra": "1.4.5",
    "thin": "1.6.2",
}


def _checkouts(host) -> dict[str, str]:
    """{path on the node: repo} of the checkouts a host has."""
    found = {}
    if host.server:
        found["/opt/vpsadmind"] = "vpsadmind"
        found["/opt/vpsadmindctl"] = "vpsadmindctl"
    if "api" in host.roles:
        found["/opt/haveapi"] = "haveapi"
        found[API_ROOT] = "vpsadminapi"
    if "web" in host.roles:
        found[WEB_ROOT] = "vpsadmin-web"
    return found


def _migration_stub(name: str, what: str) -> str:
    return f"-- API db/migrate/{name}.rb: {what}.\n-- Applied before v1.22 went live; nothing to run in the lab.\n"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_v1_22(checkout: Path, repo: str) -> dict[str, str]:
    """Write the 1.22 tree; return the index {path: sha256}."""
    files = dict(V1_22_TREES[repo])
    if repo == "vpsadminapi":
        for name, what in V1_22_MIGRATIONS.items():
            files[f"db/migrate/{name}.sql"] = (_migration_stub(name, what), False)
    index = {}
    for rel, spec in files.items():
        target = checkout / rel
        if spec is not None:
            text, executable = spec
            write_file(target, text, 0o755 if executable else 0o644)
        if target.is_file():
            index[rel] = _sha256(target)
    return index


def _write_remote(root: Path, repo: str) -> None:
    url, _, v2_rev, count = REPOS[repo]
    remote = root / REMOTES / repo
    if remote.exists():
        shutil.rmtree(remote)
    shutil.copytree(TREES_DIR / repo, remote / "tree")
    if repo == "vpsadminapi":
        migrate = remote / "tree/db/migrate"
        migrate.mkdir(parents=True, exist_ok=True)
        for name, what in V1_22_MIGRATIONS.items():
            write_file(migrate / f"{name}.sql", _migration_stub(name, what))
        for sql in sorted(MIGRATIONS_DIR.glob("*.sql")):
            shutil.copy(sql, migrate / sql.name)
    write_file(remote / "REV", v2_rev + "\n")
    write_file(remote / "COUNT", f"{count}\n")


def _write_git(checkout: Path, repo: str, index: dict[str, str]) -> None:
    url, v1_22_rev, _, _ = REPOS[repo]
    git = checkout / ".git"
    write_file(git / "HEAD", "ref: refs/heads/master\n")
    write_file(git / "refs/heads/master", v1_22_rev + "\n")
    write_file(git / "refs/remotes/origin/master", v1_22_rev + "\n")
    write_file(git / "config",
               "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n"
               f"[remote \"origin\"]\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n\turl = {url}\n"
               "[branch \"master\"]\n\tremote = origin\n\tmerge = refs/heads/master\n"
               f"[lab]\n\tremote = /{REMOTES}/{repo}\n")
    write_file(git / "lab-index", json.dumps(index, indent=1, sort_keys=True) + "\n")


def database_yml(cfg: LabConfig) -> str:
    return ("production:\n  adapter: mysql2\n  encoding: utf8\n"
            f"  host: {cfg.mysql_host}\n  port: {cfg.mysql_port}\n  username: {cfg.app_user}\n"
            f"  password: \"{cfg.app_password}\"\n  database: {cfg.vpsadmin_db}\n  pool: 5\n")


API_INIT = """\
#!/bin/bash
# vpsadmin-api     vpsAdmin API server (thin)
# chkconfig: 2345 98 02
# lab: `service vpsadmin-api ...` keeps the state the lab's API server honours
exec service vpsadmin-api "$@"
"""


def lay_out(cfg: LabConfig, conn=None) -> None:
    """Write the v1.22 checkouts and their v2.0 remotes on every node (after world.py's files)."""
    for host in HOSTS:
        checkouts = _checkouts(host)
        if not checkouts:
            continue
        root = cfg.node_root(host.name)
        gems: dict[str, str] = {}
        for path, repo in checkouts.items():
            checkout = root / path.lstrip("/")
            index = _write_v1_22(checkout, repo)
            _write_git(checkout, repo, index)
            _write_remote(root, repo)
            gemfile = V1_22_TREES[repo].get("Gemfile")
            if gemfile:
                for line in gemfile[0].splitlines():
                    if line.startswith("gem "):
                        name = line.split()[1].strip("'\"")
                        gems[name] = V1_22_GEM_VERSIONS.get(name, "1.0.0")
        write_file(root / "var/lib/lab/gems", "".join(f"{n} {v}\n" for n, v in sorted(gems.items())))
        write_file(root / "var/lib/lab/rpm/git", "1.7.1-9.el6_9.x86_64\n")
    api = cfg.node_root(host_with_role("api").name)
    write_file(api / API_ROOT.lstrip("/") / "config/database.yml", database_yml(cfg), 0o600)
    write_file(api / "etc/init.d/vpsadmin-api", API_INIT, 0o755)
    write_file(api / "var/lib/lab/services/vpsadmin-api", "stopped\n")
