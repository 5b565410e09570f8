"""Cluster resources: the pure plan (plugins/vpsadmin/resources.py) on small hand-made frames."""

from __future__ import annotations

import pandas as pd
import pytest

from vpsadmin import resources as r


def frame(columns: str, rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns.split())


def world(**overrides) -> dict:
    """Two users, one environment; user 1 has VPS 10 (node in env 1) with a full set of
    configs plus nfs, 2 IPv4 and 1 IPv6; user 2 has nothing but a NAS dataset of 100 GiB."""
    frames = dict(
        users=frame("user_id", [(1,), (2,)]),
        environments=frame("id label", [(1, "Production")]),
        vpses=frame("vps_id user_id environment_id dataset_in_pool_id", [(10, 1, 1, 500)]),
        vps_configs=frame("id vps_id order name", [
            (1, 10, 1, "ram-vswap-2g-swap-0g"), (2, 10, 2, "swap-1g"), (3, 10, 3, "cpu-4c-400"),
            (4, 10, 4, "hdd-120g"), (5, 10, 5, "nfs")]),
        ip_counts=frame("vps_id ip_v n", [(10, 4, 2), (10, 6, 1)]),
        nas_datasets=frame("dataset_in_pool_id user_id environment_id ancestry quota", [
            (700, 2, 1, None, 102400), (701, 2, 1, "9", 5000)]),
        refquotas=frame("dataset_in_pool_id value", [(500, 61440)]),
        user_resources=frame("user_id environment_id resource value", []),
        uses=frame("class_name row_id user_id environment_id resource value", []),
    )
    frames.update(overrides)
    return frames


def values(plan: r.ResourcePlan, user_id: int, env_id: int = 1) -> dict:
    ur = plan.user_resources
    mine = ur[(ur["user_id"] == user_id) & (ur["environment_id"] == env_id)]
    return dict(zip(mine["resource"], mine["value"], strict=True))


def applied(plan: r.ResourcePlan, frames: dict) -> dict:
    """The frames as the database would read them after the plan was written."""
    uses = pd.concat([frames["uses"], plan.new_uses[frames["uses"].columns]], ignore_index=True)
    configs = frames["vps_configs"][~frames["vps_configs"]["id"].isin(plan.deleted_configs["id"])]
    ur = plan.user_resources[["user_id", "environment_id", "resource", "value"]]
    refquotas = frames["refquotas"].set_index("dataset_in_pool_id")
    refquotas.loc[plan.refquotas["dataset_in_pool_id"], "value"] = plan.refquotas["value"].to_numpy()
    return {**frames, "uses": uses, "vps_configs": configs, "user_resources": ur,
            "refquotas": refquotas.reset_index()}


# -- config names ---------------------------------------------------------------------------
@pytest.mark.parametrize("name, resource, value", [
    ("ram-vswap-4g-swap-0g", "memory", 4096), ("ram-vswap-12g-swap-0g", "memory", 12288),
    ("swap-2g", "swap", 2048), ("swap-0g", "swap", 0), ("cpu-8c-800", "cpu", 8), ("cpu-1c-100", "cpu", 1),
    ("hdd-250g", "diskspace", 256000)])
def test_config_names_translate(name, resource, value):
    got = r.config_resources(frame("id vps_id order name", [(1, 10, 1, name)]))
    assert got[["resource", "value"]].values.tolist() == [[resource, value]]


@pytest.mark.parametrize("name", [
    "cpu-4-400",  # the runbook text's form: no such config exists
    "ram-vswap-4g-swap-1g", "ram-vswap-4g", "xswap-2g", "swap-2g-extra", "hdd-10", "hdd-10gb", "nfs", "tun",
    "privvmpages-4g-6g", "cpu-4c", "CPU-4c-400"])
def test_other_config_names_do_not_translate(name):
    assert r.config_resources(frame("id vps_id order name", [(1, 10, 1, name)])).empty


