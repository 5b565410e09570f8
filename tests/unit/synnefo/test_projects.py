"""synnefo.projects: project-control's output read strictly."""

import pytest

from airlift.errors import StepError
from synnefo.projects import parse

TABLE = ("2 expired projects:\n"
         f"{'Project':>10} {'Name':>30} {'Status':>14} {'Expiration date':>30}\n" + "-" * 87 + "\n"
         f"{'1':>10} {'course.cs101.2012':>30} {'ACTIVE':>14} {'2013-02-01 00:00:00+00:00':>30}\n"
         f"{'2':>10} {'a name with spaces':>30} {'SUSPENDED':>14} {'2013-01-01 00:00:00+00:00':>30}\n")


def test_the_table_is_read_by_its_column_widths():
    found = parse(TABLE)
    assert found["terminated"] is None
    assert found["expired"] == [
        {"id": "1", "name": "course.cs101.2012", "status": "ACTIVE", "expires": "2013-02-01 00:00:00+00:00"},
        {"id": "2", "name": "a name with spaces", "status": "SUSPENDED", "expires": "2013-01-01 00:00:00+00:00"}]


def test_terminate_adds_its_count_and_none_is_empty():
    assert parse(TABLE + "2 projects have been terminated.\n")["terminated"] == 2
    assert parse("No expired projects.\n") == {"expired": [], "terminated": None}


@pytest.mark.parametrize("text", ["", "Error: something\n", "3 expired projects:\n" + TABLE.split("\n", 1)[1],
                                  "1 expired project:\nx         y\n"])
def test_anything_else_is_refused(text):
    with pytest.raises(StepError):
        parse(text)
