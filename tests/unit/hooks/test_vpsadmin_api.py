"""VpsAdminApiHook's reading of its connection: https unless the connection says http, the
certificate checked (against the connection's CA bundle when it names one), a malformed
connection refused before any request, the password in no error and no log line."""

from __future__ import annotations

import json

import pytest

from airlift.errors import StepError
from hooks.vpsadmin_api import VpsAdminApiHook

PASSWORD = "s3cret-admin-pw"


@pytest.fixture
def api_conn(monkeypatch):
    """Sets connection vpsadmin_api from its fields (host 192.0.2.10, admin's login)."""

    def make(**fields):
        conn = {"conn_type": "http", "host": "192.0.2.10", "login": "admin", "password": PASSWORD, **fields}
        monkeypatch.setenv("AIRFLOW_CONN_VPSADMIN_API", json.dumps(conn))

    return make


@pytest.fixture
def requests_sent(monkeypatch):
    """What the hook passed to requests.request; each answers a HaveAPI envelope."""
    import requests

    sent = []

    class Answer:
        status_code = 200

        @staticmethod
        def json():
            return {"status": True, "response": {"api_version": "2.0.0"}, "message": None}

    def request(method, url, **kwargs):
        sent.append({"method": method, "url": url, **kwargs})
        return Answer()

    monkeypatch.setattr(requests, "request", request)
    return sent


def test_https_and_certificate_checks_by_default(api_conn, requests_sent):
    api_conn()
    hook = VpsAdminApiHook()
    assert hook.base_url == "https://192.0.2.10:9292"
    assert hook.version() == {"api_version": "2.0.0"}
    [sent] = requests_sent
    assert sent["url"] == "https://192.0.2.10:9292/v1/"
    assert sent["verify"] is True
    assert sent["auth"] == ("admin", PASSWORD)


def test_ca_bundle_from_the_connection(api_conn, requests_sent, tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    api_conn(schema="https", port=9443, extra={"verify": str(ca)})
    hook = VpsAdminApiHook()
    hook.version()
    [sent] = requests_sent
    assert sent["url"] == "https://192.0.2.10:9443/v1/"
    assert sent["verify"] == str(ca)
    assert (hook.bind_host, hook.bind_port) == ("192.0.2.10", 9443)


@pytest.mark.parametrize("verify", [True, "true", "True"])
def test_verify_true_is_the_default_bundle(api_conn, verify):
    api_conn(extra={"verify": verify})
    assert VpsAdminApiHook().verify is True


def test_http_only_when_the_connection_says_so(api_conn, requests_sent, capfd):
    api_conn(schema="http")
    hook = VpsAdminApiHook()
    assert hook.base_url == "http://192.0.2.10:9292"
    hook.version()
    assert requests_sent[0]["url"] == "http://192.0.2.10:9292/v1/"
    logged = "".join(capfd.readouterr())  # Airflow's logging writes to the process's stdout
    assert "schema http, the API password goes over the network unencrypted" in logged
    assert PASSWORD not in logged


@pytest.mark.parametrize(("fields", "message"), [
    ({"schema": "ftp"}, "schema 'ftp' is not https or http"),
    ({"schema": "vpsadmin"}, "schema 'vpsadmin' is not https or http"),  # a database name left in schema
    ({"host": "https://192.0.2.10"}, "is not a host name or address"),
    ({"host": ""}, "is not a host name or address"),
    ({"extra": {"verify": False}}, "verify false is refused"),
    ({"extra": {"verify": "false"}}, "verify false is refused"),
    ({"extra": {"verify": "/nonexistent/ca.pem"}}, "'/nonexistent/ca.pem' is not a CA bundle file"),
    ({"extra": {"verify": 1}}, "verify 1 is not a CA bundle file"),
])
def test_malformed_connection_fails_before_any_request(api_conn, requests_sent, capfd, fields, message):
    api_conn(**fields)
    with pytest.raises(StepError, match="connection vpsadmin_api: ") as raised:
        VpsAdminApiHook().version()
    assert message in str(raised.value)
    assert requests_sent == []
    assert PASSWORD not in str(raised.value) and PASSWORD not in "".join(capfd.readouterr())
