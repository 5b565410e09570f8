"""The outcome of a command on a node, the error a failed one raises, and the state of a
remote job (no Airflow, no SSH library: operators and triggers use them without importing
the hook at DAG parse time)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from airlift.errors import StepError


@dataclass(frozen=True)
class Result:
    host: str
    command: str
    exit_status: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    def tail(self, lines: int = 10) -> str:
        text = (self.stdout + ("\n" if self.stdout and self.stderr else "") + self.stderr).rstrip()
        return "\n".join(text.splitlines()[-lines:])


class NodeCommandError(StepError):
    """A command on a node exited non-zero: names the node, the command, the exit code and
    the last lines of its output."""

    def __init__(self, result: Result):
        super().__init__(
            f"{result.host}: `{result.command}` exited {result.exit_status}\n{result.tail()}")
        self.result = result


JOBS_DIR = "/var/lib/airlift/jobs"
_JOB_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")


def job_key(*parts) -> str:
    """A job's name on the node from what identifies a step (DAG, task, map index): one path
    component of letters, digits and ._- (anything else becomes _)."""
    key = ".".join(re.sub(r"[^A-Za-z0-9_-]", "_", str(p)) for p in parts)
    if not _JOB_KEY.match(key):
        raise ValueError(f"cannot make a job name of {parts!r}")
    return key


def job_dir(key: str) -> str:
    if not _JOB_KEY.match(key):
        raise ValueError(f"{key!r} is not a job name")
    return f"{JOBS_DIR}/{key}"


@cache
def job_launcher() -> str:
    """include/scripts/job.sh: starts, watches and ends remote jobs on a node."""
    from airlift.sql import INCLUDE_DIR

    return (INCLUDE_DIR / "scripts" / "job.sh").read_text()


class JobDied(RuntimeError):
    """A remote job ended without an exit status (killed, or its node restarted). Not a
    StepError: the retry starts the job anew."""


@dataclass(frozen=True)
class JobState:
    """What job.sh says of a job: none, running (RUN PGID), finished (RUN EXIT) or died (RUN)."""

    host: str
    key: str
    state: str
    run: str | None = None
    exit_status: int | None = None
    pgid: int | None = None

    @classmethod
    def parse(cls, host: str, key: str, text: str) -> JobState:
        words = text.strip().splitlines()[-1].split() if text.strip() else []
        if words[:1] == ["none"]:
            return cls(host, key, "none")
        if len(words) == 3 and words[0] == "running":
            return cls(host, key, "running", words[1], pgid=int(words[2]))
        if len(words) == 3 and words[0] == "finished":
            return cls(host, key, "finished", words[1], exit_status=int(words[2]))
        if len(words) == 2 and words[0] == "died":
            return cls(host, key, "died", words[1])
        raise ValueError(f"{host}: job {key}: unexpected state {text.strip()!r}")
