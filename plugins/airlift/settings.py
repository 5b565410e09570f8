"""Deployment settings: the `[airlift]` section of Airflow's configuration (airflow.cfg, or
AIRFLOW__AIRLIFT__<KEY> in the environment of the scheduler and workers). Whoever deploys
Airflow sets them; whoever triggers a DAG cannot (a trigger-form param could switch a gate off).

- `approval_gates` (default true): false only for unattended lab rehearsals (the tests' and the
  benchmarks' Airflow); every gate then proceeds, and says so in its log.
- `approvers`: comma-separated Airflow user ids (`id` or `id:Display Name`) every gate is
  assigned to; empty: anyone the UI lets answer.
- `approval_timeout_hours` (default 72): a gate nobody answered by then fails; it never approves.
- `lifetimes_hour` (default 3) and `daily_report_hour` (default 7): the hour (UTC) at which the
  scheduled vpsAdmin DAGs run each day (where cron_delete.php and daily_report.rb ran).
- `project_control_schedule` (default @hourly): when synnefo_project_control runs (a cron
  expression or preset).
"""

from __future__ import annotations

from datetime import timedelta

SECTION = "airlift"


def _get(key: str, fallback: str) -> str:
    from airflow.configuration import conf

    return conf.get(SECTION, key, fallback=fallback)


def approval_gates() -> bool:
    value = _get("approval_gates", "true").strip().lower()
    if value not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
        raise ValueError(f"[{SECTION}] approval_gates = {value!r}: expected true or false")
    return value in ("true", "1", "yes", "on")


def approvers() -> list[dict[str, str]]:
    """The gates' assigned_users (HITLUser: id, name)."""
    users = []
    for entry in filter(None, (e.strip() for e in _get("approvers", "").split(","))):
        user_id, _, name = entry.partition(":")
        users.append({"id": user_id.strip(), "name": name.strip() or user_id.strip()})
    return users


def approval_timeout() -> timedelta:
    hours = float(_get("approval_timeout_hours", "72"))
    if hours <= 0:
        raise ValueError(f"[{SECTION}] approval_timeout_hours must be positive, not {hours}")
    return timedelta(hours=hours)


def daily_at(key: str, default: int) -> str:
    """A DAG's daily cron schedule at the hour (UTC) the setting `key` names (read when the DAG
    file is parsed: a change shows in the UI after the next parse)."""
    value = _get(key, str(default)).strip()
    if not value.isdigit() or not 0 <= int(value) <= 23:
        raise ValueError(f"[{SECTION}] {key} = {value!r}: expected an hour, 0 to 23")
    return f"0 {int(value)} * * *"


def project_control_schedule() -> str:
    """synnefo_project_control's schedule (read when the DAG file is parsed)."""
    value = _get("project_control_schedule", "@hourly").strip()
    if not value:
        raise ValueError(f"[{SECTION}] project_control_schedule is empty: expected a cron expression or preset")
    return value
