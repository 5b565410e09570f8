"""include/scripts/mysql/{dump,load}.sh run locally with recording stand-ins for the MySQL and
file tools: a hostile argument (they come from XCom) is refused with a clear error before any
tool runs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from airlift.sql import INCLUDE_DIR

SCRIPTS = INCLUDE_DIR / "scripts" / "mysql"
SHA = "0" * 64
TOOLS = ("mysql", "mysqldump", "gzip", "sha256sum", "stat", "mv", "cat")


@pytest.fixture
def tools(tmp_path) -> Path:
    """A bin directory of stand-ins that log their argv to `calls` and do nothing."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in TOOLS:
        tool = bin_dir / name
        tool.write_text(f'#!/bin/bash\necho "{name} $*" >> {tmp_path}/calls\n')
        tool.chmod(0o755)
    return bin_dir


def run(script: str, args: list[str], bin_dir: Path) -> subprocess.CompletedProcess:
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(bin_dir.parent)}
    return subprocess.run(["bash", str(SCRIPTS / script), *args], capture_output=True, text=True, env=env,
                          cwd=bin_dir.parent)


def calls(bin_dir: Path) -> list[str]:
    log = bin_dir.parent / "calls"
    return log.read_text().splitlines() if log.exists() else []


@pytest.mark.parametrize(("args", "error"), [
    (["/var/backups/vpsadmin/d.sql", "x`; DROP DATABASE vpsadmin; -- ", SHA], "is not a plain database name"),
    (["/var/backups/vpsadmin/d.sql", "vpsadmin'; DROP DATABASE vpsadmin; -- ", SHA], "is not a plain database name"),
    (["/var/backups/vpsadmin/d.sql", "--execute=DROP DATABASE vpsadmin", SHA], "is not a plain database name"),
    (["/var/backups/vpsadmin/d.sql", "vpsadmin\n", SHA], "is not a plain database name"),
    (["--help", "vpsadmin", SHA], "is not an absolute path"),
    (["d.sql", "vpsadmin", SHA], "is not an absolute path"),
    (["/var/backups/../../etc/shadow", "vpsadmin", SHA], "is not an absolute path"),
    (["/var/backups/$(touch x).sql", "vpsadmin", SHA], "is not an absolute path"),
    (["/var/backups/a\nb.sql", "vpsadmin", SHA], "is not an absolute path"),
    (["/var/backups/vpsadmin/d.sql", "vpsadmin", "$(touch x)"], "is not a sha256 checksum"),
    (["/var/backups/vpsadmin/d.sql", "vpsadmin", SHA, "--force"], "unknown option --force"),
])
def test_load_refuses_hostile_arguments_before_any_tool_runs(tools, args, error):
    result = run("load.sh", args, tools)
    assert result.returncode == 2 and error in result.stderr
    assert calls(tools) == []


@pytest.mark.parametrize(("args", "error"), [
    (["full", "x`y", "/var/backups/vpsadmin/d.sql.gz"], "is not a plain database name"),
    (["full", "--all-databases", "/var/backups/vpsadmin/d.sql.gz"], "is not a plain database name"),
    (["latin1", "vpsadmin", "/var/backups/vpsadmin/d.sql", "members", "--where=1"], "is not a plain table name"),
    (["latin1", "vpsadmin", "/var/backups/vpsadmin/d.sql", "a`b"], "is not a plain table name"),
    (["full", "vpsadmin", "-"], "is not an absolute path"),
    (["full", "vpsadmin", "/var/backups/../etc/d.sql.gz"], "is not an absolute path"),
    (["full", "vpsadmin", "/var/backups/vpsadmin/d.sql"], "ending in .sql.gz"),
    (["evil", "vpsadmin", "/var/backups/vpsadmin/d.sql.gz"], "unknown dump mode evil"),
])
def test_dump_refuses_hostile_arguments_before_any_tool_runs(tools, args, error):
    result = run("dump.sh", args, tools)
    assert result.returncode == 2 and error in result.stderr
    assert calls(tools) == []


DUMP = """-- MariaDB dump
CREATE TABLE `servers` (
  `server_id` int
);
INSERT INTO `servers` VALUES (1),(2);
/*!50001 CREATE TABLE `a_view` (
CREATE TABLE `odd ``name` (
  `x` int
);
"""


@pytest.fixture
def mysqldump(tmp_path) -> Path:
    """A bin directory whose mysqldump prints $tmp/dump.sql (the real gzip, sha256sum, ...)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "mysqldump"
    tool.write_text(f'#!/bin/bash\necho "mysqldump $*" >> {tmp_path}/calls\ncat {tmp_path}/dump.sql\n')
    tool.chmod(0o755)
    return bin_dir


def report(result: subprocess.CompletedProcess) -> dict:
    import json

    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.parametrize(("mode", "suffix"), [("full", ".sql.gz"), ("latin1", ".sql")])
def test_dump_reports_the_uncompressed_bytes_and_the_tables_it_creates(mysqldump, tmp_path, mode, suffix):
    text = DUMP + "-- Dump completed on 2026-01-01\n"
    (tmp_path / "dump.sql").write_text(text)
    output = tmp_path / f"vpsadmin-x-manual__1{suffix}"
    dump = report(run("dump.sh", [mode, "vpsadmin", str(output), *(["servers"] if mode == "latin1" else [])],
                      mysqldump))
    assert dump["bytes"] == len(text.encode()) and dump["tables"] == ["servers", "odd `name"]
    assert dump["size"] == output.stat().st_size and dump["reused"] is False and dump["complete"] is True
    assert report(run("dump.sh", [mode, "vpsadmin", str(output)], mysqldump))["reused"] is True
    assert len(calls(mysqldump)) == 1, "a dump that verifies is kept"


def test_dump_refuses_a_dump_without_the_completion_trailer(mysqldump, tmp_path):
    (tmp_path / "dump.sql").write_text(DUMP)  # mysqldump stopped short
    output = tmp_path / "vpsadmin-x-manual__1.sql.gz"
    result = run("dump.sh", ["full", "vpsadmin", str(output)], mysqldump)
    assert result.returncode == 1 and "is incomplete" in result.stderr and not output.exists()


def test_dump_replaces_a_corrupt_file_instead_of_keeping_it(mysqldump, tmp_path):
    import gzip

    (tmp_path / "dump.sql").write_text(DUMP + "-- Dump completed on 2026-01-01\n")
    output = tmp_path / "vpsadmin-x-manual__1.sql.gz"
    output.write_bytes(gzip.compress((DUMP + "-- Dump completed on 2026-01-01\n").encode())[:-12] + b"\0" * 12)
    assert report(run("dump.sh", ["full", "vpsadmin", str(output)], mysqldump))["reused"] is False
