"""`snf-manage project-control` output read (pure). Shared research synnefo.md §5: a count
line (`No expired projects.`, `1 expired project:`, `N expired projects:`), then a table of
columns Project (10), Name (30), Status (14), Expiration date (30), right-justified and one
space apart (0.13's project-control), a dashed line under the header, and with
--terminate-expired a last line `N projects have been terminated.`"""

from __future__ import annotations

import re

from airlift.errors import StepError

COUNT = re.compile(r"^(?:No expired projects\.|(\d+) expired projects?:)$")
TERMINATED = re.compile(r"^(\d+) projects? (?:have|has) been terminated\.$")
SLICES = (slice(0, 10), slice(11, 41), slice(42, 56), slice(57, None))
COLUMNS = ("id", "name", "status", "expires")


def parse(text: str) -> dict:
    """{"expired": [{id, name, status, expires}], "terminated": N or None}; StepError on output
    that is not project-control's."""
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    if lines and COUNT.match(lines[0].strip()):
        lines[0] = lines[0].strip()
    if not lines or not COUNT.match(lines[0]):
        raise StepError(f"project-control printed {text.strip()[:300]!r}, not its count line")
    count = int(COUNT.match(lines[0]).group(1) or 0)
    terminated = None
    if lines and TERMINATED.match(lines[-1]):
        terminated = int(TERMINATED.match(lines.pop()).group(1))
    rows = [line for line in lines[1:] if not line.strip().startswith(("Project", "-"))]
    expired = []
    for line in rows:
        row = {column: line[part].strip() for column, part in zip(COLUMNS, SLICES, strict=True)}
        if not row["id"].isdigit():
            raise StepError(f"project-control: unexpected table line {line!r}")
        expired.append(row)
    if len(expired) != count:
        raise StepError(f"project-control says {count} expired project(s) and lists {len(expired)}")
    return {"expired": expired, "terminated": terminated}
