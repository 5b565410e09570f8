"""The project's own list of runbook steps (include/runbooks/*.yaml) and the doc_md line
that ties a task to one: `Runbook step: <id>`."""

from __future__ import annotations

import re
from functools import cache

import yaml

from airlift.sql import INCLUDE_DIR

STEP_LINE = re.compile(r"^Runbook step:\s*(\S+)\s*$", re.MULTILINE)


@cache
def runbook(name: str) -> dict:
    return yaml.safe_load((INCLUDE_DIR / "runbooks" / f"{name}.yaml").read_text())


def step_ids(name: str, dag_id: str | None = None) -> list[str]:
    return [s["id"] for s in runbook(name)["steps"] if dag_id is None or s["dag"] == dag_id]


def step_doc(step_id: str, text: str) -> str:
    """doc_md for a task implementing `step_id`: what it does, then the step line."""
    return f"{text.strip()}\n\nRunbook step: {step_id}\n"


def steps_named(doc_md: str | None) -> list[str]:
    return STEP_LINE.findall(doc_md or "")
