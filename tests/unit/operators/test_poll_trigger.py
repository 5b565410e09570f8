"""PollTrigger: a wait survives a few failed polls (a lost connection, a killed query) and
fails after `max_poll_errors` in a row."""

from __future__ import annotations

import asyncio

import pytest

from triggers.polling import PollTrigger


class Flaky(PollTrigger):
    def __init__(self, outcomes, **kwargs):
        super().__init__(poll_interval=0, plan={"changes": ["x"]}, **kwargs)
        self.outcomes = list(outcomes)

    def poll(self):
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def first_event(trigger):
    async def first():
        async for event in trigger.run():
            return event.payload

    return asyncio.run(first())


def test_failed_polls_in_between_do_not_end_the_wait():
    trigger = Flaky([ConnectionError("lost"), None, OSError("killed"), ConnectionError("lost"), {"status": "done"}])
    assert first_event(trigger) == {"status": "done", "plan": {"changes": ["x"]}}


def test_too_many_failed_polls_in_a_row_fail_the_wait():
    trigger = Flaky([ConnectionError(f"lost {n}") for n in range(PollTrigger.max_poll_errors)] + [{"status": "done"}])
    with pytest.raises(ConnectionError, match=f"lost {PollTrigger.max_poll_errors - 1}"):
        first_event(trigger)
