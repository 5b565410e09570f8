"""Named SQL statements from include/sql/.

Every statement a DAG runs lives in a file there, one file per step; a file holds one or
more statements, each introduced by a `-- name: <name>` line, with `%(param)s` placeholders
filled by the driver (never by string formatting).
"""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path

INCLUDE_DIR = Path(os.environ.get("AIRLIFT_INCLUDE_DIR") or Path(__file__).resolve().parents[2] / "include")
_NAME = re.compile(r"^--\s*name:\s*(\S+)\s*$", re.MULTILINE)


@cache
def load(relative_path: str) -> dict[str, str]:
    """{name: statement} of one file under include/sql/."""
    text = (INCLUDE_DIR / "sql" / relative_path).read_text()
    parts = _NAME.split(text)
    if len(parts) < 3:
        raise ValueError(f"include/sql/{relative_path} has no `-- name:` sections")
    return {name: body.strip().rstrip(";").strip() for name, body in zip(parts[1::2], parts[2::2], strict=False)}


def statement(relative_path: str, name: str) -> str:
    statements = load(relative_path)
    if name not in statements:
        raise KeyError(f"include/sql/{relative_path} has no statement named {name!r}")
    return statements[name]
