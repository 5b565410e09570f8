"""The lab's vpsAdmin 2.0 API over https: Lab.create makes a throw-away CA and a server
certificate (key 0600), the API serves TLS with it, `lab env` exports connection vpsadmin_api
as https with the CA bundle, a client that does not trust the lab's CA is refused, and plain
http is used only where the connection says so (and the lab's API does not answer it)."""

from __future__ import annotations

import json
import socket
import time

import pytest
import requests

from hooks.vpsadmin_api import VpsAdminApiError, VpsAdminApiHook
from lab.core.config import free_port
from lab.core.nodes import run_in_node
from lab.core.topology import host_with_role
from tests.helpers import new_lab

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A lab (no ZFS pools) whose API runs: `thin start` on the API host, as the upgrade does,
    on a port of its own."""


    lab = new_lab(tmp_path_factory.mktemp("lab"))
    lab.seed(pools=False)
    lab.start()
    lab.api_port = free_port()
    result = run_in_node(lab.node_root("vpsadmin"), f"cd /opt/vpsadminapi && thin --address "
                         f"{host_with_role('api').address} --port {lab.api_port} -d start")
    assert result.returncode == 0, result.stdout + result.stderr
    deadline = time.monotonic() + 15  # the lab process follows thin's state every 0.5 s
    while True:
        try:
            socket.create_connection((host_with_role("api").address, lab.api_port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "the API never listened"
            time.sleep(0.3)
    yield lab
    lab.destroy()


@pytest.fixture
def api_conn(lab, monkeypatch):
    """Sets connection vpsadmin_api: the lab's, on the API's port, with `changes` applied
    (a None value removes the field)."""

    def use(**changes) -> dict:
        conn = {**lab.connections()["vpsadmin_api"], "port": lab.api_port, **changes}
        conn = {k: v for k, v in conn.items() if v is not None}
        monkeypatch.setenv("AIRFLOW_CONN_VPSADMIN_API", json.dumps(conn))
        return conn

    return use


def test_lab_env_exports_https_with_the_lab_ca(lab):
    conn = json.loads(lab.env()["AIRFLOW_CONN_VPSADMIN_API"])
    assert conn["schema"] == "https"
    assert conn["extra"] == {"verify": str(lab.cfg.tls_ca)}
    assert lab.cfg.tls_ca.read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert lab.cfg.tls_key.stat().st_mode & 0o777 == 0o600
    assert "PRIVATE KEY" not in lab.cfg.tls_ca.read_text() + lab.cfg.tls_cert.read_text()


def test_api_answers_https_checked_against_the_lab_ca(api_conn):
    api_conn()
    hook = VpsAdminApiHook()
    assert hook.base_url.startswith("https://127.0.1.2:")
    assert hook.version()["api_version"] == "2.0.0"
    # the admin's credentials reach the API through TLS: a wrong password is refused by it
    api_conn(password="wrong")
    with pytest.raises(VpsAdminApiError, match="HTTP 401: Action requires user to authenticate"):
        VpsAdminApiHook().integrity_check(1)


def test_client_without_the_lab_ca_is_refused(api_conn, lab):
    api_conn(extra=None)  # the default CA bundle (certifi), which does not hold the lab's CA
    hook = VpsAdminApiHook()
    assert hook.verify is True
    with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED") as refused:
        hook.version()
    assert lab.connections()["vpsadmin_api"]["password"] not in str(refused.value)


def test_http_only_when_the_connection_says_so(api_conn):
    api_conn(schema=None)  # no schema: https
    assert VpsAdminApiHook().base_url.startswith("https://")
    api_conn(schema="http")
    hook = VpsAdminApiHook()
    assert hook.base_url.startswith("http://127.0.1.2:")
    # the lab's API speaks TLS only: plain http gets no answer, the password is not read
    assert hook.version() is None
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(hook.base_url + "/v1/", auth=hook.auth, timeout=5)
