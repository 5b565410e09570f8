"""The cluster crontab across the upgrade (pure text transformations).

Only the runbook's jobs are touched (its "Cron jobs": the v1.22 cluster jobs); a site's own
jobs in the same crontab stay as they are. The jobs are commented out with a recognisable
prefix rather than deleted, so the file still says what ran, a second pass finds nothing to
do, and re-enabling a job is a matter of removing the prefix. What changed is reported by the
job's script name and schedule, never as the whole line: a cron line may carry a password.
"""

from __future__ import annotations

import re

DISABLED = "#airlift-disabled# "
REPLACED = "#airlift-replaced# "
_ENV = re.compile(r"^\s*[A-Za-z_][A-Za-z0-9_]*\s*=")

# What v2.0 does instead of each v1.22 cluster job (runbook: "Cron jobs"). savetransfers.rb
# stays; the lifetimes and daily-report jobs become the Airflow DAGs vpsadmin_lifetimes and
# vpsadmin_daily_report; backups are run by vpsadmin-scheduler.
V2_REPLACEMENTS = {
    "backup.rb": "vpsadmin-scheduler (repeatable tasks of the API)",
    "cron_delete.php": "Airflow DAG vpsadmin_lifetimes (vpsadmin:lifetimes:progress)",
    "cron_mailer.php": "Airflow DAG vpsadmin_lifetimes (vpsadmin:lifetimes:mail)",
    "cron_nonpayers.php": "nothing (deleted in v2.0)",
    "daily_report.rb": "Airflow DAG vpsadmin_daily_report (vpsadmin:mail_daily_report)",
}
V2_KEPT = ("savetransfers.rb",)
RUNBOOK_JOBS = (*V2_REPLACEMENTS, *V2_KEPT)


def is_job(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#") and not _ENV.match(line)


def runbook_job(line: str) -> str | None:
    """The runbook job a crontab line runs (its script's file name), or None: a line of
    another job, a comment, an environment line."""
    if not is_job(line):
        return None
    words = line.split()
    command = words[1:] if words[0].startswith("@") else words[5:]
    return next((name for name in RUNBOOK_JOBS for word in command if word.rsplit("/", 1)[-1] == name), None)


def _schedule(line: str) -> str:
    words = line.split()
    return words[0] if words[0].startswith("@") else " ".join(words[:5])


def disable_runbook_jobs(text: str) -> tuple[str, list[str]]:
    """(new crontab text, what changes: `disable <script> (<schedule>)`)."""
    changes, lines = [], []
    for line in text.splitlines():
        name = runbook_job(line)
        if name is not None:
            changes.append(f"disable {name} ({_schedule(line)})")
            line = DISABLED + line
        lines.append(line)
    return ("\n".join(lines) + "\n" if lines else ""), changes


def active_jobs(text: str) -> list[str]:
    return [line for line in text.splitlines() if is_job(line)]


# The 2.0 rake tasks that do what the lifetimes and daily-report jobs did (in a crontab that
# keeps them in cron, see replace_for_v2), and the DAG that does it instead.
RAKE_JOBS = {
    "vpsadmin:lifetimes:mail": "Airflow DAG vpsadmin_lifetimes",
    "vpsadmin:lifetimes:progress": "Airflow DAG vpsadmin_lifetimes",
    "vpsadmin:mail_daily_report": "Airflow DAG vpsadmin_daily_report",
}
RAKE_HEADER = "# vpsAdmin 2.0 lifetimes and daily report (rake, in cron instead of Airflow):"
IN_CRON = "the rake jobs at the end of this crontab"


def rake_job(line: str) -> str | None:
    """The lifetimes or daily-report rake task a crontab line runs, or None."""
    if not is_job(line):
        return None
    words = line.split()
    return next((task for task in RAKE_JOBS if task in words), None)


def replace_for_v2(text: str, rake_jobs: list[str] | None = None) -> tuple[str, list[str]]:
    """(new crontab text, what changes): jobs v2.0 keeps are enabled again, jobs it replaces
    are marked with what replaces them, other lines stay as they are. With `rake_jobs` (the
    site keeps the lifetimes and the report in cron) those lines are added once at the end
    and the jobs they replace say so; without, the scheduled DAGs do that work and any such
    rake line (from an earlier choice) is marked replaced too, so nothing runs twice."""
    lines, changes, present = [], [], set()
    replacements = dict(V2_REPLACEMENTS)
    if rake_jobs:
        replacements.update({name: IN_CRON for name in ("cron_delete.php", "cron_mailer.php", "daily_report.rb")})
    for line in text.splitlines():
        job = line[len(DISABLED):] if line.startswith(DISABLED) else line
        name, task = runbook_job(job), rake_job(line)
        if name in V2_KEPT:
            if line != job:
                changes.append(f"enable {name} ({_schedule(job)})")
            line = job
        elif name is not None:
            changes.append(f"replace {name} ({_schedule(job)}) by {replacements[name]}")
            lines.append(f"# replaced in vpsAdmin 2.0 by {replacements[name]}:")
            line = REPLACED + job
        elif task is not None and rake_jobs is None:
            changes.append(f"replace rake {task} ({_schedule(line)}) by {RAKE_JOBS[task]}")
            lines.append(f"# replaced by {RAKE_JOBS[task]}:")
            line = REPLACED + line
        elif task is not None:
            present.add(line.strip())
        lines.append(line)
    missing = [job for job in rake_jobs or [] if job.strip() not in present]
    if missing:
        if RAKE_HEADER not in lines:
            lines.append(RAKE_HEADER)
        lines += missing
        changes += [f"add rake {rake_job(job)} ({_schedule(job)})" for job in missing]
    return ("\n".join(lines) + "\n" if lines else ""), changes
