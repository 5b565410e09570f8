"""PollTrigger: the shape of every trigger here. It calls `poll()` (sync, the same hooks the
tasks use, in a thread) every `poll_interval` seconds until it returns an event, which also
carries the `plan` of the step that deferred (dag.test() hands a task only its event back).
A failed poll is retried at the next interval; `max_poll_errors` in a row fail the wait."""

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

    max_poll_errors = 5  # failed polls in a row (a lost connection, a killed query) before the wait fails

    async def run(self) -> AsyncIterator[TriggerEvent]:
        failures = 0
        while True:
            try:
                event = await asyncio.to_thread(self.poll)
                failures = 0
            except Exception as exc:  # one lost connection must not end an hours-long wait
                failures += 1
                if failures >= self.max_poll_errors:
                    raise
                self.log.warning("poll failed (%d in a row, the wait fails at %d): %s", failures,
                                 self.max_poll_errors, exc)
                event = None
            if event is not None:
                break
            await asyncio.sleep(self.poll_interval)
        yield TriggerEvent({**event, "plan": self.plan})
