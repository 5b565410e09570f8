"""The files under include/ the DAGs run: every SQL file holds named statements, every script
is valid bash, and both pass through Airflow's Jinja rendering (the Rendered Template tab)
unchanged, so what the UI shows is what ran."""

from __future__ import annotations

import subprocess

import jinja2
import pytest

from airlift import sql

SQL_FILES = sorted((sql.INCLUDE_DIR / "sql").rglob("*.sql"))
SCRIPTS = sorted((sql.INCLUDE_DIR / "scripts").rglob("*.sh"))


def test_there_are_files():
    assert SQL_FILES and SCRIPTS


@pytest.mark.parametrize("path", SQL_FILES, ids=lambda p: str(p.relative_to(sql.INCLUDE_DIR)))
def test_every_sql_file_has_named_statements(path):
    statements = sql.load(str(path.relative_to(sql.INCLUDE_DIR / "sql")))
    assert statements and all(s.strip() and not s.rstrip().endswith(";") for s in statements.values())


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: str(p.relative_to(sql.INCLUDE_DIR)))
def test_every_script_is_bash(path):
    assert path.read_text().startswith("#!/bin/bash\n")
    check = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


@pytest.mark.parametrize("path", SQL_FILES + SCRIPTS, ids=lambda p: str(p.relative_to(sql.INCLUDE_DIR)))
def test_jinja_renders_the_file_as_it_is(path):
    """Scripts with `${#array[@]}` (a Jinja comment opener) wrap themselves in {% raw %}."""
    text = path.read_text()
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(path.parent)), undefined=jinja2.StrictUndefined)
    rendered = env.get_template(path.name).render()
    assert rendered.rstrip("\n") == text.replace("{% raw %}", "").replace("{% endraw %}", "").rstrip("\n")