def test_runbook_cpu_pattern_matches_no_v122_cpu_config():
    names = pd.Series(["cpu-1c-100", "cpu-2c-200", "cpu-4c-400", "cpu-8c-800"])
    assert not names.str.fullmatch(r.RUNBOOK_CPU_PATTERN).any()
    assert names.str.fullmatch(r.CONFIG_RULES[2][1]).all()


# -- the plan -------------------------------------------------------------------------------
def test_vps_configs_ips_and_nas_quota_become_uses_and_sums():
    plan = r.plan_assignment(**world())
    uses = {(u.resource, u.class_name, u.row_id): u.value for u in plan.new_uses.itertuples()}
    assert uses == {("memory", "Vps", 10): 2048, ("swap", "Vps", 10): 1024, ("cpu", "Vps", 10): 4,
                    ("diskspace", "DatasetInPool", 500): 122880, ("ipv4", "Vps", 10): 2, ("ipv6", "Vps", 10): 1,
                    ("diskspace", "DatasetInPool", 700): 102400}  # 701 has ancestry: not a top-level dataset
    assert set(plan.new_uses["table_name"]) == {"vps", "dataset_in_pools"}
    # user 1: sums above the minimums where they are; user 2: minimums but the NAS quota.
    assert values(plan, 1) == {"memory": 4096, "swap": 1024, "cpu": 8, "diskspace": 122880, "ipv4": 2, "ipv6": 32}
    assert values(plan, 2) == {"memory": 4096, "swap": 0, "cpu": 8, "diskspace": 102400, "ipv4": 1, "ipv6": 32}
    assert sorted(plan.deleted_configs["id"]) == [1, 2, 3, 4]  # nfs stays
    assert plan.refquotas[["dataset_in_pool_id", "current", "value"]].values.tolist() == [[500, 61440, 122880]]
    assert len(plan.missing_user_resources) == 12 and plan.raised_user_resources.empty


def test_sums_over_several_vpses_and_last_config_wins():
    frames = world(
        vpses=frame("vps_id user_id environment_id dataset_in_pool_id", [(10, 1, 1, 500), (11, 1, 1, 501)]),
        vps_configs=frame("id vps_id order name", [
            (1, 10, 1, "ram-vswap-6g-swap-0g"), (2, 11, 1, "ram-vswap-8g-swap-0g"),
            (3, 11, 2, "hdd-10g"), (4, 11, 3, "hdd-20g")]),
        ip_counts=frame("vps_id ip_v n", [(10, 4, 1), (11, 4, 3), (11, 6, 40)]))
    plan = r.plan_assignment(**frames)
    got = values(plan, 1)
    assert got["memory"] == 14 * 1024 and got["ipv4"] == 4 and got["ipv6"] == 40
    assert got["diskspace"] == 61440  # 20 GiB (hdd-20g comes later than hdd-10g) < the minimum
    assert plan.new_uses.query("resource == 'diskspace' and class_name == 'DatasetInPool' and row_id == 501")["value"].tolist() == [20480]
    assert sorted(plan.deleted_configs["id"]) == [1, 2, 3, 4]
    # VPS 10 has no hdd config: no diskspace use, its refquota left alone.
    assert plan.refquotas["dataset_in_pool_id"].tolist() == []  # 501 has no refquota row in `refquotas`


def test_minimums_per_environment_label():
    frames = world(environments=frame("id label", [(1, "Production"), (2, "Playground")]))
    plan = r.plan_assignment(**frames, minimums={"default": {"cpu": 4}, "Playground": {"memory": 1024, "diskspace": 0}})
    assert values(plan, 2, 1) == {"memory": 4096, "swap": 0, "cpu": 4, "diskspace": 102400, "ipv4": 1, "ipv6": 32}
    assert values(plan, 2, 2) == {"memory": 1024, "swap": 0, "cpu": 4, "diskspace": 0, "ipv4": 1, "ipv6": 32}
    # The VPS and the NAS dataset are in env 1 only.
    assert set(plan.new_uses["environment_id"]) == {1}


