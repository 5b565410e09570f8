"""The whole upgrade under faults injected from seed 8 (fault_injection.py)."""

import pytest

from tests.e2e.vpsadmin_upgrade_v2.fault_injection import survives_injected_faults

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("airflow_db")]


def test_the_upgrade_survives_injected_faults_and_ends_in_the_same_world(lab_world, capsys):
    survives_injected_faults(lab_world, capsys, seed=8)
