#!/usr/bin/python3
"""Simulators of the developer tools the upgrade runbook uses on vpsAdmin hosts, one
multi-call program (the node's PATH links git, bundle, bundler, php and thin here). Standard
library only: it runs inside a lab node on the host's /usr/bin/python3.

git (1.7.1, CentOS 6). A checkout is a directory with a `.git` holding HEAD (a branch ref),
refs/heads/<branch> (the rev), refs/remotes/origin/<branch> (last fetched rev), config (the
origin URL and, in a [lab] section, the directory standing for the remote) and lab-index
(JSON {path: sha256} of the files tracked at HEAD). The remote directory has REV (its head
rev), COUNT (commits between the checkout's rev and REV) and tree/ (the files at REV).
`git pull` fast-forwards the work tree to tree/, refusing to overwrite local changes;
`git fetch`, `git rev-parse`, `git rev-list --count A..B`, `git log -1 --format=%H|%h`,
`git status [--porcelain]` answer from the same state.

bundler: `bundle|bundler install` installs the Gemfile's gems into the node-wide gem list
/var/lib/lab/gems ("name version" lines) and writes Gemfile.lock; `bundle check` tells
whether every gem of the Gemfile is installed.

php (5.4): `php -v`, and `php composer.phar install` installing composer.lock's packages
into vendor/ (vendor/autoload.php, vendor/composer/installed.json).

thin: `thin [--address A] [--port P] [--environment E] [--log F] [--pid F] [-d] start|stop`
keeps the API server's state: /var/lib/lab/services/vpsadmin-api ("running"/"stopped") and
/var/lib/lab/vpsadmin-api.json ({"address", "port", "environment", "chdir", "log", "pid"}).
The lab process serves the API while that state says running.
"""

import difflib
import fnmatch
import hashlib
import json
import os
import re
import shutil
import sys

STATE = "/var/lib/lab"
GEMS = f"{STATE}/gems"
API_STATE = f"{STATE}/vpsadmin-api.json"
API_SERVICE = f"{STATE}/services/vpsadmin-api"

# Versions the lab's gem source offers (what rubygems had late in 2015).
GEM_VERSIONS = {
    "activerecord": "4.1.14", "ancestry": "2.1.0", "bcrypt": "3.1.10", "composite_primary_keys": "7.0.15",
    "daemons": "1.2.3", "eventmachine": "1.0.8", "haveapi": "0.4.2", "ipaddress": "0.8.0", "json": "1.8.3",
    "mail": "2.6.3", "mysql": "2.9.1", "mysql2": "0.3.20", "paper_trail": "4.0.0", "pry-remote": "0.1.8",
    "rake": "10.4.2", "remote-pry": "0.0.1", "require_all": "1.3.2", "rspec": "3.4.0", "sinatra": "1.4.6",
    "sinatra-activerecord": "2.0.9", "thin": "1.6.4", "rack": "1.6.4", "activesupport": "4.1.14",
    "pry": "0.10.3", "highline": "1.7.8", "rest-client": "1.8.0",
}


def out(text=""):
    sys.stdout.write(text + ("\n" if not text.endswith("\n") else ""))


def err(text):
    sys.stderr.write(text.rstrip("\n") + "\n")


def read(path, default=None):
    try:
        with open(path) as f:
            return f.read()
    except (FileNotFoundError, NotADirectoryError):
        return default


def write(path, text, mode=None):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    if mode is not None:
        os.chmod(tmp, mode)
    os.replace(tmp, path)


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


# -- git -------------------------------------------------------------------------------------