@pytest.mark.parametrize("minimums, message", [
    ({"Nowhere": {"cpu": 1}}, "no environment labelled 'Nowhere'"),
    ({"default": {"ram": 1}}, "unknown resource 'ram'"),
    ({"default": {"cpu": -1}}, "integer >= 0"),
    ({"default": {"cpu": "8"}}, "integer >= 0"),
    ({"default": 8}, "must be a mapping"),
    ([], "must be a mapping")])
def test_bad_minimums_are_refused(minimums, message):
    with pytest.raises(r.ResourceError, match=message):
        r.plan_assignment(**world(), minimums=minimums)


def test_vps_on_a_node_without_environment_is_refused():
    frames = world(vpses=frame("vps_id user_id environment_id dataset_in_pool_id", [(10, 1, 0, 500)]))
    with pytest.raises(r.ResourceError, match="no environment"):
        r.plan_assignment(**frames)


def test_vps_of_a_user_out_of_scope_is_left_alone():
    frames = world(users=frame("user_id", [(2,)]))
    plan = r.plan_assignment(**frames)
    assert set(plan.new_uses["row_id"]) == {700} and plan.deleted_configs.empty


def test_second_run_plans_nothing():
    frames = world()
    first = r.plan_assignment(**frames)
    assert first.changes
    again = r.plan_assignment(**applied(first, frames))
    assert again.changes == 0, again.sample()
    assert again.counts["vpses_already_translated"] == 1 and again.counts["nas_datasets_already_translated"] == 1
    assert values(again, 1) == values(first, 1)


def test_rerun_with_new_user_and_vps_only_adds_theirs():
    frames = applied(r.plan_assignment(**world()), world())
    frames["users"] = frame("user_id", [(1,), (2,), (3,)])
    frames["vpses"] = pd.concat([frames["vpses"], frame("vps_id user_id environment_id dataset_in_pool_id",
                                                        [(12, 3, 1, 502)])])
    frames["vps_configs"] = pd.concat([frames["vps_configs"], frame("id vps_id order name", [(9, 12, 1, "cpu-2c-200")])])
    plan = r.plan_assignment(**frames)
    assert set(plan.new_uses["row_id"]) == {12} and plan.deleted_configs["id"].tolist() == [9]
    assert set(plan.missing_user_resources["user_id"]) == {3}
    assert values(plan, 3)["cpu"] == 8 and values(plan, 1) == values(r.plan_assignment(**world()), 1)


def test_existing_allocation_is_never_lowered():
    frames = applied(r.plan_assignment(**world()), world())
    ur = frames["user_resources"].copy()
    ur.loc[(ur["user_id"] == 1) & (ur["resource"] == "memory"), "value"] = 16384
    plan = r.plan_assignment(**{**frames, "user_resources": ur})
    assert plan.changes == 0 and values(plan, 1)["memory"] == 16384
    # A higher minimum raises it.
    plan = r.plan_assignment(**{**frames, "user_resources": ur}, minimums={"default": {"ipv4": 3}})
    assert plan.raised_user_resources[["user_id", "resource", "value"]].values.tolist() == [[1, "ipv4", 3], [2, "ipv4", 3]]


def test_unconfirmed_uses_mark_the_object_translated_but_do_not_count():
    frames = applied(r.plan_assignment(**world()), world())
    uses = frames["uses"].assign(confirmed=1)
    uses.loc[uses["resource"] == "ipv4", "confirmed"] = 0
    plan = r.plan_assignment(**{**frames, "uses": uses}, minimums={"default": {"ipv4": 0}})
    assert plan.new_uses.empty and values(plan, 1)["ipv4"] == 2  # kept: never lowered
    plan = r.plan_assignment(**{**frames, "uses": uses, "user_resources": frames["user_resources"].iloc[:0]},
                             minimums={"default": {"ipv4": 0}})
    assert values(plan, 1)["ipv4"] == 0


@pytest.mark.parametrize("text, value", [("--- 61440\n...\n", 61440), ("--- 0\n", 0), ("102400", 102400),
                                         (None, None), ("", None)])
def test_property_values(text, value):
    assert r.property_int(text) == value


def test_property_text_reads_back():
    assert r.property_text(122880) == "--- 122880\n...\n" and r.property_int(r.property_text(122880)) == 122880
