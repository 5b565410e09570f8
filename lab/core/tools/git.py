#!/usr/bin/python3
"""`git` (1.7.1, CentOS 6) for a lab node: the commands the upgrade runbook runs in its
checkouts. Standard library only: it runs inside the node sandbox on the host's
/usr/bin/python3.

A checkout is a directory with a `.git` holding HEAD (a branch ref), refs/heads/<branch>
(the rev), refs/remotes/origin/<branch> (last fetched rev), config (the origin URL and, in a
[lab] section, the directory standing for the remote) and lab-index (JSON {path: sha256} of
the files tracked at HEAD). The remote directory has REV (its head rev), COUNT (commits
between the checkout's rev and REV) and tree/ (the files at REV). `git pull` fast-forwards
the work tree to tree/, refusing to overwrite local changes; `git fetch`, `git ls-remote`,
`git rev-parse`, `git rev-list --count A..B`, `git log -1 --format=%H|%h`, `git status
[--porcelain]` answer from the same state.
"""

import difflib
import fnmatch
import json
import os
import re
import shutil

if __package__:  # imported on the host (lab.core.tools.git)
    from lab.core.tools import toolbox
else:  # run as a program: toolbox.py is next to it
    import toolbox


class Repo:
    def __init__(self, top):
        self.top = top
        self.git = os.path.join(top, ".git")
        head = toolbox.read(os.path.join(self.git, "HEAD"), "ref: refs/heads/master\n").strip()
        self.branch = head.split("refs/heads/", 1)[1] if head.startswith("ref:") else "master"
        config = toolbox.read(os.path.join(self.git, "config"), "")
        self.url = _config_value(config, 'remote "origin"', "url") or ""
        self.remote_dir = _config_value(config, "lab", "remote")

    def ref(self, name):
        return (toolbox.read(os.path.join(self.git, name), "") or "").strip()

    def set_ref(self, name, rev):
        toolbox.write(os.path.join(self.git, name), rev + "\n")

    @property
    def head(self):
        return self.ref(f"refs/heads/{self.branch}")

    @property
    def upstream(self):
        return self.ref(f"refs/remotes/origin/{self.branch}") or self.head

    def remote_rev(self):
        return (toolbox.read(os.path.join(self.remote_dir, "REV"), "") or "").strip() if self.remote_dir else ""

    def remote_count(self):
        return int((toolbox.read(os.path.join(self.remote_dir, "COUNT"), "1") or "1").strip())

    def index(self):
        return toolbox.read_json(os.path.join(self.git, "lab-index"), {})

    def save_index(self, index):
        toolbox.write(os.path.join(self.git, "lab-index"), json.dumps(index, indent=1, sort_keys=True) + "\n")

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
    top = toolbox.find_upwards(lambda d: os.path.isdir(os.path.join(d, ".git")))
    return Repo(top) if top else None


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
    text = toolbox.read(os.path.join(top, ".gitignore"), "") or ""
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
        toolbox.err(f"fatal: '{repo.url}' does not appear to be a git repository\nfatal: The remote end hung up unexpectedly")
        return 128
    old = repo.upstream
    if rev != old:
        repo.set_ref(f"refs/remotes/origin/{repo.branch}", rev)
        repo.set_ref("FETCH_HEAD", rev)
        if "-q" not in args and "--quiet" not in args:
            toolbox.err(f"From {repo.url}\n   {old[:7]}..{rev[:7]}  {repo.branch}     -> origin/{repo.branch}")
    return 0


