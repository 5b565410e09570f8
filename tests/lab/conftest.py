"""What the lab's own tests share."""

from __future__ import annotations

import pytest

from tests.helpers import new_lab


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """One started lab per test module: a seeded v1.22 world (without ZFS pools), its own
    database name and SSH port. A module that needs the pools defines its own `lab`."""
    lab = new_lab(tmp_path_factory.mktemp("lab"))
    lab.info = lab.seed(pools=False)
    lab.start()
    yield lab
    lab.destroy()


@pytest.fixture
def nodes(lab, monkeypatch):
    """A NodeHook on the module's lab (its connections exported as AIRFLOW_CONN_*)."""
    from hooks.node import NodeHook

    for name, value in lab.env().items():
        monkeypatch.setenv(name, value)
    hook = NodeHook()
    yield hook
    hook.close()
