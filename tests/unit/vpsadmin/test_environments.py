"""Environments, the servers in them (by name or by v1.22 server type) and default resources."""

from __future__ import annotations

import pytest

from vpsadmin import environments

SERVERS = [{"server_name": name, "server_type": kind} for name, kind in (
    ("vpsadmin.prg.vpsfree.cz", "mailer"), ("node1.prg.vpsfree.cz", "node"), ("node2.brq.vpsfree.cz", "node"),
    ("storage1.prg.vpsfree.cz", "storage"))]


RESOURCES = {cls: dict.fromkeys(environments.RESOURCES, 1) for cls in environments.CLASSES}


ENVS = [{"label": "Production", "domain": "vpsfree.cz", "user_ip_ownership": True,
         "nodes": ["vpsadmin", "node1", "node2.brq.vpsfree.cz"]},
        {"label": "Storage", "domain": "storage.vpsfree.cz", "nodes": ["storage1"],
         "default_resources": {"Vps": {"cpu": 2}}}]


def test_environments_param_accepted():
    assert environments.check(ENVS, RESOURCES, SERVERS) == []


@pytest.mark.parametrize(("envs", "message"), [
    ([{**ENVS[0], "nodes": ["vpsadmin", "node1"]}, ENVS[1]], "not placed: node2.brq.vpsfree.cz"),
    ([ENVS[0], {**ENVS[1], "nodes": ["storage1", "node1"]}], "'node1' is already in 'Production'"),
    ([ENVS[0], {**ENVS[1], "nodes": ["storage1", "node9"]}], "no server named 'node9'"),
    ([ENVS[0], {**ENVS[1], "label": "Production"}], "label 'Production' given twice"),
    ([ENVS[0], {**ENVS[1], "label": "x'; DROP TABLE vps; --"}], "must be 1-100 letters"),
    ([ENVS[0], {**ENVS[1], "user_ip_ownership": "yes"}], "user_ip_ownership must be a bool"),
    ([ENVS[0], {**ENVS[1], "nodes": ["storage1; rm -rf /"]}], "is not a node name"),
    ([ENVS[0], {**ENVS[1], "default_resources": {"Vps": {"disk": 1}}}], "unknown resource 'disk'"),
    ([], "non-empty list"),
])
def test_environments_param_errors(envs, message):
    errors = environments.check(envs, RESOURCES, SERVERS)
    assert any(message in e for e in errors), errors


def test_default_resources_must_name_every_resource():
    errors = environments.check(ENVS, {"Vps": RESOURCES["Vps"], "User": {"memory": 1}}, SERVERS)
    assert any("default_resources.User lacks swap, cpu, diskspace, ipv4, ipv6" in e for e in errors)


def test_plan_environments_matches_by_label():
    existing = [{"id": 7, "label": "Production", "domain": "vpsfree.cz", "can_create_vps": 0, "can_destroy_vps": 0,
                 "vps_lifetime": 0, "max_vps_count": 1, "user_ip_ownership": 0},
                {"id": 8, "label": "Old", "domain": "old", "can_create_vps": 0, "can_destroy_vps": 0,
                 "vps_lifetime": 0, "max_vps_count": 1, "user_ip_ownership": 0}]
    inserts, updates, others = environments.plan_environments(environments.environment_rows(ENVS), existing)
    assert [r["label"] for r in inserts] == ["Storage"]
    assert updates == [{"label": "Production", "domain": "vpsfree.cz", "can_create_vps": 0, "can_destroy_vps": 0,
                        "vps_lifetime": 0, "max_vps_count": 1, "user_ip_ownership": 1, "id": 7}]
    assert others == ["Old"]
    existing[0]["user_ip_ownership"] = 1
    assert environments.plan_environments(environments.environment_rows(ENVS), existing[:1])[1] == []


def test_plan_servers_strips_domains_and_places():
    rows = [{"server_id": i, **s, "environment_id": 0} for i, s in enumerate(SERVERS, 1)]
    plan = environments.plan_servers(ENVS, {"Production": 7, "Storage": 9}, rows)
    assert [(c["server_name"], c["environment_id"]) for c in plan] == [
        ("vpsadmin", 7), ("node1", 7), ("node2", 7), ("storage1", 9)]
    done = [{**r, "server_name": environments.short_name(r["server_name"]),
             "environment_id": 9 if "storage" in r["server_name"] else 7} for r in rows]
    assert environments.plan_servers(ENVS, {"Production": 7, "Storage": 9}, done) == []


def test_plan_default_resources_every_env_class_resource_with_overrides():
    ids = {r: i for i, r in enumerate(environments.RESOURCES, 1)}
    inserts, updates = environments.plan_default_resources(ENVS, RESOURCES, {"Production": 7, "Storage": 9}, ids, [])
    assert len(inserts) == 2 * 2 * 6 and not updates
    storage_cpu = [r for r in inserts if r["environment_id"] == 9 and r["class_name"] == "Vps" and r["resource"] == "cpu"]
    assert storage_cpu[0]["value"] == 2
    existing = [{**r, "id": n} for n, r in enumerate(inserts)]
    existing[0]["value"] = 99
    inserts2, updates2 = environments.plan_default_resources(ENVS, RESOURCES, {"Production": 7, "Storage": 9}, ids,
                                                             existing)
    assert not inserts2 and [u["id"] for u in updates2] == [0]


def test_full_names_in_the_param_still_match_after_the_rename():
    renamed = [{**s, "server_name": environments.short_name(s["server_name"])} for s in SERVERS]
    assert environments.check(ENVS, RESOURCES, renamed) == []


def test_the_default_environments_place_servers_by_type():
    """The trigger form's default names no server: hypervisors and the API/mail host go to
    Production, storage servers to Storage, whatever they are called."""
    placed, errors = environments.placement(environments.DEFAULT_ENVIRONMENTS, SERVERS)
    assert errors == []
    assert placed == {"vpsadmin.prg.vpsfree.cz": "Production", "node1.prg.vpsfree.cz": "Production",
                      "node2.brq.vpsfree.cz": "Production", "storage1.prg.vpsfree.cz": "Storage"}
    assert environments.check(environments.DEFAULT_ENVIRONMENTS, environments.DEFAULT_RESOURCES, SERVERS) == []


def test_a_name_wins_over_the_type():
    envs = [{**environments.DEFAULT_ENVIRONMENTS[0]},
            {**environments.DEFAULT_ENVIRONMENTS[1], "nodes": ["node2"]}]
    placed, errors = environments.placement(envs, SERVERS)
    assert errors == [] and placed["node2.brq.vpsfree.cz"] == "Storage"
    assert placed["node1.prg.vpsfree.cz"] == "Production"


@pytest.mark.parametrize(("envs", "message"), [
    ([{"label": "A", "domain": "a.cz", "server_types": ["node", "mailer", "storage"]},
      {"label": "B", "domain": "b.cz", "server_types": ["storage"]}], "server type 'storage' is in 'A' and 'B'"),
    ([{"label": "A", "domain": "a.cz", "server_types": ["node", "hypervisor"]}], "'hypervisor' is not one of"),
    ([{"label": "A", "domain": "a.cz", "server_types": ["node"]}],
     "not placed: vpsadmin.prg.vpsfree.cz, storage1.prg.vpsfree.cz"),
])
def test_server_type_problems(envs, message):
    errors = environments.check(envs, RESOURCES, SERVERS)
    assert any(message in e for e in errors), errors