def git_pull(repo, args):
    status = git_fetch(repo, ["-q"])
    if status:
        return status
    new_rev, head = repo.upstream, repo.head
    if new_rev == head:
        toolbox.out("Already up-to-date.")
        return 0
    tree = os.path.join(repo.remote_dir, "tree")
    index, incoming = repo.index(), tree_files(tree)
    local_changes, untracked_in_way = [], []
    for path, source in incoming.items():
        target = os.path.join(repo.top, path)
        theirs = toolbox.sha256_file(source)
        if path in index:
            if theirs != index[path] and os.path.isfile(target) and toolbox.sha256_file(target) != index[path]:
                local_changes.append(path)
        elif os.path.isfile(target) and toolbox.sha256_file(target) != theirs:
            untracked_in_way.append(path)
    for path in index:
        target = os.path.join(repo.top, path)
        if path not in incoming and os.path.isfile(target) and toolbox.sha256_file(target) != index[path]:
            local_changes.append(path)
    toolbox.out(f"Updating {head[:7]}..{new_rev[:7]}")
    if local_changes:
        toolbox.err("error: Your local changes to the following files would be overwritten by merge:\n"
            + "".join(f"\t{p}\n" for p in sorted(local_changes))
            + "Please, commit your changes or stash them before you can merge.\nAborting")
        return 1
    if untracked_in_way:
        toolbox.err("error: The following untracked working tree files would be overwritten by merge:\n"
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
        if path in index and toolbox.sha256_file(source) == index[path]:
            continue
        existed = os.path.isfile(target)
        added, removed = line_changes(target if existed else None, source)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(source, target)
        rows.append((path, added, removed))
        if not existed or path not in index:
            modes.append(f" create mode {'100755' if os.access(source, os.X_OK) else '100644'} {path}")
    toolbox.out("Fast-forward")
    for line in diffstat(rows) + modes:
        toolbox.out(line)
    repo.save_index({path: toolbox.sha256_file(source) for path, source in incoming.items()})
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
        elif toolbox.sha256_file(target) != index[path]:
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
            toolbox.out(line)
        return 0
    toolbox.out(f"# On branch {repo.branch}")
    behind = repo.remote_count() if repo.upstream != repo.head else 0
    if behind:
        toolbox.out(f"# Your branch is behind 'origin/{repo.branch}' by {behind} commits, and can be fast-forwarded.\n#")
    if not lines:
        toolbox.out("nothing to commit (working directory clean)")
    else:
        for line in lines:
            toolbox.out(f"#\t{line[3:]}" if line.startswith("??") else f"#\tmodified:   {line[3:]}")
    return 0


def git_rev_list(repo, args):
    ranges = [a for a in args if not a.startswith("-")]
    if "--count" not in args or len(ranges) != 1 or ".." not in ranges[0]:
        toolbox.err("usage: git rev-list --count A..B (the lab's git knows no other form)")
        return 129
    left, right = ranges[0].split("..", 1)
    a, b = repo.resolve(left or "HEAD"), repo.resolve(right or "HEAD")
    if a is None or b is None:
        toolbox.err(f"fatal: ambiguous argument '{ranges[0]}': unknown revision or path not in the working tree.")
        return 128
    # The only history the lab knows: the checkout's rev and the remote's head after it.
    toolbox.out(str(repo.remote_count() if (a, b) == (repo.head, repo.remote_rev()) and a != b else 0))
    return 0


def git_rev_parse(repo, args):
    names = [a for a in args if not a.startswith("-")] or ["HEAD"]
    if "--abbrev-ref" in args:
        toolbox.out(repo.branch if names == ["HEAD"] else f"origin/{repo.branch}")
        return 0
    status = 0
    for name in names:
        rev = repo.resolve(name)
        if rev is None:
            toolbox.err(f"fatal: ambiguous argument '{name}': unknown revision or path not in the working tree.")
            status = 128
        else:
            toolbox.out(rev[:7] if "--short" in args else rev)
    return status


def git_ls_remote(repo, args):
    """`git ls-remote [origin] [HEAD|refs/heads/<branch>]`: the remote's refs, read without
    touching the checkout (unlike fetch, which moves origin/<branch> and FETCH_HEAD)."""
    rev = repo.remote_rev()
    if not rev:
        toolbox.err(f"fatal: '{repo.url}' does not appear to be a git repository\nfatal: The remote end hung up unexpectedly")
        return 128
    patterns = [a for a in args if not a.startswith("-") and a != "origin"]
    refs = [("HEAD", rev), (f"refs/heads/{repo.branch}", rev)]
    for name, value in refs:
        if not patterns or any(name == p or name.endswith("/" + p) for p in patterns):
            toolbox.out(f"{value}\t{name}")
    return 0


def git_log(repo, args):
    fmt = next((a.split("=", 1)[1] for a in args if a.startswith(("--format=", "--pretty=format:"))), "%H")
    if fmt.startswith("format:"):
        fmt = fmt[len("format:"):]
    toolbox.out(fmt.replace("%H", repo.head).replace("%h", repo.head[:7]))
    return 0


GIT_COMMANDS = {"pull": git_pull, "fetch": git_fetch, "status": git_status, "rev-parse": git_rev_parse,
                "rev-list": git_rev_list, "log": git_log, "ls-remote": git_ls_remote}


def git(args):
    while args and args[0].startswith("-"):
        if args[0] == "--version":
            toolbox.out("git version 1.7.1")
            return 0
        args = args[2:] if args[0] == "-C" else args[1:]
    if not args:
        toolbox.out("usage: git [--version] [--exec-path[=<path>]] [--html-path] [-p|--paginate|--no-pager] ...")
        return 1
    command, rest = args[0], args[1:]
    if command not in GIT_COMMANDS:
        toolbox.err(f"git: '{command}' is not a git command. See 'git --help'.")
        return 1
    repo = find_repo()
    if repo is None:
        toolbox.err("fatal: Not a git repository (or any of the parent directories): .git")
        return 128
    return GIT_COMMANDS[command](repo, rest)


if __name__ == "__main__":
    toolbox.main({"git": git})
