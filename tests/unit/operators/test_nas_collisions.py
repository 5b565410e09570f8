"""preflight.upgrade_phase's NAS check, on fake nodes and database: move-data.sh --check's
collision refusals become the preflight's (named by node), the ones storage.rename-private
clears first do not, skipped nodes are not asked, and a check that fails otherwise stops
the run instead of passing as "no collision"."""

from __future__ import annotations

import pytest

from airlift.errors import StepError
from airlift.remote import Result
from airlift.sql import INCLUDE_DIR
from operators.vpsadmin_upgrade.preflight import UpgradePhaseOperator

SQL = (INCLUDE_DIR / "sql/vpsadmin/preflight/nas-roots.sql").read_text()  # the rendered template fields
SCRIPT = (INCLUDE_DIR / "scripts/vpsadmin/nas/move-data.sh").read_text()
ROOTS = [{"id": 1, "root_dataset": "storage/nas", "server_name": "storage1.prg", "address": "10.0.0.21"},
         {"id": 3, "root_dataset": "tank/nas", "server_name": "storage2.prg", "address": "10.0.0.22"}]


class FakeDb:
    def __init__(self, roots):
        self.roots = roots

    def rows(self, statement, parameters=None):
        assert "storage_layout = 'per_member'" in statement
        return self.roots


class FakeNodes:
    def __init__(self, answers: dict[str, tuple[int, str]]):
        self.answers, self.asked = answers, []

    def run_script(self, host, script, args, check=True):
        assert script == SCRIPT and args[0] == "--check" and not check
        self.asked.append((host, args[1]))
        status, stderr = self.answers[host]
        return Result(host, "bash -s", status, "", stderr)


def collisions(answers, skip_nodes=(), roots=ROOTS):
    op = UpgradePhaseOperator(task_id="upgrade_phase", v1_22_prefixes=("db.",), sql=SQL, script=SCRIPT)
    op.__dict__["db"], op.__dict__["nodes"] = FakeDb(roots), FakeNodes(answers)
    return op._nas_collisions(list(skip_nodes)), op.nodes.asked


def test_collisions_are_named_and_renamed_private_datasets_are_not():
    found, asked = collisions({
        "10.0.0.21": (1, "refused: storage/nas/7: /storage/nas/7/private/README.txt exists; moving "
                         "/storage/nas/7/README.txt there would overwrite it\n"
                         "refused: storage/nas/12: /storage/nas/12/private is the mountpoint of dataset "
                         "storage/nas/12/private (rename it first)\n"),
        "10.0.0.22": (10, "")})
    assert found == ["storage1.prg: storage/nas/7: /storage/nas/7/private/README.txt exists; moving "
                     "/storage/nas/7/README.txt there would overwrite it"]
    assert asked == [("10.0.0.21", "storage/nas"), ("10.0.0.22", "tank/nas")]


def test_skipped_nodes_are_not_asked():
    found, asked = collisions({"10.0.0.22": (0, "")}, skip_nodes=["storage1"])
    assert found == [] and asked == [("10.0.0.22", "tank/nas")]


@pytest.mark.parametrize(("status", "stderr"), [(1, "cannot open 'storage/nas': dataset does not exist\n"),
                                                (2, "bash: zfs: command not found\n")])
def test_a_check_that_fails_otherwise_stops_the_run(status, stderr):
    with pytest.raises(StepError, match=f"move-data.sh --check storage/nas exited {status}"):
        collisions({"10.0.0.21": (status, stderr), "10.0.0.22": (0, "")})


def test_a_root_the_database_holds_that_no_command_may_take_is_refused():
    bad = [{**ROOTS[0], "root_dataset": "-o x storage/nas"}]
    with pytest.raises(StepError, match="storage_root.root_dataset of storage_root 1"):
        collisions({}, roots=bad)
