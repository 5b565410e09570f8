"""synnefo_project_control on a lab world migrated to 0.13 with the world's projects: a
scheduled run terminates exactly the expired projects (not the terminated one, not the live
ones) and says so in XCom; a second run finds nothing; plan mode only lists them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lab.core.topology import host
from lab.synnefo.projects import seed_projects
from lab.synnefo.world import PROJECTS
from tests.e2e.synnefo_upgrade_v013 import query, sh, synnefo_world
from tests.helpers import run_artifacts, run_dag

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("airflow_db")]
DAG_ID = "synnefo_project_control"
TERMINATED = 100


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Astakos at 0.13: its packages, the case duplicates gone, syncdb and migrate; then the
    world's projects."""
    with synnefo_world(tmp_path_factory) as lab:
        sh(lab, "astakos", "apt-get install -y snf-common snf-webproject snf-quotaholder-app snf-astakos-app >/dev/null")
        duplicates = [str(i) for ids in lab.info["duplicates"]["astakos"].values() for i in sorted(ids)[:-1]]
        sh(lab, "astakos", f"echo yes | delete_astakos_users.py {' '.join(duplicates)} >/dev/null")
        sh(lab, "astakos", "echo no | snf-manage syncdb >/dev/null && snf-manage migrate </dev/null >/dev/null")
        lab.projects = seed_projects(lab.info["server"], lab.info["snf_apps"])
        yield lab


def states(lab) -> dict[int, int]:
    return dict(query(lab, "snf_apps", "SELECT id, state FROM im_project"))


def scheduled(minutes: int = 0) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=minutes)


def conf(**changes) -> dict:
    return {"astakos_host": host("astakos").address, "terminate": True, "dry_run": False, **changes}


def test_plan_mode_lists_the_expired_projects_and_terminates_none(world):
    before = states(world)
    state, tasks, _ = run_dag(DAG_ID, conf(dry_run=True))
    assert state == "success" and tasks["s10_project_control"] == "success"
    assert states(world) == before


def test_the_scheduled_run_terminates_exactly_the_expired_projects(world):
    expired = {world.projects[p.name] for p in PROJECTS if p.expired}
    live = {world.projects[p.name] for p in PROJECTS if not p.expired}
    assert expired and live, "the world has both"
    before = states(world)
    state, tasks, _ = run_dag(DAG_ID, None, run_after=scheduled())
    assert state == "success", tasks
    after = states(world)
    assert {i for i, s in after.items() if s == TERMINATED and before[i] != TERMINATED} == expired
    assert {i: after[i] for i in live} == {i: before[i] for i in live}
    xcoms = run_artifacts(DAG_ID)  # the expired and terminated projects, by name
    assert all(p.name in xcoms for p in PROJECTS if p.expired)
    assert not any(p.name in xcoms for p in PROJECTS if not p.expired)


def test_a_second_run_finds_nothing_to_terminate(world):
    before = states(world)
    state, tasks, _ = run_dag(DAG_ID, None, run_after=scheduled(1))
    assert state == "success", tasks
    assert states(world) == before