class Repo:
    def __init__(self, top):
        self.top = top
        self.git = os.path.join(top, ".git")
        head = read(os.path.join(self.git, "HEAD"), "ref: refs/heads/master\n").strip()
        self.branch = head.split("refs/heads/", 1)[1] if head.startswith("ref:") else "master"
        config = read(os.path.join(self.git, "config"), "")
        self.url = _config_value(config, 'remote "origin"', "url") or ""
        self.remote_dir = _config_value(config, "lab", "remote")

    def ref(self, name):
        return (read(os.path.join(self.git, name), "") or "").strip()

    def set_ref(self, name, rev):
        write(os.path.join(self.git, name), rev + "\n")

    @property
    def head(self):
        return self.ref(f"refs/heads/{self.branch}")

    @property
    def upstream(self):
        return self.ref(f"refs/remotes/origin/{self.branch}") or self.head

    def remote_rev(self):
        return (read(os.path.join(self.remote_dir, "REV"), "") or "").strip() if self.remote_dir else ""

    def remote_count(self):
        return int((read(os.path.join(self.remote_dir, "COUNT"), "1") or "1").strip())

    def index(self):
        return json.loads(read(os.path.join(self.git, "lab-index"), "{}"))

    def save_index(self, index):
        write(os.path.join(self.git, "lab-index"), json.dumps(index, indent=1, sort_keys=True) + "\n")

    def resolve(self, name):
        if name in ("HEAD", self.branch, f"refs/heads/{self.branch}"):
            return self.head
        if name in ("@{u}", "@{upstream}", f"{self.branch}@{{u}}", f"origin/{self.branch}",
                    f"refs/remotes/origin/{self.branch}", "FETCH_HEAD"):
            return self.upstream
        if re.fullmatch(r"[0-9a-f]{4,40}", name) and any(r.startswith(name) for r in (self.head, self.upstream)):
            return next(r for r in (self.head, self.upstream) if r.startswith(name))
        return None


def _config_value(text, section, key):
    current = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1].strip()
        elif current == section and "=" in line:
            k, v = line.split("=", 1)
            if k.strip() == key:
                return v.strip()
    return None


def find_repo():
    here = os.getcwd()
    while True:
        if os.path.isdir(os.path.join(here, ".git")):
            return Repo(here)
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def tree_files(root):
    """{relative path: absolute path} of the files under root, .git excluded."""
    files = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != ".git")
        for name in filenames:
            full = os.path.join(dirpath, name)
            files[os.path.relpath(full, root)] = full
    return files


def ignored(path, patterns):
    parts = path.split("/")
    for pattern in patterns:
        directory = pattern.endswith("/")
        pattern = pattern.rstrip("/").lstrip("/")
        candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + (0 if directory else 1))]
        candidates += parts[:-1] if directory else parts
        if any(fnmatch.fnmatch(c, pattern) for c in candidates):
            return True
    return False


def gitignore_patterns(top):
    text = read(os.path.join(top, ".gitignore"), "") or ""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def line_changes(old_path, new_path):
    """(insertions, deletions) between two files as git's diffstat counts them."""
    def lines(path):
        if path is None:
            return []
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace").splitlines()
    old, new = lines(old_path), lines(new_path)
    added = removed = 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag in ("replace", "delete"):
            removed += i2 - i1
        if tag in ("replace", "insert"):
            added += j2 - j1
    return added, removed


def diffstat(rows):
    """git 1.7's `--stat` block for [(path, added, removed)]."""
    if not rows:
        return []
    width = max(len(p) for p, _, _ in rows)
    biggest = max(a + r for _, a, r in rows)
    digits = len(str(biggest))
    scale = min(1.0, 50 / biggest) if biggest else 1.0
    lines = []
    for path, added, removed in rows:
        plus, minus = round(added * scale), round(removed * scale)
        if added and not plus:
            plus = 1
        if removed and not minus:
            minus = 1
        lines.append(f" {path:<{width}} | {added + removed:>{digits}} {'+' * plus}{'-' * minus}")
    inserted, deleted = sum(a for _, a, _ in rows), sum(r for _, _, r in rows)
    lines.append(f" {len(rows)} file{'s' if len(rows) != 1 else ''} changed, {inserted} insertions(+), "
                 f"{deleted} deletions(-)")
    return lines


