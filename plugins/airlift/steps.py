"""The project's own list of runbook steps (include/runbooks/*.yaml), and how a step id names
the things that implement it:

- the task: `db.remove-stray-vps` -> task id `remove_stray_vps` inside the TaskGroup of its
  section (`db`), `db_remove_stray_vps` anywhere else;
- its doc: the doc_md line `Runbook step: db.remove-stray-vps` (tests check every step id of
  every DAG is named by a task);
- its files: `db/remove-stray-vps.sql` under include/sql/<product>/ and `db/...sh` under
  include/scripts/<product>/ (found through the DAG's template_searchpath);
- its script's arguments: `{filesystem}` filled in from the node or pool it runs for (fill).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from functools import cache

import yaml

from airlift.errors import StepError
from airlift.sql import INCLUDE_DIR

STEP_LINE = re.compile(r"^Runbook step:\s*(\S+)\s*$", re.MULTILINE)
STEP_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*\.[a-z0-9]+(?:-[a-z0-9]+)*$")


@cache
def runbook(name: str) -> dict:
    return yaml.safe_load((INCLUDE_DIR / "runbooks" / f"{name}.yaml").read_text())


def runbooks() -> list[str]:
    return sorted(p.stem for p in (INCLUDE_DIR / "runbooks").glob("*.yaml"))


def step_title(step_id: str) -> str:
    """What the runbook says a step does (its title in include/runbooks/*.yaml)."""
    for name in runbooks():
        for step in runbook(name)["steps"]:
            if step["id"] == step_id:
                return step["title"]
    raise KeyError(f"no runbook lists step {step_id!r}")


def step_ids(name: str, dag_id: str | None = None) -> list[str]:
    return [s["id"] for s in runbook(name)["steps"] if dag_id is None or s["dag"] == dag_id]


def _parts(step_id: str) -> tuple[str, str]:
    if not STEP_ID.match(step_id):
        raise ValueError(f"{step_id!r} is not a runbook step id (<section>.<step>)")
    section, step = step_id.split(".", 1)
    return section, step


def step_task_id(step_id: str, group_id: str | None = None) -> str:
    """The task id a step gets (unless the DAG names the task itself) in the TaskGroup
    `group_id`: the step's own name in its section's group, the whole step id elsewhere."""
    section, step = _parts(step_id)
    in_section = bool(group_id) and group_id.rsplit(".", 1)[-1] == section
    return (step if in_section else f"{section}_{step}").replace("-", "_")


def step_file(step_id: str, suffix: str) -> str:
    """The step's own SQL or script file, relative to its product's include folder."""
    section, step = _parts(step_id)
    return f"{section}/{step}{suffix}"


def step_doc(step_ids: Sequence[str], text: str) -> str:
    """doc_md for a task implementing `step_ids`: what it does, then one step line each
    (idempotent: a doc that already names them is not extended twice)."""
    body = STEP_LINE.sub("", text or "").strip()
    lines = "\n".join(f"Runbook step: {s}" for s in step_ids)
    return f"{body}\n\n{lines}\n" if lines else body


def steps_named(doc_md: str | None) -> list[str]:
    return STEP_LINE.findall(doc_md or "")


# What a script argument may take from the node or pool a mapped step runs for (its inventory
# row, checked where it was read): `args=["{filesystem}"]`.
PLACEHOLDERS = ("filesystem", "address", "pool_id", "server_id", "role")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def fill(arg: str, item: dict, known: Collection[str] = PLACEHOLDERS) -> str:
    """A script argument with each `{key}` of `known` replaced by item[key], in one pass: a
    value is never searched for placeholders itself. Refused (StepError): any other `{...}`
    (a misspelt placeholder would reach the script as literal text), a key the item lacks, and
    a value that could change what the script is told: not a string or number, empty, with a
    leading `-` (an option to the tools it runs) or a control character (a newline starts
    another line of whatever file it reaches). The result is one argv word: the caller passes
    it on as such (NodeHook quotes it)."""

    def value(match: re.Match) -> str:
        key = match.group(1)
        if key not in known:
            raise StepError(f"argument {arg!r}: {{{key}}} is not a placeholder ({', '.join(known)})")
        if key not in item:
            raise StepError(f"argument {arg!r}: {item.get('server_name', 'the item')!r} has no {key}")
        text = item[key]
        if isinstance(text, bool) or not isinstance(text, str | int):
            raise StepError(f"argument {arg!r}: {key} {text!r} is not a string or a number")
        text = str(text)
        if not text or text.startswith("-") or any(ord(c) < 32 or ord(c) == 127 for c in text):
            raise StepError(f"argument {arg!r}: {key} {text!r} is empty, starts with '-' or holds a control "
                            "character")
        return text

    return _PLACEHOLDER.sub(value, arg)
