"""How a runbook step id names its task, its doc line and its files."""

from __future__ import annotations

import pytest

from airlift import steps


def test_task_id_in_and_outside_the_section_group():
    assert steps.step_task_id("db.remove-stray-vps", "db") == "remove_stray_vps"
    assert steps.step_task_id("ip.owners", "cluster") == "ip_owners"
    assert steps.step_task_id("api.migrate-final", "finalize") == "api_migrate_final"
    assert steps.step_task_id("lifetimes.mail-users", None) == "lifetimes_mail_users"
    assert steps.step_task_id("nas.remount", "outer.nas") == "remount", "the innermost group counts"


def test_files_named_by_the_step():
    assert steps.step_file("db.remove-stray-vps", ".sql") == "db/remove-stray-vps.sql"
    assert steps.step_file("nas.move-data", ".sh") == "nas/move-data.sh"


@pytest.mark.parametrize("bad", ["remove-stray-vps", "db.", "db/../x.y", "DB.x", "db.x.y"])
def test_malformed_step_ids_are_refused(bad):
    with pytest.raises(ValueError, match="is not a runbook step id"):
        steps.step_task_id(bad)


def test_doc_names_every_step_once_however_often_it_is_built():
    doc = steps.step_doc(["storage.backup-snapshots-db", "backups.to-snapshots"], "Registers old backups.")
    assert steps.steps_named(doc) == ["storage.backup-snapshots-db", "backups.to-snapshots"]
    again = steps.step_doc(["storage.backup-snapshots-db", "backups.to-snapshots"], doc)
    assert again == doc
    assert steps.step_doc([], "Not a step.") == "Not a step."


def test_titles_come_from_the_project_runbooks():
    assert steps.step_title("db.vps-ip-null") == "vps_ip.vps_id: 0 becomes NULL"
    with pytest.raises(KeyError, match="no runbook lists step 'db.nope'"):
        steps.step_title("db.nope")
