"""The lab's integrity check (lab/vpsadmin/integrity.py through the API) is not vacuous: one
thing broken on a node behind vpsAdmin's back is reported by the next check, and nothing else
changes in what it reports."""

from __future__ import annotations

import pytest

from tests.helpers import scalar
from tests.lab.v2_0_cluster import sh, upgrade_to_v2_0, wait_for_check

pytestmark = [pytest.mark.lab]


def false_facts(api, check_id: int) -> set[tuple]:
    """What a check found false; objects made for stray things have no row, their message names them."""
    return {(f["integrity_object"]["class_name"], f["integrity_object"]["row_id"], f["name"], f["expected_value"],
             f["actual_value"], f["message"]) for f in api.integrity_facts(check_id, status=False)}


def test_a_changed_refquota_is_the_one_new_false_fact(lab_world):
    from hooks.vpsadmin_api import VpsAdminApiHook

    lab = lab_world()
    upgrade_to_v2_0(lab)
    api = VpsAdminApiHook()
    veid = scalar(lab, "SELECT MIN(vps_id) FROM vps WHERE vps_server = 1")
    property_id, value = scalar(lab, """
        SELECT CONCAT(p.id, ' ', p.value) FROM dataset_properties p
        INNER JOIN vps v ON v.dataset_in_pool_id = p.dataset_in_pool_id
        WHERE v.vps_id = %s AND p.name = 'refquota'""", (veid,)).split(" ", 1)
    mib = int(value.split()[1])  # YAML "--- 61440\n...\n"
    # The baseline: the dataset's refquota as the database has it.
    sh(lab, "node1", f"zfs set refquota={mib}M vz/private/{veid}")
    before = false_facts(api, wait_for_check(api, api.create_integrity_check())["id"])

    sh(lab, "node1", f"zfs set refquota={2 * mib}M vz/private/{veid}")
    after = false_facts(api, wait_for_check(api, api.create_integrity_check())["id"])

    assert after - before == {("DatasetProperty", int(property_id), "is", f"--- {mib}\n...\n",
                               f"--- {2 * mib}\n...\n", f"refquota is {2 * mib}")}
    assert before - after == set()