def git_fetch(repo, args):
    rev = repo.remote_rev()
    if not rev:
        err(f"fatal: '{repo.url}' does not appear to be a git repository\nfatal: The remote end hung up unexpectedly")
        return 128
    old = repo.upstream
    if rev != old:
        repo.set_ref(f"refs/remotes/origin/{repo.branch}", rev)
        repo.set_ref("FETCH_HEAD", rev)
        if "-q" not in args and "--quiet" not in args:
            err(f"From {repo.url}\n   {old[:7]}..{rev[:7]}  {repo.branch}     -> origin/{repo.branch}")
    return 0


def git_pull(repo, args):
    status = git_fetch(repo, ["-q"])
    if status:
        return status
    new_rev, head = repo.upstream, repo.head
    if new_rev == head:
        out("Already up-to-date.")
        return 0
    tree = os.path.join(repo.remote_dir, "tree")
    index, incoming = repo.index(), tree_files(tree)
    local_changes, untracked_in_way = [], []
    for path, source in incoming.items():
        target = os.path.join(repo.top, path)
        theirs = sha256_file(source)
        if path in index:
            if theirs != index[path] and os.path.isfile(target) and sha256_file(target) != index[path]:
                local_changes.append(path)
        elif os.path.isfile(target) and sha256_file(target) != theirs:
            untracked_in_way.append(path)
    for path in index:
        target = os.path.join(repo.top, path)
        if path not in incoming and os.path.isfile(target) and sha256_file(target) != index[path]:
            local_changes.append(path)
    out(f"Updating {head[:7]}..{new_rev[:7]}")
    if local_changes:
        err("error: Your local changes to the following files would be overwritten by merge:\n"
            + "".join(f"\t{p}\n" for p in sorted(local_changes))
            + "Please, commit your changes or stash them before you can merge.\nAborting")
        return 1
    if untracked_in_way:
        err("error: The following untracked working tree files would be overwritten by merge:\n"
            + "".join(f"\t{p}\n" for p in sorted(untracked_in_way))
            + "Please move or remove them before you can merge.\nAborting")
        return 1
    rows, modes = [], []
    for path in sorted(set(index) | set(incoming)):
        target = os.path.join(repo.top, path)
        if path not in incoming:
            added, removed = line_changes(target if os.path.isfile(target) else None, None)
            mode = "100755" if os.access(target, os.X_OK) else "100644"
            if os.path.lexists(target):
                os.unlink(target)
                _prune_dirs(os.path.dirname(target), repo.top)
            rows.append((path, added, removed))
            modes.append(f" delete mode {mode} {path}")
            continue
        source = incoming[path]
        if path in index and sha256_file(source) == index[path]:
            continue
        existed = os.path.isfile(target)
        added, removed = line_changes(target if existed else None, source)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(source, target)
        rows.append((path, added, removed))
        if not existed or path not in index:
            modes.append(f" create mode {'100755' if os.access(source, os.X_OK) else '100644'} {path}")
    out("Fast-forward")
    for line in diffstat(rows) + modes:
        out(line)
    repo.save_index({path: sha256_file(source) for path, source in incoming.items()})
    repo.set_ref(f"refs/heads/{repo.branch}", new_rev)
    repo.set_ref("ORIG_HEAD", head)
    return 0


def _prune_dirs(directory, top):
    while directory != top and os.path.isdir(directory) and not os.listdir(directory):
        os.rmdir(directory)
        directory = os.path.dirname(directory)


