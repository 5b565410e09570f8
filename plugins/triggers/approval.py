"""EarlierAnswerTrigger: what a retried approval gate asks the triggerer before it asks anyone.

A gate's HITL question (the `hitl_detail` row) follows its task instance from try to try, and
keeps the answer until the next question replaces it. When Airflow 3.3's scheduler fails a gate
whose answer came within a second of the question (the worker's exit event for the pause is
taken for a task killed externally), the answer never reached the gate's code; its retry finds it
here. Only the triggerer may read a HITL detail (the task supervisor does not serve it)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from airflow.triggers.base import BaseTrigger, TriggerEvent


class EarlierAnswerTrigger(BaseTrigger):
    """One look at the answer of task instance `ti_id`'s question, after `settle` seconds (so
    the scheduler has taken the deferring worker's exit before the task is scheduled again).
    Its event: {"answer": {chosen_options, params_input, responded_at, responded_by_user}} or
    {"answer": None} (never asked, or not answered)."""

    def __init__(self, *, ti_id: str, settle: float = 5):
        super().__init__()
        self.ti_id, self.settle = ti_id, settle

    def serialize(self) -> tuple[str, dict]:
        return (f"{type(self).__module__}.{type(self).__qualname__}", {"ti_id": self.ti_id, "settle": self.settle})

    def look(self) -> dict | None:
        from uuid import UUID

        from airflow.sdk.execution_time.hitl import get_hitl_detail_content_detail

        detail = get_hitl_detail_content_detail(UUID(self.ti_id))
        if getattr(detail, "response_received", None) is not True or not detail.chosen_options:
            return None  # not answered, or no question (an error response: never asked)
        user = detail.responded_by_user
        return {"chosen_options": list(detail.chosen_options), "params_input": detail.params_input or {},
                "responded_at": detail.responded_at,
                "responded_by_user": {"id": user.id, "name": user.name} if user else None}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        await asyncio.sleep(self.settle)
        try:
            answer = await asyncio.to_thread(self.look)
        except Exception as exc:  # noqa: BLE001 - no question to look at: the gate asks
            self.log.info("no earlier answer to take: %s", exc)
            answer = None
        yield TriggerEvent({"answer": answer})
