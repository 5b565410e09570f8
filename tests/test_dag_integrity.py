"""Every DAG imports cleanly, parses fast and follows the project's conventions; every
runbook step of an implemented section is named by a task."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from airlift.steps import runbook, step_ids, steps_named

ROOT = Path(__file__).resolve().parents[1]
SHARED_RUNBOOKS = ROOT.parent / "shared" / "runbooks"

# runbook -> (dag_id, the sections whose steps are implemented so far)
IMPLEMENTED = {
    "vpsadmin-v2.0": ("vpsadmin_upgrade_v2", ("prereq", "db")),
}


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert dagbag.dags


def test_each_dag_file_parses_in_under_a_second(dagbag):
    slow = {s.file: s.duration.total_seconds() for s in dagbag.dagbag_stats
            if s.duration.total_seconds() >= 1.0}
    assert not slow, slow


def test_conventions(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, dag_id
        assert dag.catchup is False, dag_id
        assert dag.doc_md, dag_id
        for task in dag.tasks:
            assert task.retries is not None, task.task_id
        assert dag.default_args.get("retries", 0) >= 1, dag_id


def test_upgrade_dags_default_to_plan_mode(dagbag):
    dag = dagbag.dags["vpsadmin_upgrade_v2"]
    assert dag.params["dry_run"] is True
    assert dag.params["require_approval"] is True
    assert dag.max_active_runs == 1


@pytest.mark.parametrize("name", sorted(IMPLEMENTED))
def test_every_step_of_implemented_sections_is_named_by_a_task(dagbag, name):
    dag_id, sections = IMPLEMENTED[name]
    named = {step for task in dagbag.dags[dag_id].tasks for step in steps_named(task.doc_md)}
    wanted = {s for s in step_ids(name, dag_id) if s.split(".")[0] in sections}
    assert wanted, "the implemented sections have steps"
    assert sorted(wanted - named) == []


@pytest.mark.parametrize("name", sorted(IMPLEMENTED))
def test_tasks_name_only_known_steps(dagbag, name):
    dag_id, _ = IMPLEMENTED[name]
    known = set(step_ids(name))
    named = {step for task in dagbag.dags[dag_id].tasks for step in steps_named(task.doc_md)}
    assert named and named <= known, named - known


@pytest.mark.parametrize("name", sorted(IMPLEMENTED))
def test_step_list_matches_the_shared_registry(name):
    """The project's own copy of the step ids is the same list as the shared registry (when
    it is beside the checkout, as in development and CI)."""
    shared = SHARED_RUNBOOKS / f"{name}.yaml"
    if not shared.exists():
        pytest.skip(f"{shared} is not beside this checkout")
    theirs = [(s["id"], s["dag"]) for s in yaml.safe_load(shared.read_text())["steps"]]
    ours = [(s["id"], s["dag"]) for s in runbook(name)["steps"]]
    assert ours == theirs


def test_dags_import_after_airflow_loads_the_plugins_folder():
    """What a scheduler or dag-processor does first: load plugins/ (whose packages must not be
    loaded as plugin modules, see plugins/.airflowignore), then parse the DAGs."""
    import os
    import subprocess
    import sys

    code = ("from airflow import plugins_manager; plugins_manager.ensure_plugins_loaded(); "
            "assert plugins_manager.get_import_errors() == {}, plugins_manager.get_import_errors(); "
            "from airflow.dag_processing.dagbag import DagBag; "
            f"bag = DagBag(dag_folder={str(ROOT / 'dags')!r}); print(bag.import_errors or 'ok')")
    env = {**os.environ, "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
           "PYTHONPATH": f"{ROOT / 'plugins'}:{ROOT / 'dags'}"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/", env=env)
    assert out.returncode == 0 and out.stdout.strip().splitlines()[-1] == "ok", out.stdout + out.stderr


def test_parsing_loads_no_heavy_driver():
    """DAG files are parsed every 30 s: the SSH, MySQL and pandas libraries load in tasks only."""
    import os
    import subprocess
    import sys

    code = ("import sys; from airflow.dag_processing.dagbag import DagBag; "
            f"bag = DagBag(dag_folder={str(ROOT / 'dags')!r}); assert bag.dags and not bag.import_errors; "
            "print(sorted(m for m in ('paramiko', 'MySQLdb', 'pandas', 'asyncssh') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT, env={**os.environ,
                                        "PYTHONPATH": f"{ROOT}:{ROOT / 'plugins'}:{ROOT / 'dags'}"})
    assert out.stdout.strip().splitlines()[-1] == "[]"