def git_status(repo, args):
    index, patterns = repo.index(), gitignore_patterns(repo.top)
    lines = []
    for path in sorted(index):
        target = os.path.join(repo.top, path)
        if not os.path.isfile(target):
            lines.append(f" D {path}")
        elif sha256_file(target) != index[path]:
            lines.append(f" M {path}")
    untracked = set()
    for path in tree_files(repo.top):
        if path in index or ignored(path, patterns):
            continue
        # git shows an untracked directory once, as "dir/", if nothing in it is tracked
        parts, shown = path.split("/"), path
        for i in range(1, len(parts)):
            prefix = "/".join(parts[:i])
            if not any(p.startswith(prefix + "/") for p in index):
                shown = prefix + "/"
                break
        untracked.add(shown)
    lines += [f"?? {p}" for p in sorted(untracked)]
    if "--porcelain" in args or "-s" in args or "--short" in args:
        for line in lines:
            out(line)
        return 0
    out(f"# On branch {repo.branch}")
    behind = repo.remote_count() if repo.upstream != repo.head else 0
    if behind:
        out(f"# Your branch is behind 'origin/{repo.branch}' by {behind} commits, and can be fast-forwarded.\n#")
    if not lines:
        out("nothing to commit (working directory clean)")
    else:
        for line in lines:
            out(f"#\t{line[3:]}" if line.startswith("??") else f"#\tmodified:   {line[3:]}")
    return 0


def git_rev_list(repo, args):
    ranges = [a for a in args if not a.startswith("-")]
    if "--count" not in args or len(ranges) != 1 or ".." not in ranges[0]:
        err("usage: git rev-list --count A..B (the lab's git knows no other form)")
        return 129
    left, right = ranges[0].split("..", 1)
    a, b = repo.resolve(left or "HEAD"), repo.resolve(right or "HEAD")
    if a is None or b is None:
        err(f"fatal: ambiguous argument '{ranges[0]}': unknown revision or path not in the working tree.")
        return 128
    # The only history the lab knows: the checkout's rev and the remote's head after it.
    out(str(repo.remote_count() if (a, b) == (repo.head, repo.remote_rev()) and a != b else 0))
    return 0


def git_rev_parse(repo, args):
    names = [a for a in args if not a.startswith("-")] or ["HEAD"]
    if "--abbrev-ref" in args:
        out(repo.branch if names == ["HEAD"] else f"origin/{repo.branch}")
        return 0
    status = 0
    for name in names:
        rev = repo.resolve(name)
        if rev is None:
            err(f"fatal: ambiguous argument '{name}': unknown revision or path not in the working tree.")
            status = 128
        else:
            out(rev[:7] if "--short" in args else rev)
    return status


def git_ls_remote(repo, args):
    """`git ls-remote [origin] [HEAD|refs/heads/<branch>]`: the remote's refs, read without
    touching the checkout (unlike fetch, which moves origin/<branch> and FETCH_HEAD)."""
    rev = repo.remote_rev()
    if not rev:
        err(f"fatal: '{repo.url}' does not appear to be a git repository\nfatal: The remote end hung up unexpectedly")
        return 128
    patterns = [a for a in args if not a.startswith("-") and a != "origin"]
    refs = [("HEAD", rev), (f"refs/heads/{repo.branch}", rev)]
    for name, value in refs:
        if not patterns or any(name == p or name.endswith("/" + p) for p in patterns):
            out(f"{value}\t{name}")
    return 0


def git_log(repo, args):
    fmt = next((a.split("=", 1)[1] for a in args if a.startswith(("--format=", "--pretty=format:"))), "%H")
    if fmt.startswith("format:"):
        fmt = fmt[len("format:"):]
    out(fmt.replace("%H", repo.head).replace("%h", repo.head[:7]))
    return 0


GIT_COMMANDS = {"pull": git_pull, "fetch": git_fetch, "status": git_status, "rev-parse": git_rev_parse,
                "rev-list": git_rev_list, "log": git_log, "ls-remote": git_ls_remote}


def git(args):
    while args and args[0].startswith("-"):
        if args[0] == "--version":
            out("git version 1.7.1")
            return 0
        args = args[2:] if args[0] == "-C" else args[1:]
    if not args:
        out("usage: git [--version] [--exec-path[=<path>]] [--html-path] [-p|--paginate|--no-pager] ...")
        return 1
    command, rest = args[0], args[1:]
    if command not in GIT_COMMANDS:
        err(f"git: '{command}' is not a git command. See 'git --help'.")
        return 1
    repo = find_repo()
    if repo is None:
        err("fatal: Not a git repository (or any of the parent directories): .git")
        return 128
    return GIT_COMMANDS[command](repo, rest)


