"""The fleet's form (one checked openvz_to_vpsadminos conf per node), its runs' names and its report."""

from __future__ import annotations

import pytest

from airlift.params import ParamError
from openvz.fleet import child_run_id, plan, plan_table, report_table

NODES = [{"source": "vz1.example.org", "destination": "os1.example.org", "containers": [101]},
         {"source": "vz2.example.org", "destination": "os2.example.org"}]


def test_each_node_becomes_a_conf_in_order_with_the_shared_params():
    fleet = plan({"nodes": NODES, "dry_run": False, "path": "offline", "window_start": "22:00", "window_end": "04:00",
                  "stop_on_failed_node": False, "unrelated": 1})
    assert [c["source_node"] for c in fleet.nodes] == ["vz1.example.org", "vz2.example.org"]
    first, second = fleet.nodes
    assert first["containers"] == [101] and second["containers"] == "all"
    assert first["dry_run"] is False and first["path"] == "offline" and first["window_start"] == "22:00"
    assert "unrelated" not in first and "stop_on_failed_node" not in first
    assert first["interconnect_nodes"] == ["os2.example.org"], "the other node's /30s count as taken"
    assert not fleet.stop_on_failed_node
    assert "| 2 | vz2.example.org | os2.example.org | all |" in plan_table(fleet)


@pytest.mark.parametrize("nodes, message", [
    ([], "at least one"),
    ("vz1", "at least one"),
    ([{"source": "vz1; reboot", "destination": "os1"}], r"nodes\[1\] \(vz1; reboot\): source_node"),
    ([{"source": "vz1", "destination": "os1", "extra": 1}], "is not {source"),
    ([{"source": "vz1", "destination": "os1"}, {"source": "vz1", "destination": "os2"}], "given twice"),
    ([{"source": "vz1", "destination": "os1", "containers": ["x"]}], "not a container id"),
])
def test_bad_nodes_are_refused_before_anything(nodes, message):
    with pytest.raises(ParamError, match=message):
        plan({"nodes": nodes})


def test_every_node_problem_at_once():
    with pytest.raises(ParamError) as caught:
        plan({"nodes": [{"source": "a b", "destination": "os1"}, {"source": "vz2", "destination": "$(x)"}]})
    assert len(caught.value.problems) == 2


def test_a_node_run_is_named_by_the_fleet_run_and_the_node():
    run_id = child_run_id("manual__2026-12-03T10:00:00+00:00", "127.0.1.31")
    assert run_id == "fleet__manual__2026-12-03T10:00:00+00:00__127.0.1.31"
    assert child_run_id("scheduled x/y", "vz1") == "fleet__scheduled_x_y__vz1"


def test_the_report_names_moved_refused_failed_and_not_started():
    table = report_table([
        {"source": "vz1", "state": "success", "moved": [{"ctid": 101, "downtime_seconds": 2.25},
                                                          {"ctid": 103, "downtime_seconds": None}],
         "refused": [106], "failed": []},
        {"source": "vz2", "state": "failed", "moved": [], "refused": [], "failed": [201]},
        {"source": "vz3", "state": "not started"}])
    assert "| vz1 | success | 101 (2.2 s), 103 | 106 | - |" in table
    assert "| vz2 | failed | - | - | 201 |" in table
    assert "| vz3 | not started | - | - | - |" in table
