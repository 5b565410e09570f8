"""The outcome of a command on a node, and the error a failed one raises (no Airflow, no
SSH library: operators catch it without importing the hook at DAG parse time)."""

from __future__ import annotations

from dataclasses import dataclass

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