# -- bundler ---------------------------------------------------------------------------------

def gemfile_gems(path):
    gems = []
    for line in (read(path, "") or "").splitlines():
        match = re.match(r"""\s*gem\s+['"]([^'"]+)['"]""", line)
        if match:
            gems.append(match.group(1))
    return gems


def installed_gems():
    gems = {}
    for line in (read(GEMS, "") or "").splitlines():
        if line.strip():
            name, _, version = line.partition(" ")
            gems[name] = version
    return gems


def find_gemfile():
    here = os.getcwd()
    while True:
        if os.path.isfile(os.path.join(here, "Gemfile")):
            return os.path.join(here, "Gemfile")
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def bundle(args):
    command = next((a for a in args if not a.startswith("-")), "install")
    gemfile = find_gemfile()
    if gemfile is None:
        err("Could not locate Gemfile")
        return 10
    wanted, have = gemfile_gems(gemfile), installed_gems()
    if command == "check":
        missing = [g for g in wanted if g not in have]
        if missing:
            out(f"Could not find gem '{missing[0]}' in any of the gem sources listed in your Gemfile.\n"
                "Install missing gems with `bundle install`.")
            return 1
        out("The Gemfile's dependencies are satisfied")
        return 0
    if command != "install":
        err(f'Could not find command "{command}".')
        return 15
    out("Fetching gem metadata from https://rubygems.org/.........\nResolving dependencies...")
    for name in sorted(set(wanted) | {"bundler"}):
        version = "1.7.12" if name == "bundler" else have.get(name) or GEM_VERSIONS.get(name, "1.0.0")
        out(f"{'Using' if name in have or name == 'bundler' else 'Installing'} {name} {version}")
        have[name] = version
    write(GEMS, "".join(f"{n} {v}\n" for n, v in sorted(have.items())))
    write(os.path.join(os.path.dirname(gemfile), "Gemfile.lock"),
          "GEM\n  remote: https://rubygems.org/\n  specs:\n"
          + "".join(f"    {n} ({have[n]})\n" for n in sorted(set(wanted)))
          + "\nPLATFORMS\n  ruby\n\nDEPENDENCIES\n" + "".join(f"  {n}\n" for n in sorted(set(wanted))))
    out("Your bundle is complete!\nUse `bundle show [gemname]` to see where a bundled gem is installed.")
    return 0


# -- php / composer --------------------------------------------------------------------------

PHP_BANNER = """PHP 5.4.45 (cli) (built: Sep  2 2015 23:48:30)
Copyright (c) 1997-2014 The PHP Group
Zend Engine v2.4.0, Copyright (c) 1998-2014 Zend Technologies"""


def php(args):
    if not args or args[0] in ("-v", "--version"):
        out(PHP_BANNER)
        return 0
    script, rest = args[0], args[1:]
    if not os.path.isfile(script):
        out(f"Could not open input file: {script}")
        return 1
    if os.path.basename(script) != "composer.phar":
        err(f"lab: php here runs composer.phar only, not {script}")
        return 255
    return composer(rest)


