"""Validation of the upgrade DAGs' trigger parameters (pure; no Airflow, no I/O).

Everything here can reach a shell or an SQL identifier later, so it is checked against a
strict pattern before anything changes; quoting still happens where the value is used.
"""

from __future__ import annotations

import re

HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
NODE_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,62}[A-Za-z0-9])?$")
ABS_PATH = re.compile(r"^/(?:[A-Za-z0-9._+-]+/?)*$")
DB_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")


class ParamError(ValueError):
    """Bad input from the trigger form; the message lists every problem."""


def check_hostname(label: str, value: str) -> list[str]:
    if not isinstance(value, str) or not HOSTNAME.match(value):
        return [f"{label} {value!r} is not a host name or IPv4 address"]
    return []


def check_node_names(label: str, names) -> list[str]:
    if not isinstance(names, list):
        return [f"{label} must be a list of node names, got {names!r}"]
    return [f"{label}: {n!r} is not a valid node name (letters, digits, '.', '-')"
            for n in names if not isinstance(n, str) or not NODE_NAME.match(n)]


def check_abs_path(label: str, value: str) -> list[str]:
    if not isinstance(value, str) or not ABS_PATH.match(value) or "/../" in f"{value}/":
        return [f"{label} {value!r} must be an absolute path of letters, digits and ._+-"]
    return []


def check_db_name(label: str, value: str) -> list[str]:
    if not isinstance(value, str) or not DB_NAME.match(value):
        return [f"{label} {value!r} is not a plain database name"]
    return []


def raise_if(errors: list[str]) -> None:
    if errors:
        raise ParamError("invalid parameters:\n- " + "\n- ".join(errors))
