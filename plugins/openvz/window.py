"""The maintenance window transfers run in (fleet.downtime-window): a daily span of local time,
possibly over midnight (22:00-05:00)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo


def length(start: time, end: time) -> timedelta:
    """How long the window is open each day."""
    day = datetime(2000, 1, 1)
    finish = datetime.combine(day.date() + timedelta(days=1 if end <= start else 0), end)
    return finish - datetime.combine(day.date(), start)


def opens(now: datetime, start: time, end: time, zone: str, needs: timedelta = timedelta(0)) -> datetime | None:
    """None when `now` (aware) is inside the window with `needs` left before it closes; else
    when it opens next (aware, UTC). A window shorter than `needs` is a ValueError."""
    if needs > length(start, end):
        raise ValueError(f"the window {start:%H:%M}-{end:%H:%M} is shorter than the {needs} needed")
    tz = ZoneInfo(zone)
    local = now.astimezone(tz)
    for day in (-1, 0, 1):
        base = (local + timedelta(days=day)).date()
        begin = datetime.combine(base, start, tz)
        finish = datetime.combine(base + timedelta(days=1 if end <= start else 0), end, tz)
        if begin <= local and local + needs <= finish and local < finish:
            return None
    for day in (0, 1):
        begin = datetime.combine((local + timedelta(days=day)).date(), start, tz)
        if begin > local:
            return begin.astimezone(ZoneInfo("UTC"))
    raise AssertionError("a daily window opens within a day")
