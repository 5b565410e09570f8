"""Disabling the cluster crontab (pure text transformation).

Jobs are commented out with a recognisable prefix rather than deleted, so the file still
says what ran, a second pass finds nothing to do, and re-enabling a job later is a matter of
removing the prefix. Environment lines (MAILTO=...) and comments stay as they are.
"""

from __future__ import annotations

import re

DISABLED = "#airlift-disabled# "
_ENV = re.compile(r"^\s*[A-Za-z_][A-Za-z0-9_]*\s*=")


def is_job(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#") and not _ENV.match(line)


def disable_all(text: str) -> tuple[str, list[str]]:
    """(new crontab text, the job lines that get disabled)."""
    disabled, lines = [], []
    for line in text.splitlines():
        if is_job(line):
            disabled.append(line)
            line = DISABLED + line
        lines.append(line)
    return ("\n".join(lines) + "\n" if lines else ""), disabled


def active_jobs(text: str) -> list[str]:
    return [line for line in text.splitlines() if is_job(line)]
