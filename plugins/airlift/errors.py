"""The one exception a step raises when retrying cannot help (no Airflow here, so the pure
logic modules raise it too): bad input, a refused precondition, a command that exited
non-zero, a plan that did not hold. RunbookStepOperator turns it into a failure that is not
retried, naming the step and the node; anything else (a dropped SSH connection, a timeout)
is left to Airflow's retries."""

from __future__ import annotations


class StepError(Exception):
    """A deterministic failure of a runbook step; the message says what and where."""
