"""Lab nodes: a root directory per host and the bubblewrap sandbox every command runs in.

A node's directory is its `/`; the host's `/usr` is mounted read-only over it, with the
node's own `/usr/local` on top (where the tool simulators live), so `mkdir -p /var/x` or an
edit of `/etc/...` lands in that node only while bash, coreutils, rsync, ssh and the
MariaDB clients are the host's real binaries.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from lab.core import tools as core_tools
from lab.core.config import LabConfig
from lab.core.products import products
from lab.core.topology import HOSTS, LabHost

NODE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NODE_TOOLS_LIB = "/usr/local/lib/airlift-lab"  # the simulators and their toolbox, on a node


def _tool_sets() -> list[tuple[Path, dict[str, str]]]:
    """(directory, {tool name: simulator file there}): the core's (lab/core/tools/, with the
    toolbox), then every product's (lab/<product>/tools/)."""
    return [(core_tools.TOOLS_DIR, core_tools.TOOLS)] + [
        (product.TOOLS_DIR, product.TOOLS) for product in products()]


def _tools() -> dict[str, Path]:
    tools: dict[str, Path] = {}
    for directory, names in _tool_sets():
        for name, program in names.items():
            if name in tools:
                raise RuntimeError(f"two simulators for the node tool {name}: {tools[name]}, "
                                   f"{directory / program}")
            tools[name] = directory / program
    return tools


# Tool name on the node's PATH -> the simulator that answers to it (a simulator answering to
# several names dispatches on its argv[0]).
TOOLS: dict[str, Path] = _tools()


def bwrap_argv(root: Path, argv: list[str], env: dict[str, str] | None = None) -> list[str]:
    """The bubblewrap command that runs `argv` inside the node rooted at `root`, with the
    node's environment plus `env` (e.g. sshd's SSH_ORIGINAL_COMMAND for a forced command)."""
    extra = [a for name, value in (env or {}).items() for a in ("--setenv", name, value)]
    return [
        "bwrap",
        "--bind", str(root), "/",
        "--ro-bind", "/usr", "/usr",
        "--bind", str(root / "usr" / "local"), "/usr/local",
        "--ro-bind-try", "/etc/alternatives", "/etc/alternatives",
        "--proc", "/proc",
        "--dev", "/dev",
        "--die-with-parent",
        "--clearenv",
        "--setenv", "PATH", NODE_PATH,
        "--setenv", "HOME", "/root",
        "--setenv", "USER", "root",
        "--setenv", "LOGNAME", "root",
        "--setenv", "SHELL", "/bin/bash",
        "--setenv", "LANG", "C.UTF-8",
        "--setenv", "TERM", os.environ.get("TERM", "xterm"),
        *extra,
        "--unshare-uts", "--hostname", root.name,
        "--chdir", "/root",
        *argv,
    ]


def run_in_node(root: Path, command: str, stdin: bytes | None = None,
                timeout: float = 60) -> subprocess.CompletedProcess:
    """Run a shell command inside a node (used by the lab's own daemons and by tests)."""
    return subprocess.run(
        bwrap_argv(root, ["/bin/bash", "-c", command]),
        input=stdin, capture_output=True, timeout=timeout,
    )


def write_file(path: Path, text: str, mode: int = 0o644) -> None:
    """Write a node file, creating its directories."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def _etc_hosts() -> str:
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost"]
    for h in HOSTS:
        names = [h.name]
        if h.server:
            names.insert(0, h.server["server_name"])
        lines.append(f"{h.address}\t{' '.join(names)}")
    return "\n".join(lines) + "\n"


def build_node(cfg: LabConfig, host: LabHost, node_key: Path) -> Path:
    """Create the node's root directory from scratch: the skeleton every host has."""
    root = cfg.node_root(host.name)
    if root.exists():
        shutil.rmtree(root)
    for d in ("usr/local/bin", "usr/local/sbin", "usr/local/lib/airlift-lab", "etc/init.d",
              "root/.ssh", "tmp", "var/log", "var/run", "var/lib/lab/services", "var/spool/cron",
              "opt", "proc", "dev"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "tmp").chmod(0o1777)
    for link, target in (("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib"),
                         ("lib64", "usr/lib64")):
        (root / link).symlink_to(target)
    (root / "etc" / "alternatives").mkdir()
    for name in ("passwd", "group", "nsswitch.conf", "shells"):
        if Path("/etc", name).exists():
            shutil.copy(Path("/etc", name), root / "etc" / name)
    write_file(root / "etc/hostname", host.name + "\n")
    write_file(root / "etc/hosts", _etc_hosts())
    (root / "etc/localtime").symlink_to("/usr/share/zoneinfo/Europe/Prague")
    write_file(root / "etc/redhat-release", "CentOS release 6.7 (Final)\n")
    # ssh from inside a node reaches the other nodes on the lab's shared port, keys checked.
    write_file(root / "etc/ssh/ssh_config",
           f"Host *\n  Port {cfg.ssh_port}\n  User root\n  IdentityFile /root/.ssh/id_ed25519\n"
           "  UserKnownHostsFile /etc/ssh/ssh_known_hosts\n  StrictHostKeyChecking yes\n"
           "  BatchMode yes\n")
    shutil.copy(cfg.known_hosts, root / "etc/ssh/ssh_known_hosts")
    shutil.copy(node_key, root / "root/.ssh/id_ed25519")
    (root / "root/.ssh/id_ed25519").chmod(0o600)
    shutil.copy(node_key.with_suffix(".pub"), root / "root/.ssh/id_ed25519.pub")
    install_tools(root)
    write_file(root / "etc/init.d/crond", "#!/bin/sh\n# lab: service state is kept by `service`\n", 0o755)
    write_file(root / "var/lib/lab/services/crond", "running\n")
    return root


def install_tools(root: Path) -> None:
    """Every simulator file (the toolbox they import, and programs linked later, such as nc
    by `yum install nc`) into the node's /usr/local/lib/airlift-lab, one directory, so
    `import toolbox` finds it next to the script; a link in /usr/local/sbin per tool name."""
    lib = root / NODE_TOOLS_LIB.lstrip("/")
    installed: dict[str, Path] = {}
    for directory, _ in _tool_sets():
        for program in sorted(directory.glob("*.py")):
            if program.name == "__init__.py":
                continue
            if program.name in installed:
                raise RuntimeError(f"two simulators named {program.name}: {installed[program.name]}, {program}")
            installed[program.name] = program
            shutil.copy(program, lib / program.name)
            (lib / program.name).chmod(0o755)
    for product in products():
        for name, module in getattr(product, "LIBRARIES", {}).items():
            shutil.copy(module, lib / name)
    for name, program in TOOLS.items():
        link = root / "usr/local/sbin" / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(f"{NODE_TOOLS_LIB}/{program.name}")
