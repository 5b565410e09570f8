"""finalize.integrity_check retried: the retry waits for the check the first try started
instead of starting another (the first try's worker died while it waited, deferred), and a
second retry in the same run takes the finished check; a new run starts its own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import TaskDeferred

from tests.e2e.vpsadmin_upgrade_v2.test_faults import run_step
from tests.helpers import detached_step, scalar, step_context
from tests.lab.v2_0_cluster import upgrade_to_v2_0

pytestmark = [pytest.mark.lab]


def integrity_step():
    from operators.vpsadmin_upgrade.finalize import IntegrityCheckOperator

    # allow_high: the short upgrade leaves high-severity facts false (no vpsadmin datasets)
    return detached_step(IntegrityCheckOperator, step="integrity.check", allow_high=True, poll_interval=0.5)


def run_context(started: datetime) -> dict:
    return {**step_context(run_id=f"integrity_{started:%H%M%S%f}"),
            "dag_run": SimpleNamespace(start_date=started, run_after=started)}


def test_a_retry_takes_the_check_its_run_started(lab_world):
    lab = lab_world()
    upgrade_to_v2_0(lab)
    context = run_context(datetime.now(UTC) - timedelta(seconds=1))

    with pytest.raises(TaskDeferred) as deferred:  # the first try waits for its check, and dies there
        integrity_step().execute(context)
    check_id = deferred.value.trigger.kwargs["check_id"]
    retried = run_step(integrity_step(), context)
    again = run_step(integrity_step(), context)  # cleared once more in the same run
    assert retried["check_id"] == again["check_id"] == check_id
    assert scalar(lab, "SELECT COUNT(*) FROM integrity_checks") == 1

    later_run = run_step(integrity_step(), run_context(datetime.now(UTC) + timedelta(seconds=1)))
    assert later_run["check_id"] != check_id
    assert scalar(lab, "SELECT COUNT(*) FROM integrity_checks") == 2
