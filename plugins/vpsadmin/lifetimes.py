"""vpsAdmin 2.0 object lifetimes as the scheduled DAGs drive them (pure; no Airflow, no I/O).

The API's rake tasks do the work (research/vpsadmin.md §5): `vpsadmin:lifetimes:progress`
moves objects whose expiration passed to their next state, `vpsadmin:lifetimes:mail` mails
owners of objects about to expire. Here: the models and their states, the checked rake
command lines, and what progress prints.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from airlift.errors import StepError

API_ROOT = "/opt/vpsadminapi"
STATES = ("active", "suspended", "soft_delete", "hard_delete", "deleted")  # lib/vpsadmin/api/lifetimes.rb
DAY = 24 * 60 * 60


@dataclass(frozen=True)
class Model:
    """A lifetime model: its table, primary key, the states it goes through, how an object is
    named in a plan, and the SQL expression of its owner's id."""

    name: str
    table: str
    key: str
    states: tuple[str, ...]
    label: str
    owner: str
    hidden: tuple[str, ...] = ()  # states its default scope hides from `where`

    @property
    def underscore(self) -> str:
        """Rails' underscore of the class name (mail templates are named with it)."""
        return re.sub(r"(?<!^)([A-Z])", r"_\1", self.name).lower()

    def next_state(self, state: str) -> str | None:
        index = self.states.index(state)
        return self.states[index + 1] if index + 1 < len(self.states) else None


MODELS = {m.name: m for m in (
    Model("User", "members", "m_id", STATES, "m_nick", "m_id", hidden=("hard_delete",)),
    Model("Vps", "vps", "vps_id", STATES, "vps_hostname", "m_id", hidden=("hard_delete",)),
    Model("Dataset", "datasets", "id", ("active", "deleted"), "full_name", "user_id"),
    Model("SnapshotDownload", "snapshot_downloads", "id", ("active", "deleted"), "file_name", "user_id"),
)}
REASON_MAX = 255  # object_states.reason is a varchar(255)


def state_name(model: Model, index) -> str:
    """object_state as stored (the enum's index over the global STATES) -> its name."""
    return STATES[int(index)]


def check_progress(objects, states, grace, new_expiration, reason) -> list[str]:
    """Every problem with a progress step's settings (they reach rake's environment)."""
    errors = []
    if not isinstance(objects, list | tuple) or not objects or any(o not in MODELS for o in objects):
        errors.append(f"objects {objects!r}: a list of {', '.join(MODELS)}")
        objects = []
    if states is not None:
        if not isinstance(states, list | tuple) or not states or any(s not in STATES for s in states):
            errors.append(f"states {states!r}: a list of {', '.join(STATES)}")
        else:
            errors += [f"states: {o} has no state {s!r}" for o in objects for s in states
                       if s not in MODELS[o].states]
    for label, value in (("grace", grace), ("new_expiration", new_expiration)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            errors.append(f"{label} {value!r}: a number of seconds (0 or more)")
    if reason is not None and (not isinstance(reason, str) or len(reason) > REASON_MAX
                               or any(ord(c) < 32 or ord(c) == 127 for c in reason)):
        errors.append(f"reason {reason!r}: one line of at most {REASON_MAX} characters")
    return errors


def check_mail(objects, states, days) -> list[str]:
    errors = check_progress(objects, states, None, None, None)
    if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= 365:
        errors.append(f"days {days!r}: a number of days (0 to 365)")
    return errors


def raise_if(errors: list[str]) -> None:
    if errors:
        raise StepError("refusing these settings:\n- " + "\n- ".join(errors))


def progress_command(objects, states=None, grace=None, new_expiration=None, reason=None,
                     execute: bool = False) -> str:
    """The shell line that runs `rake vpsadmin:lifetimes:progress` in the API checkout; every
    value checked (check_progress) and quoted."""
    raise_if(check_progress(objects, states, grace, new_expiration, reason))
    env = {"OBJECTS": ",".join(objects), "STATES": ",".join(states) if states else None,
           "GRACE": grace, "NEW_EXPIRATION": new_expiration, "REASON": reason or None,
           "EXECUTE": "yes" if execute else None}
    return _rake("vpsadmin:lifetimes:progress", env)


def mail_command(objects, states, days) -> str:
    raise_if(check_mail(objects, states, days))
    return _rake("vpsadmin:lifetimes:mail", {"OBJECTS": ",".join(objects),
                                             "STATES": ",".join(states) if states else None, "DAYS": days})


def daily_report_command() -> str:
    return _rake("vpsadmin:mail_daily_report", {})


def _rake(task: str, env: dict) -> str:
    words = ["rake", task, *(f"{k}={v}" for k, v in env.items() if v is not None)]
    return f"cd {API_ROOT} && {shlex.join(words)}"


def parse_progress(output: str) -> dict[str, dict[str, list[int]]]:
    """What `rake vpsadmin:lifetimes:progress` printed: per model, the ids it selected
    (`  id=N`) and those it found locked (`    resource locked` after the id)."""
    found: dict[str, dict[str, list[int]]] = {}
    model = last = None
    for line in output.splitlines():
        if line.startswith("Model "):
            model = line.split(" ", 1)[1].strip()
            found.setdefault(model, {"ids": [], "locked": []})
            last = None
        elif line.startswith("  id=") and model is not None:
            last = int(line.split("=", 1)[1])
            found[model]["ids"].append(last)
        elif line.strip() == "resource locked" and model is not None and last is not None:
            found[model]["locked"].append(last)
    return found


# The runbook's lifetimes jobs (its "Cron jobs" section) with their defaults, in its order:
# (step id, how rake is called). DAG vpsadmin_lifetimes has a task for each; a site that keeps
# them in cron gets these lines (with EXECUTE=yes: the runbook's progress lines lack it).
RUNBOOK_MAIL_DAYS, USER_GRACE, USER_NEW_EXPIRATION, VPS_NEW_EXPIRATION = 7, 14 * DAY, 14 * DAY, 7 * DAY
SUSPEND_REASON = "Your account has expired."


def runbook_cron_lines(lifetimes_hour: int = 3, report_hour: int = 7) -> list[str]:
    """Crontab lines running the runbook's lifetimes rake tasks daily, five minutes apart in the
    runbook's order (each on its own: one failing does not stop the others), and the report."""
    commands = [
        mail_command(["User"], ["active"], RUNBOOK_MAIL_DAYS),
        mail_command(["Vps"], ["active"], RUNBOOK_MAIL_DAYS),
        progress_command(["User"], ["active"], USER_GRACE, USER_NEW_EXPIRATION, SUSPEND_REASON, execute=True),
        progress_command(["User"], ["suspended", "soft_delete"], execute=True),
        progress_command(["Vps"], new_expiration=VPS_NEW_EXPIRATION, execute=True),
        progress_command(["Dataset", "SnapshotDownload"], execute=True),
    ]
    lines = [f"{5 * i} {int(lifetimes_hour)} * * * {command}" for i, command in enumerate(commands)]
    lines.append(f"0 {int(report_hour)} * * * {daily_report_command()}")
    return lines
