"""A lab world brought to vpsAdmin 2.0 the short way, without a DAG run: what tests of the 2.0
API and its integrity check start from."""

from __future__ import annotations

import time

from lab.core.nodes import run_in_node
from lab.core.topology import HOSTS, host_with_role
from tests.helpers import query


def sh(lab, node: str, command: str) -> str:
    result = run_in_node(lab.node_root(node), command)
    assert result.returncode == 0, (node, command, result.stdout.decode(), result.stderr.decode())
    return result.stdout.decode()


def upgrade_to_v2_0(lab) -> None:
    """Stray VPSes deleted and time zones loaded (as the Database section does), `git pull` and
    every migration in the API's checkout, `git pull` of vpsAdmind on every vpsAdmin server (its
    daemon switches to 2.0), the API started with `thin`. The upgrade's other steps are not done
    (cluster resources, the pools' vpsadmin datasets, ...): an integrity check reports them."""
    from hooks.vpsadmin_api import VpsAdminApiHook
    from lab.core import mysql

    query(lab, "DELETE vps FROM vps LEFT JOIN servers ON vps_server = server_id WHERE server_id IS NULL")
    mysql.load_timezones(lab.cfg.mysql_kwargs())
    api_host = host_with_role("api")
    sh(lab, api_host.name, "cd /opt/vpsadminapi && git pull && rake db:migrate")
    for host in HOSTS:
        if host.server:
            sh(lab, host.name, "cd /opt/vpsadmind && git pull")
    sh(lab, api_host.name, f"cd /opt/vpsadminapi && thin --address {api_host.address} --port {lab.cfg.api_port} "
                           "--environment production -d start")
    api, deadline = VpsAdminApiHook(), time.monotonic() + 20
    while api.version(timeout=2) is None:
        assert time.monotonic() < deadline, "the API never answered"
        time.sleep(0.5)


def wait_for_check(api, check_id: int, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while (check := api.integrity_check(check_id))["finished_at"] is None:
        assert time.monotonic() < deadline, f"integrity check {check_id} did not finish"
        time.sleep(0.5)
    return check
