"""The settings every Airflow this project starts on its own machine runs with: the tests'
dag.test() runs, the benchmarks and `make demo` (each adds its own on top)."""

from __future__ import annotations

from pathlib import Path

from lab.core.config import PROJECT_ROOT


def airflow_env(home: Path) -> dict[str, str]:
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
