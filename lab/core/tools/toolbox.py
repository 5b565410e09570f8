"""What every node-tool simulator shares: output, node files, the multi-call entry point.

Standard library only. On a node this file sits in /usr/local/lib/airlift-lab/ next to the
simulators, which are run through links in /usr/local/sbin (Python puts the link's resolved
directory first on sys.path, so `import toolbox` finds this file); on the host it is
`lab.core.tools.toolbox`. A simulator imports it so:

    if __package__:  # imported on the host (lab.core.tools.zfs)
        from lab.core.tools import toolbox
    else:  # run as a program: toolbox.py is next to it
        import toolbox

Paths are node paths: inside the sandbox the node's directory is `/`.
"""

import hashlib
import json
import os
import sys
import time

# Where the simulators keep what the real tools keep in the kernel or in daemons: service
# states, the mount table, container states, the rpm database, installed gems, ...
STATE = "/var/lib/lab"


def out(text=""):
    """A line on stdout (the newline added unless the text has it), flushed at once."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def err(text):
    """A line (or several) on stderr, ending in exactly one newline."""
    sys.stderr.write(text.rstrip("\n") + "\n")


def read(path, default=None):
    """A file's text, or `default` when it (or a directory on its way) is missing."""
    try:
        with open(path) as f:
            return f.read()
    except (FileNotFoundError, NotADirectoryError):
        return default


def read_json(path, default):
    """A JSON file's value; `default` when the file is missing or empty."""
    text = read(path)
    return json.loads(text) if text else default


def write(path, text, mode=None):
    """Replace a file atomically (a temporary file renamed over it), directories created."""
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


def find_upwards(found, start=None):
    """The first directory from `start` (the working directory) up to `/` for which
    `found(directory)` is true, or None: how git finds .git, bundler its Gemfile, rake its
    Rakefile."""
    here = start or os.getcwd()
    while True:
        if found(here):
            return here
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def service_state(name):
    """"running" or "stopped": the state `service NAME start|stop` (initscripts) keeps, which
    other simulators (thin) and the lab's daemons read and write too."""
    return (read(f"{STATE}/services/{name}", "") or "").strip() or "stopped"


def set_service_state(name, state):
    write(f"{STATE}/services/{name}", state + "\n")


def multicall(tools, argv=None):
    """Run the tool the program was called as: the name of argv[0] (a link on the node's PATH,
    or the simulator's own file name without `.py`) chooses among `tools` {name: function of
    the arguments returning the exit status}."""
    argv = sys.argv if argv is None else argv
    name = os.path.basename(argv[0])
    name = name[:-3] if name.endswith(".py") else name
    tool = tools.get(name)
    if tool is None:
        err(f"{os.path.basename(argv[0])}: unknown tool name {name} (this program answers to "
            f"{', '.join(sorted(tools))})")
        return 127
    try:
        return tool(list(argv[1:]))
    except BrokenPipeError:  # `tool | head`: the reader is gone
        return 141


def main(tools):
    """The simulator's `if __name__ == "__main__":` body."""
    time.tzset()
    sys.exit(multicall(tools))
