"""The lifetimes DAG's pure parts: settings checked before they reach rake's environment, the
command lines quoted, rake's progress output read, the report's note."""

from __future__ import annotations

import shlex

import pytest

from airlift.errors import StepError
from vpsadmin import lifetimes as lt

PROGRESS_OUTPUT = """\
Progressing objects having expiration date older than 2026-11-18 09:00:00 UTC
Model User
  id=12
  id=15
    resource locked
  id=17
Model Vps
"""


def test_progress_output_is_read_per_model_with_the_locked_ids():
    assert lt.parse_progress(PROGRESS_OUTPUT) == {"User": {"ids": [12, 15, 17], "locked": [15]},
                                                  "Vps": {"ids": [], "locked": []}}


def test_the_runbook_commands_with_execute_only_when_asked():
    dry = lt.progress_command(["User"], ["active"], 14 * lt.DAY, 14 * lt.DAY, "Your account has expired.")
    assert dry == ("cd /opt/vpsadminapi && rake vpsadmin:lifetimes:progress OBJECTS=User STATES=active "
                   "GRACE=1209600 NEW_EXPIRATION=1209600 'REASON=Your account has expired.'")
    assert lt.progress_command(["Vps"], new_expiration=7 * lt.DAY, execute=True).endswith(
        "OBJECTS=Vps NEW_EXPIRATION=604800 EXECUTE=yes")
    assert lt.mail_command(["User"], ["active"], 7).endswith("vpsadmin:lifetimes:mail OBJECTS=User STATES=active DAYS=7")


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"objects": ["User; rm -rf /"]}, "objects"),
    ({"objects": []}, "objects"),
    ({"objects": "User"}, "objects"),
    ({"objects": ["Dataset"], "states": ["suspended"]}, "Dataset has no state 'suspended'"),
    ({"objects": ["User"], "states": ["active,deleted"]}, "states"),
    ({"objects": ["User"], "grace": -1}, "grace"),
    ({"objects": ["User"], "grace": "1209600"}, "grace"),
    ({"objects": ["User"], "new_expiration": True}, "new_expiration"),
    ({"objects": ["User"], "reason": "expired\nEXECUTE=yes"}, "reason"),
    ({"objects": ["User"], "reason": "x" * 256}, "reason"),
])
def test_bad_settings_are_refused_before_any_command_is_built(kwargs, error):
    with pytest.raises(StepError, match=error):
        lt.progress_command(**kwargs)


def test_a_reason_with_shell_characters_stays_one_word():
    reason = "Expired; `reboot` $(id) 'quoted'"
    words = shlex.split(lt.progress_command(["User"], reason=reason).split(" && ", 1)[1])
    assert f"REASON={reason}" in words


@pytest.mark.parametrize("days", [-1, 366, "7", None, 1.5])
def test_mail_days_must_be_a_small_number(days):
    with pytest.raises(StepError, match="days"):
        lt.mail_command(["User"], ["active"], days)


def test_models_and_their_next_states():
    assert lt.MODELS["User"].next_state("active") == "suspended"
    assert lt.MODELS["Vps"].next_state("soft_delete") == "hard_delete"
    assert lt.MODELS["Dataset"].next_state("active") == "deleted"
    assert lt.MODELS["Dataset"].next_state("deleted") is None
    assert lt.MODELS["SnapshotDownload"].underscore == "snapshot_download"


def test_runbook_cron_lines_run_each_job_on_its_own_in_the_runbooks_order():
    lines = lt.runbook_cron_lines(lifetimes_hour=2, report_hour=6)
    assert [line.split()[:2] for line in lines] == [["0", "2"], ["5", "2"], ["10", "2"], ["15", "2"], ["20", "2"],
                                                  ["25", "2"], ["0", "6"]]
    assert "rake vpsadmin:mail_daily_report" in lines[-1]


def test_the_report_note_is_a_short_table():
    from operators.vpsadmin_scheduled.report import FIGURES, report_note

    figures = {name: i for i, (name, _) in enumerate(FIGURES)}
    note = report_note("2026-12-02", figures, sent_at="2026-12-02 07:00:03")
    lines = note.splitlines()
    assert lines[0] == "**Daily report 2026-12-02**, sent 2026-12-02 07:00:03 UTC"
    assert "| new users | 0 |" in lines and "| transactions failed | 13 |" in lines
    assert len(lines) == 4 + len(FIGURES)
