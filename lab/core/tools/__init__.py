"""The node-tool simulators with no product knowledge (the tools of a CentOS 6 / OpenVZ node,
ZFS, and the developer tools an upgrade runs), and the toolbox every simulator imports.

Each simulator is a standard-library Python program run inside the node sandbox by the
host's /usr/bin/python3, from the node's /usr/local/lib/airlift-lab/ through links in
/usr/local/sbin (lab/core/nodes.py installs them, with the products' own simulators). A
program answering to several tool names dispatches on its argv[0] (toolbox.main).
"""

from pathlib import Path

TOOLS_DIR = Path(__file__).resolve().parent
# Tool name on the node's PATH -> the simulator here that answers to it. nc.py is installed
# too but linked only by `yum install nc`.
TOOLS = {
    "service": "initscripts.py",
    "crontab": "cronie.py",
    "yum": "yum.py", "rpm": "yum.py",
    "mount": "util_linux.py", "umount": "util_linux.py",
    "vzctl": "vzctl.py", "vzlist": "vzctl.py",
    "zfs": "zfs.py", "zpool": "zfs.py",
    "git": "git.py",
    "bundle": "bundler.py", "bundler": "bundler.py",
    "php": "php.py",
}
