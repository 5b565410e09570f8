"""Checks of trigger parameters every product\'s DAGs share (pure; no Airflow, no I/O).

Everything here can reach a shell later, so it is checked against a strict pattern before
anything changes; quoting still happens where the value is used. A DAG's first task collects
every problem and raises them together (raise_if), so one look at the error fixes the form.
"""

from __future__ import annotations

import re

from airlift.errors import StepError

HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


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
