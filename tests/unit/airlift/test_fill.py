"""fill(): a script argument's `{filesystem}` from the pool a mapped step runs for, in one pass,
only known placeholders, never a value that could act as an option or break a line."""

from __future__ import annotations

import pytest

from airlift.errors import StepError
from airlift.steps import fill

POOL = {"pool_id": 3, "filesystem": "tank/nas", "server_name": "storage1", "address": "172.16.0.21"}


def test_known_placeholders_are_filled():
    assert fill("{filesystem}", POOL) == "tank/nas"
    assert fill("--pool={filesystem}@{address}#{pool_id}", POOL) == "--pool=tank/nas@172.16.0.21#3"
    assert fill("/opt/vpsadmind", POOL) == "/opt/vpsadmind"


def test_a_value_is_never_searched_for_placeholders_again():
    assert fill("{filesystem}", {**POOL, "filesystem": "{address}"}) == "{address}"


@pytest.mark.parametrize("arg", ["{x}", "{server_name}", "{}", "{ filesystem }", "{filesytem}", "a{0}b"])
def test_any_other_placeholder_is_refused(arg):
    with pytest.raises(StepError, match="is not a placeholder"):
        fill(arg, POOL)


def test_a_key_the_item_lacks_is_refused():
    with pytest.raises(StepError, match="'node1' has no filesystem"):
        fill("{filesystem}", {"server_name": "node1", "address": "1.2.3.4"})


@pytest.mark.parametrize("value", ["-o foo", "--recursive", "tank\nx", "tank\x00", "", None, ["tank"], True])
def test_values_that_could_change_the_argument_are_refused(value):
    with pytest.raises(StepError, match="filesystem"):
        fill("{filesystem}", {**POOL, "filesystem": value})
