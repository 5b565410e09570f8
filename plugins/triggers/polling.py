"""PollTrigger: the shape of every trigger here. It calls `poll()` (sync, the same hooks the
tasks use, in a thread) every `poll_interval` seconds until it returns an event, which also
carries the `plan` of the step that deferred (dag.test() hands a task only its event back)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from airflow.triggers.base import BaseTrigger, TriggerEvent


class PollTrigger(BaseTrigger):
    def __init__(self, *, poll_interval: float = 5, plan: dict | None = None, **kwargs):
        super().__init__()
        self.poll_interval, self.plan, self.kwargs = poll_interval, plan, kwargs

    def serialize(self) -> tuple[str, dict]:
        return (f"{type(self).__module__}.{type(self).__qualname__}",
                {"poll_interval": self.poll_interval, "plan": self.plan, **self.kwargs})

    def poll(self) -> dict | None:
        """The event payload once the wait is over, else None."""
        raise NotImplementedError

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while (event := await asyncio.to_thread(self.poll)) is None:
            await asyncio.sleep(self.poll_interval)
        yield TriggerEvent({**event, "plan": self.plan})
