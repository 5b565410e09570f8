"""The migration DAG's trigger form: every bad value is refused, all at once, before anything."""

from __future__ import annotations

import ipaddress
from datetime import time

import pytest

from airlift.params import ParamError
from openvz.params import validate

GOOD = {"source_node": "vz1.example.org", "destination_node": "10.0.0.41", "containers": [101, "102"],
        "owners": {"101": "alice", 102: "bob"}, "window_start": "22:00", "window_end": "05:00",
        "window_timezone": "Europe/Prague", "transfers_at_once": 2}


def test_good_values_come_out_typed():
    s = validate(GOOD)
    assert s.containers == (101, 102) and s.owner(101) == "alice" and s.owner(103) == "ct103"
    assert s.window == (time(22, 0), time(5, 0), "Europe/Prague")
    assert s.network_v4 == ipaddress.ip_network("10.100.0.0/16") and s.interconnect_nodes == ("10.0.0.41",)
    assert validate({**GOOD, "containers": "all", "window_start": "", "window_end": ""}).containers is None
    assert not s.offline and validate({**GOOD, "path": "offline"}).offline
    assert s.transfer_rate_bytes == 100 << 20 and validate({**GOOD, "transfer_rate_mib": 5}).transfer_rate_bytes == 5 << 20


@pytest.mark.parametrize("change, message", [
    ({"source_node": "vz1; rm -rf /"}, "source_node"),
    ({"destination_node": "$(reboot)"}, "destination_node"),
    ({"destination_node": "vz1.example.org"}, "the same node"),
    ({"containers": ["101; rm -rf /"]}, "not a container id"),
    ({"containers": [5]}, "not a container id"),
    ({"containers": "101,abc"}, "not a container id"),
    ({"containers": []}, "empty"),
    ({"owners": {"101": "Alice Smith"}}, "not a user name"),
    ({"owners": {"x": "alice"}}, "not a container id"),
    ({"window_start": "25:00"}, "HH:MM"),
    ({"window_start": "22:00", "window_end": "22:00"}, "empty"),
    ({"window_timezone": "Mars/Olympus"}, "time zone"),
    ({"interconnect_pool_v4": "10.100.0.0/31"}, "too small"),
    ({"interconnect_pool_v4": "fd00::/64"}, "not an IPv4"),
    ({"interconnect_pool_v6": "10.0.0.0/8"}, "not an IPv6"),
    ({"veth_type": "veth"}, "routed or bridge"),
    ({"destination_pool": "tank pool"}, "zpool"),
    ({"transfers_at_once": 0}, "1 to 32"),
    ({"interconnect_nodes": ["os2", "os 3"]}, "interconnect_nodes"),
    ({"path": "export; reboot"}, "live or offline"),
    ({"transfer_rate_mib": 0}, "1 to 100000"),
])
def test_bad_values_are_refused_with_their_name(change, message):
    with pytest.raises(ParamError, match=message):
        validate({**GOOD, **change})


def test_every_problem_is_listed_at_once():
    with pytest.raises(ParamError) as caught:
        validate({**GOOD, "source_node": "a b", "containers": ["x"], "window_start": "7pm"})
    assert str(caught.value).count("\n- ") == 3
