"""What every step of the migration shares: its settings (the validated trigger params), the
nodes hook, and for a per-container step the container it runs for."""

from __future__ import annotations

from collections.abc import Sequence

from airlift.connections import OPENVZ_SSH
from operators.runbook_step import RunbookStepOperator

# How a task mapped over containers is labelled in the UI.
CT_LABEL = "CT {{ task.container.ctid }}"  # text: the DAG renders native objects, a bare id is an int


class StreamInterrupted(ConnectionError):
    """A stream between the nodes broke (a cut connection): retried, and the retry continues
    from what arrived (a ZFS receive token, rsync's partial file)."""


class MigrationStepOperator(RunbookStepOperator):
    """:param container: the container a mapped step runs for (discover's record of it).
    :param ssh_conn_id: root over SSH to the OpenVZ and vpsAdminOS nodes."""

    template_fields: Sequence[str] = (*RunbookStepOperator.template_fields, "container")

    def __init__(self, *, container: dict | None = None, ssh_conn_id: str = OPENVZ_SSH, **kwargs):
        if container is not None:
            kwargs.setdefault("map_index_template", CT_LABEL)
        super().__init__(**kwargs)
        self.container, self.ssh_conn_id = container, ssh_conn_id
        self._nodes = None
        self._settings = None

    @classmethod
    def partial(cls, **kwargs):
        kwargs.setdefault("map_index_template", CT_LABEL)
        return super().partial(**kwargs)

    def settings(self, context):
        if self._settings is None:
            from openvz.params import validate

            self._settings = validate(context["params"])
        return self._settings

    @property
    def nodes(self):
        if self._nodes is None:
            from hooks.openvz import OpenVzNodesHook

            self._nodes = OpenVzNodesHook(self.ssh_conn_id)
        return self._nodes

    def job_nodes(self):
        return self.nodes

    @property
    def ctid(self) -> int:
        return int(self.container["ctid"])

    @property
    def label(self) -> str:
        return f"{self.step or self.task_id} of container {self.container['ctid']}" if self.container \
            else super().label

    def job_key(self, context) -> str:
        """One job per DAG, task and container (a container's map index differs between runs)."""
        from airlift.remote import job_key

        return job_key(self.dag_id, self.task_id, self.container["ctid"] if self.container else "node")

    def migrate_job_done(self, result, what: str, cut: str | None = None) -> None:
        """A finished job of migrate.sh: its output into the task log; a failure raised with
        the converter's `error: ...` lines (else the output's last lines), as StreamInterrupted
        (retried) when the output has `cut`, the script's line for a broken stream."""
        import re

        from airlift.errors import StepError

        for line in result.stdout.splitlines():
            self.log.info("[%s] %s", result.host, line)
        if not result.ok and cut and cut in result.stdout:
            raise StreamInterrupted(f"{result.host}: {result.tail(3)}")
        if not result.ok:
            errors = re.findall(r"^error: (.*)$", result.stdout, re.MULTILINE)
            raise StepError(f"{result.host}: {what} of container {self.ctid} failed: "
                            + ("; ".join(errors) if errors else result.tail()))

    def close(self) -> None:
        if self._nodes is not None:
            self._nodes.close()
            self._nodes = None
