"""The simulators' shared toolbox (lab/core/tools/toolbox.py): its helpers on the host, and
every simulator importing it both on the host (as lab.core.tools.toolbox) and inside a node
sandbox, where it runs from /usr/local/lib/airlift-lab through its /usr/local/sbin link."""

from __future__ import annotations

import hashlib
import importlib
import os
import sys
from pathlib import Path

import pytest

from lab.core import nodes
from lab.core.tools import toolbox


def test_out_and_err(capsys):
    toolbox.out("one")
    toolbox.out("two\n")
    toolbox.out()
    toolbox.err("oops\n\n")
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("one\ntwo\n\n", "oops\n")


def test_read_write_and_sha256(tmp_path):
    path = tmp_path / "a" / "b" / "file"
    assert toolbox.read(path, "default") == "default"
    assert toolbox.read(tmp_path / "missing" / "x") is None
    toolbox.write(str(path), "text\n", mode=0o600)
    assert toolbox.read(path) == "text\n"
    assert path.stat().st_mode & 0o777 == 0o600
    assert sorted(os.listdir(path.parent)) == ["file"], "no temporary file left behind"
    assert toolbox.read(path / "below") is None, "a file in the way counts as missing"
    assert toolbox.sha256_file(path) == hashlib.sha256(b"text\n").hexdigest()
    assert toolbox.read_json(tmp_path / "none.json", {"d": 1}) == {"d": 1}
    toolbox.write(str(tmp_path / "x.json"), '{"a": [1]}')
    assert toolbox.read_json(tmp_path / "x.json", {}) == {"a": [1]}


def test_find_upwards(tmp_path):
    (tmp_path / "top" / ".git").mkdir(parents=True)
    deep = tmp_path / "top" / "a" / "b"
    deep.mkdir(parents=True)
    found = toolbox.find_upwards(lambda d: os.path.isdir(os.path.join(d, ".git")), start=str(deep))
    assert found == str(tmp_path / "top")
    assert toolbox.find_upwards(lambda d: False, start=str(deep)) is None


def test_service_state(tmp_path, monkeypatch):
    monkeypatch.setattr(toolbox, "STATE", str(tmp_path))
    assert toolbox.service_state("crond") == "stopped"
    toolbox.set_service_state("crond", "running")
    assert (tmp_path / "services" / "crond").read_text() == "running\n"
    assert toolbox.service_state("crond") == "running"


def test_multicall_dispatches_on_argv0(capsys):
    calls = []
    tools = {"yum": lambda args: calls.append(("yum", args)) or 0,
             "rpm": lambda args: calls.append(("rpm", args)) or 3}
    assert toolbox.multicall(tools, ["/usr/local/sbin/rpm", "-q", "nc"]) == 3
    assert toolbox.multicall(tools, ["/usr/local/lib/airlift-lab/yum.py", "list"]) == 0
    assert calls == [("rpm", ["-q", "nc"]), ("yum", ["list"])]
    assert toolbox.multicall(tools, ["/usr/local/sbin/dnf"]) == 127
    assert "unknown tool name dnf" in capsys.readouterr().err

    def broken(args):
        raise BrokenPipeError
    assert toolbox.multicall({"vzlist": broken}, ["vzlist"]) == 141


def simulator_files() -> list[Path]:
    return [p for directory, _ in nodes._tool_sets() for p in sorted(directory.glob("*.py"))
            if p.name not in ("__init__.py", "toolbox.py")]


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(Path(nodes.__file__).resolve().parents[2]).with_suffix("").parts)


@pytest.mark.parametrize("path", simulator_files(), ids=lambda p: p.name)
def test_every_simulator_uses_the_one_toolbox(path):
    """A program shares the toolbox and runs through its entry point; a library beside the
    programs (rake's api_tasks.py, never run itself) defines no helper of its own either."""
    module = importlib.import_module(module_name(path))
    source = path.read_text()
    if 'if __name__ == "__main__":' in source or path.resolve() in {p.resolve() for p in nodes.TOOLS.values()}:
        assert module.toolbox is toolbox, "imported on the host, a simulator shares lab.core.tools.toolbox"
        assert "toolbox.main(" in source, "run as a program, it goes through the toolbox's entry point"
    for helper in ("def out(", "def err(", "def read(", "def write(", "def sha256_file("):
        assert helper not in source, f"{path.name} defines its own {helper[4:-1]}"


def test_node_library_shadows_no_standard_module():
    """The node's /usr/local/lib/airlift-lab is sys.path[0] of every simulator."""
    names = {p.stem for p in simulator_files()} | {"toolbox"}
    assert not names & set(sys.stdlib_module_names)


def test_tools_map_is_core_plus_products():
    assert nodes.TOOLS["vzlist"].parts[-3:] == ("core", "tools", "vzctl.py")
    assert nodes.TOOLS["rake"].parts[-3:] == ("vpsadmin", "tools", "rake.py")
    assert all(path.is_file() for path in nodes.TOOLS.values())


@pytest.fixture
def bare_node(tmp_path):
    """A node root with nothing but the skeleton bwrap needs and the installed tools."""
    root = tmp_path / "node"
    for d in ("usr/local/bin", "usr/local/sbin", "usr/local/lib/airlift-lab", "root", "tmp",
              "proc", "dev", "etc", "var/lib/lab"):
        (root / d).mkdir(parents=True)
    for link, target in (("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib"),
                         ("lib64", "usr/lib64")):
        (root / link).symlink_to(target)
    nodes.install_tools(root)
    return root


def test_every_tool_runs_in_a_node_through_its_link(bare_node):
    lib = bare_node / "usr/local/lib/airlift-lab"
    assert (lib / "toolbox.py").is_file() and (lib / "nc.py").is_file()
    for name, program in nodes.TOOLS.items():
        link = bare_node / "usr/local/sbin" / name
        assert os.readlink(link) == f"/usr/local/lib/airlift-lab/{program.name}"
        # No arguments: every tool answers with its usage, a listing or an error of its own.
        result = nodes.run_in_node(bare_node, f"{name} </dev/null", timeout=30)
        stderr = result.stderr.decode()
        assert "Traceback" not in stderr and result.returncode != 127, (name, stderr)
    nc = nodes.run_in_node(bare_node, "/usr/local/lib/airlift-lab/nc.py")
    assert (nc.returncode, nc.stderr) == (1, b"usage: nc [-z] hostname port\n")
    version = nodes.run_in_node(bare_node, "git --version")
    assert version.stdout == b"git version 1.7.1\n"
