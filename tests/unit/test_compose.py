"""docker-compose.yaml and the launcher that starts the same shape here (lab/deploy.py) are held
together: one executor, the same components, the same environment keys and values (with this
machine's addresses and secrets put in), the project's folders where the containers mount them,
and no default credential anywhere."""

from __future__ import annotations

import json
import re
import stat

import pytest
import yaml

from lab.core.config import PROJECT_ROOT
from lab.deploy import COMPOSE_FILE, DeployError, Deployment, common_environment, interpolate, main, service_command

STATE = {"db_port": 5432, "redis_port": 6379, "redis_db": 0, "redis_private": False, "scheduler_health_port": 8974,
         "worker_log_port": 8793, "trigger_log_port": 8794}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture
def deployment(tmp_path):
    return Deployment(tmp_path / "production", port=8080)


def airflow_services(compose: dict) -> dict[str, dict]:
    return {name: service for name, service in compose["services"].items() if name.startswith("airflow-")
            and name != "airflow-init"}


def test_interpolation_follows_compose():
    values = {"SET": "x", "EMPTY": ""}
    assert interpolate("${SET}-${UNSET}-${UNSET:-d}-${EMPTY:-d}-${EMPTY-d}-$$HOME", values) == "x--d-d--$HOME"
    with pytest.raises(DeployError, match="EMPTY is not set: give it"):
        interpolate("${EMPTY:?give it}", values)
    assert interpolate("${EMPTY?give it}", values) == ""


def test_the_launcher_runs_the_compose_services(compose, deployment):
    commands = {name: service["command"] for name, service in airflow_services(compose).items()}
    assert commands == {"airflow-apiserver": "api-server", "airflow-scheduler": "scheduler",
                        "airflow-dag-processor": "dag-processor", "airflow-worker": "celery worker",
                        "airflow-triggerer": "triggerer"}
    names = deployment.service_names()
    assert sorted(name.rstrip("-0123456789") for name in names) == sorted(
        [*(s for s in commands if s != "airflow-worker"), "airflow-worker", "airflow-worker"]), "two workers"
    assert all(service_command(name) == commands[name].split() for name in commands)


def test_one_environment_for_both(compose, deployment):
    deployment.secrets()
    env = common_environment(deployment.variables(STATE), deployment.home)
    common = compose["x-airflow-common"]["environment"]
    assert set(env) == set(common)
    assert env["AIRFLOW__CORE__EXECUTOR"] == common["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CORE__AUTH_MANAGER"] == common["AIRFLOW__CORE__AUTH_MANAGER"]
    # every value is the compose file's, with only variables and the mounted paths put in
    for key, raw in common.items():
        if "${" not in str(raw) and not str(raw).startswith("/opt/airflow"):
            assert env[key] == str(raw), key
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith(f"postgresql+psycopg2://{deployment.db_name}:")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith(f"@127.0.0.1:5432/{deployment.db_name}")
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://:@127.0.0.1:6379/0"
    json.loads(env["AIRFLOW_CONN_AIRFLOW_API"])  # valid JSON once filled in


def test_the_containers_mounts_are_the_projects_folders(compose, deployment):
    common = compose["x-airflow-common"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in common["volumes"]}
    for folder in ("dags", "plugins", "include"):
        assert mounts[f"/opt/airflow/{folder}"] == f"./{folder}"
    env = common_environment(deployment.variables(STATE), deployment.home)
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(PROJECT_ROOT / "dags")
    assert env["AIRFLOW__CORE__PLUGINS_FOLDER"] == str(PROJECT_ROOT / "plugins")
    assert env["AIRLIFT_INCLUDE_DIR"] == str(PROJECT_ROOT / "include")
    assert env["AIRFLOW__LOGGING__BASE_LOG_FOLDER"] == str(deployment.home / "logs")
    # the services that run tasks or triggers also get the nodes' SSH key and known_hosts
    for name in ("airflow-worker", "airflow-triggerer"):
        volumes = compose["services"][name]["volumes"]
        assert any(v.endswith(":/home/airflow/.ssh:ro") for v in volumes), name
        assert {v.split(":")[1] for v in volumes} >= set(mounts), name


def test_no_default_credential(compose):
    text = COMPOSE_FILE.read_text()
    body = text[text.index("\n---\n"):]  # what compose reads, not the comments above it
    secret_with_default = [m.group(0) for m in re.finditer(r"(?<!\$)\$\{([A-Z_]+)(:?[-?])?[^}]*\}", body)
                           if re.search("PASSWORD|SECRET|FERNET", m.group(1)) and m.group(2) not in (":?", "?")]
    assert secret_with_default == []
    assert "airflow:airflow" not in body and "PASSWORD: airflow" not in body
    for variable in ("AIRLIFT_DB_PASSWORD", "AIRLIFT_FERNET_KEY", "AIRLIFT_JWT_SECRET", "AIRLIFT_API_SECRET_KEY",
                     "AIRLIFT_ADMIN_PASSWORD", "AIRLIFT_TASKS_PASSWORD", "AIRLIFT_REDIS_PASSWORD"):
        assert f"${{{variable}:?" in body, f"{variable} is required"
    with pytest.raises(DeployError, match="AIRLIFT_DB_PASSWORD is not set"):
        interpolate(compose["x-airflow-common"]["environment"]["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], {})


def test_secrets_are_generated_once_and_kept_private(deployment, tmp_path, monkeypatch, capsys):
    first = deployment.secrets()
    assert stat.S_IMODE(deployment.secrets_file.stat().st_mode) == 0o600
    assert deployment.secrets() == first and len(set(first.values())) == len(first), "kept, and all different"
    deployment.secrets_file.chmod(0o644)
    with pytest.raises(DeployError, match="readable by others"):
        deployment.secrets()
    deployment.secrets_file.chmod(0o600)

    env_file = tmp_path / ".env"
    monkeypatch.setenv("DEPLOY_DIR", str(deployment.home))
    assert main(["secrets", "--env-file", str(env_file)]) == 0
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    values = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
    assert values["AIRLIFT_ADMIN_PASSWORD"] == first["admin_password"]
    assert main(["secrets", "--env-file", str(env_file)]) == 1, "an existing file is not overwritten"
    assert "not overwritten" in capsys.readouterr().err
