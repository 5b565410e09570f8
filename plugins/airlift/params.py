"""Checks of trigger parameters every product\'s DAGs share (pure; no Airflow, no I/O).

Everything here can reach a shell later, so it is checked against a strict pattern before
anything changes; quoting still happens where the value is used. A DAG's first task collects
every problem and raises them together (raise_if), so one look at the error fixes the form.
"""

from __future__ import annotations

import re

from airlift.errors import StepError

HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
# The same as JSON schema patterns for the DAGs' Params: the trigger form (and the REST API)
# refuses a host with shell characters before a run exists. Empty means "from the connection".
HOST_PATTERN = HOSTNAME.pattern
HOST_OR_EMPTY = f"^$|{HOSTNAME.pattern}"
# The type of a text Param that may stay empty ("" means a documented fallback, e.g. the
# connection's host). Airflow's trigger form refuses to trigger while a field whose type lacks
# "null" is empty ("required"), so these are nullable; a field cleared in the form arrives as
# None, and every reader takes it as "" (`params.get(key) or ...`).
OPTIONAL_TEXT = ["null", "string"]


class ParamError(StepError, ValueError):
    """Bad input from the trigger form; the message lists every problem (also as `problems`)."""

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = problems or [message]


def check_hostname(label: str, value: str) -> list[str]:
    if not isinstance(value, str) or not HOSTNAME.fullmatch(value):
        return [f"{label} {value!r} is not a host name or IPv4 address"]
    return []


def raise_if(errors: list[str]) -> None:
    if errors:
        raise ParamError("invalid parameters:\n- " + "\n- ".join(errors), errors)


def check_timezone(label: str, value) -> list[str]:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        return [f"{label} {value!r} is not a time zone name"]
    return []