def composer(args):
    command = next((a for a in args if not a.startswith("-")), "list")
    cwd = os.getcwd()
    if command != "install":
        err(f'  [InvalidArgumentException]\n  Command "{command}" is not defined.')
        return 1
    if not os.path.isfile("composer.json"):
        err(f"Composer could not find a composer.json file in {cwd}\n"
            'To initialize a project, please create a composer.json file as described in the '
            'https://getcomposer.org/ "Getting Started" section')
        return 1
    out("Loading composer repositories with package information")
    lock = json.loads(read("composer.lock", "") or '{"packages": []}')
    packages = [(p["name"], p["version"]) for p in lock.get("packages", [])]
    if os.path.isfile("composer.lock"):
        out("Installing dependencies (including require-dev) from lock file")
    else:
        out("Updating dependencies (including require-dev)")
    installed = json.loads(read("vendor/composer/installed.json", "[]") or "[]")
    have = {(p["name"], p["version"]) for p in installed}
    todo = [p for p in packages if p not in have]
    if not todo:
        out("Nothing to install or update")
    for name, version in todo:
        out(f"  - Installing {name} ({version})\n    Downloading: 100%\n")
        write(os.path.join("vendor", name, "composer.json"), json.dumps({"name": name, "version": version}) + "\n")
    write("vendor/composer/installed.json",
          json.dumps([{"name": n, "version": v} for n, v in packages], indent=4) + "\n")
    out("Generating autoload files")
    write("vendor/autoload.php", "<?php\n\n// autoload.php @generated by Composer\n\n"
          "require_once __DIR__ . '/composer' . '/autoload_real.php';\n")
    return 0


# -- thin ------------------------------------------------------------------------------------

def thin(args):
    options, actions, i = {"address": "0.0.0.0", "port": "3000", "environment": "development",
                           "log": "log/thin.log", "pid": "tmp/pids/thin.pid", "daemonize": False}, [], 0
    aliases = {"-a": "address", "--address": "address", "-p": "port", "--port": "port",
               "-e": "environment", "--environment": "environment", "-l": "log", "--log": "log",
               "-P": "pid", "--pid": "pid", "-c": "chdir", "--chdir": "chdir", "-R": "rackup", "--rackup": "rackup"}
    while i < len(args):
        arg = args[i]
        if arg in ("-d", "--daemonize"):
            options["daemonize"] = True
        elif arg in aliases and i + 1 < len(args):
            options[aliases[arg]] = args[i + 1]
            i += 1
        elif "=" in arg and arg.split("=", 1)[0] in aliases:
            options[aliases[arg.split("=", 1)[0]]] = arg.split("=", 1)[1]
        elif not arg.startswith("-"):
            actions.append(arg)
        i += 1
    action = actions[0] if actions else ""
    chdir = options.get("chdir") or os.getcwd()
    if action == "start":
        if not os.path.isfile(os.path.join(chdir, options.get("rackup", "config.ru"))):
            err(f"!! Could not find config.ru in {chdir}")  # thin's rackup lookup
            return 1
        state = (read(API_SERVICE, "") or "").strip()
        if state == "running":
            running = json.loads(read(API_STATE, "{}") or "{}")
            out(f">> Using rack adapter\n!! Port {running.get('port', options['port'])} is in use, "
                "is another server already running?")
            return 1
        out(f">> Using rack adapter\n>> Thin web server (v1.6.4 codename Gob Bluth)\n"
            f">> Maximum connections set to 1024\n>> Listening on {options['address']}:{options['port']}, "
            "CTRL+C to stop")
        write(API_STATE, json.dumps({"address": options["address"], "port": int(options["port"]),
                                     "environment": options["environment"], "chdir": chdir,
                                     "log": options["log"], "pid": options["pid"]}, indent=1) + "\n")
        write(API_SERVICE, "running\n")
        return 0
    if action == "stop":
        if (read(API_SERVICE, "") or "").strip() != "running":
            out(f">> Can't stop process, no PID found in {options['pid']}")
            return 1
        running = json.loads(read(API_STATE, "{}") or "{}")
        out(f">> Stopping server on {running.get('address', options['address'])}:"
            f"{running.get('port', options['port'])} ...")
        write(API_SERVICE, "stopped\n")
        return 0
    err("Usage: thin [options] start|stop|restart|config|install")
    return 1


TOOLS = {"git": git, "bundle": bundle, "bundler": bundle, "php": php, "thin": thin}


def main():
    name = os.path.basename(sys.argv[0])
    tool = TOOLS.get(name)
    if tool is None:
        err(f"devtools: unknown tool name {name}")
        return 127
    try:
        return tool(sys.argv[1:])
    except BrokenPipeError:
        return 141


if __name__ == "__main__":
    sys.exit(main())
