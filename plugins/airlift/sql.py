"""Named SQL statements from include/sql/.

Every statement a DAG runs lives in a file there: a step's own statements in the file its step
id names (include/sql/<product>/<section>/<step>.sql), the statements behind a hook's typed
reads in include/sql/<product>/hook/. A file holds one or more statements, each introduced by
a `-- name: <name>` line, with `%(param)s` placeholders filled by the driver (never by string
formatting). Identifiers (a database or table name) cannot be driver parameters: a statement
names them `{name}` and `identifiers()` fills them in, quoted, after checking them.
"""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path

INCLUDE_DIR = Path(os.environ.get("AIRLIFT_INCLUDE_DIR") or Path(__file__).resolve().parents[2] / "include")
_NAME = re.compile(r"^--\s*name:\s*(\S+)\s*$", re.MULTILINE)
_IDENTIFIER = re.compile(r"^[A-Za-z0-9_]{1,64}$")


def template_searchpath(product: str) -> list[str]:
    """Where a DAG of `product` finds the files its steps name (DAG(template_searchpath=...)):
    its SQL, its scripts, then the scripts every product shares (include/scripts/mysql/...)."""
    return [str(INCLUDE_DIR / "sql" / product), str(INCLUDE_DIR / "scripts" / product), str(INCLUDE_DIR / "scripts")]


def parse(text: str, source: str = "SQL") -> dict[str, str]:
    """{name: statement} of one file's text (a comment between two statements belongs to the
    next one: it is left out of the one before)."""
    parts = _NAME.split(text or "")
    if len(parts) < 3:
        raise ValueError(f"{source} has no `-- name:` sections")
    return {name: _statement(body) for name, body in zip(parts[1::2], parts[2::2], strict=False)}


def _statement(body: str) -> str:
    lines = body.strip().splitlines()
    while lines and (not lines[-1].strip() or lines[-1].lstrip().startswith("--")):
        lines.pop()
    return "\n".join(lines).strip().rstrip(";").strip()


@cache
def load(relative_path: str) -> dict[str, str]:
    """{name: statement} of one file under include/sql/."""
    return parse((INCLUDE_DIR / "sql" / relative_path).read_text(), f"include/sql/{relative_path}")


def statement(relative_path: str, name: str) -> str:
    statements = load(relative_path)
    if name not in statements:
        raise KeyError(f"include/sql/{relative_path} has no statement named {name!r}")
    return statements[name]


def identifiers(statement: str, **names: str) -> str:
    """`{name}` in a statement becomes the back-quoted identifier; only plain names pass."""
    for key, value in names.items():
        if not isinstance(value, str) or not _IDENTIFIER.match(value):
            raise ValueError(f"{key} {value!r} is not a plain identifier")
        statement = statement.replace("{" + key + "}", f"`{value}`")
    if re.search(r"\{\w+\}", statement):
        raise ValueError(f"unfilled identifier in: {statement}")
    return statement
