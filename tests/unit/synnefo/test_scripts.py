"""include/scripts/synnefo/ run locally with stand-ins for dpkg-query and apt-get: what each
role installs, what counts as done, and refusals of bad arguments before any tool runs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from airlift.sql import INCLUDE_DIR

INSTALL = INCLUDE_DIR / "scripts" / "synnefo" / "s3" / "install-packages.sh"


@pytest.fixture
def bin_dir(tmp_path) -> Path:
    """dpkg-query answers from `installed` (lines "package status version"), apt-get logs."""
    directory = tmp_path / "bin"
    directory.mkdir()
    (directory / "dpkg-query").write_text(
        '#!/bin/bash\npackage=${@: -1}\nline=$(grep "^$package " ' + str(tmp_path / "installed") + ')'
        ' || { echo "dpkg-query: no packages found matching $package" >&2; exit 1; }\n'
        'set -- $line\nprintf "%s |%s" "$2" "$3"\n')
    (directory / "apt-get").write_text(f'#!/bin/bash\necho "DEBIAN_FRONTEND=$DEBIAN_FRONTEND apt-get $*" >> '
                                       f'{tmp_path}/calls\n')
    for tool in directory.iterdir():
        tool.chmod(0o755)
    (tmp_path / "installed").write_text("")
    return directory


def run(bin_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(INSTALL), *args], capture_output=True, text=True,
                          env={"PATH": f"{bin_dir}:/usr/bin:/bin"})


def installed(bin_dir: Path, text: str) -> None:
    (bin_dir.parent / "installed").write_text(text)


def test_check_lists_what_is_not_at_the_release(bin_dir):
    installed(bin_dir, "snf-common ii 0.12.5-1\nsnf-webproject ii 0.13.1-1\nsnf-quotaholder-app rc 0.13-1\n")
    result = run(bin_dir, "--check", "astakos", "0.13")
    assert result.returncode == 10, result.stderr
    assert result.stdout == ("apt-get install snf-common snf-quotaholder-app snf-astakos-app (now: snf-common "
                             "0.12.5-1, snf-quotaholder-app 0.13-1, snf-astakos-app not installed)\n")
    assert not (bin_dir.parent / "calls").exists()


def test_a_run_installs_only_what_is_missing_and_a_done_host_is_left_alone(bin_dir):
    installed(bin_dir, "snf-common ii 0.13-1\nsnf-cyclades-gtools ii 0.12.5-1\nsnf-pithos-backend ii 0.13\n")
    assert run(bin_dir, "ganeti", "0.13").returncode == 0
    assert (bin_dir.parent / "calls").read_text() == (
        "DEBIAN_FRONTEND=noninteractive apt-get install -y snf-cyclades-gtools\n")
    installed(bin_dir, "snf-common ii 0.13-1\nsnf-cyclades-gtools ii 0.13.2-1\nsnf-pithos-backend ii 0.13\n")
    assert run(bin_dir, "--check", "ganeti", "0.13").returncode == 0


def test_a_neighbouring_release_does_not_count(bin_dir):
    installed(bin_dir, "snf-common ii 0.130-1\nsnf-cyclades-gtools ii 0.13\nsnf-pithos-backend ii 0.13\n")
    assert run(bin_dir, "--check", "ganeti", "0.13").stdout.startswith("apt-get install snf-common ")


@pytest.mark.parametrize(("args", "error"), [
    (["nova", "0.13"], "unknown role nova"),
    (["astakos", "0.13; reboot"], "is not a release number"),
    (["astakos", "-y"], "is not a release number"),
])
def test_bad_arguments_are_refused_before_any_tool_runs(bin_dir, args, error):
    result = run(bin_dir, *args)
    assert result.returncode == 2 and error in result.stderr
    assert not (bin_dir.parent / "calls").exists()
