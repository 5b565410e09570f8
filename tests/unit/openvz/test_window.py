"""The maintenance window: inside or when it opens next, over midnight, in the window's own
time zone, and only with the time a transfer needs still left."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from openvz.window import length, opens

NIGHT = (time(22, 0), time(5, 0), "Europe/Prague")  # UTC+1 in December


def at(hour: int, minute: int = 0, day: int = 3) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC)


def test_inside_over_midnight_is_now():
    assert opens(at(22, 30), *NIGHT) is None  # 23:30 in Prague
    assert opens(at(3, 0), *NIGHT) is None    # 04:00


def test_outside_waits_for_the_next_opening_in_the_window_zone():
    assert opens(at(12, 0), *NIGHT) == at(21, 0)
    assert opens(at(4, 0), *NIGHT) == at(21, 0), "05:00 local: closed"


def test_a_transfer_that_would_end_after_the_window_waits_for_the_next_one():
    late = at(3, 50)  # 04:50 in Prague, ten minutes before it closes
    assert opens(late, *NIGHT, needs=timedelta(minutes=9)) is None
    assert opens(late, *NIGHT, needs=timedelta(minutes=11)) == at(21, 0)


def test_a_transfer_longer_than_the_window_is_refused():
    assert length(*NIGHT[:2]) == timedelta(hours=7)
    with pytest.raises(ValueError, match="shorter than"):
        opens(at(22, 0), *NIGHT, needs=timedelta(hours=8))
