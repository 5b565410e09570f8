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


# What v2.0 does instead of each v1.22 cluster job (runbook: "Cron jobs"). savetransfers.rb
# stays; the lifetimes and daily-report jobs become the Airflow DAGs vpsadmin_lifetimes and
# vpsadmin_daily_report; backups are run by vpsadmin-scheduler.
REPLACED = "#airlift-replaced# "
V2_REPLACEMENTS = {
    "backup.rb": "vpsadmin-scheduler (repeatable tasks of the API)",
    "cron_delete.php": "Airflow DAG vpsadmin_lifetimes (vpsadmin:lifetimes:progress)",
    "cron_mailer.php": "Airflow DAG vpsadmin_lifetimes (vpsadmin:lifetimes:mail)",
    "cron_nonpayers.php": "nothing (deleted in v2.0)",
    "daily_report.rb": "Airflow DAG vpsadmin_daily_report (vpsadmin:mail_daily_report)",
}
V2_KEPT = ("savetransfers.rb",)


def _job(line: str) -> str | None:
    """The job of a line, active or disabled by `disable_all`; None for other lines."""
    if line.startswith(DISABLED):
        line = line[len(DISABLED):]
    return line if is_job(line) else None


def replace_for_v2(text: str) -> tuple[str, list[str]]:
    """(new crontab text, what changed): jobs v2.0 keeps are enabled again, jobs it replaces
    are marked with what replaces them, other jobs stay as they are."""
    lines, changes = [], []
    for line in text.splitlines():
        job = _job(line)
        if job is not None and any(name in job for name in V2_KEPT):
            if line != job:
                changes.append(f"enable `{job}`")
            line = job
        elif job is not None:
            replacement = next((r for name, r in V2_REPLACEMENTS.items() if name in job), None)
            if replacement is not None:
                changes.append(f"replace `{job}` by {replacement}")
                lines.append(f"# replaced in vpsAdmin 2.0 by {replacement}:")
                line = REPLACED + job
        lines.append(line)
    return ("\n".join(lines) + "\n" if lines else ""), changes
