"""VpsAdminApiHook: the vpsAdmin 2.0 API (HaveAPI) with an admin's credentials.

The connection (default `vpsadmin_api`, type http) gives:
- host and port (default 9292): where the API listens, also where the upgrade starts it;
- schema: the URL scheme, read as the http provider's HttpHook reads it, but `https` when
  empty. Every request carries the admin's password (HTTP basic auth), so plain `http` only
  where the connection says so;
- login and password: the admin;
- extra `verify`: the CA bundle (a PEM file's path) the API's certificate is checked against,
  e.g. the private CA of the API host; `true` or absent: the CA bundle of `requests` (certifi,
  or REQUESTS_CA_BUNDLE). The check cannot be switched off.
A malformed connection fails before any request. Responses are HaveAPI envelopes:
{"status": bool, "response": {...}, "message": str}; a false status raises.
"""

from __future__ import annotations

import os

from airflow.sdk.bases.hook import BaseHook

from airlift.connections import VPSADMIN_API
from airlift.errors import StepError

DEFAULT_PORT = 9292
SCHEMES = ("https", "http")


class VpsAdminApiError(RuntimeError):
    pass


class VpsAdminApiHook(BaseHook):
    conn_name_attr = "api_conn_id"
    default_conn_name = VPSADMIN_API
    conn_type = "http"
    hook_name = "vpsAdmin API"

    def __init__(self, api_conn_id: str = default_conn_name, **kwargs):
        super().__init__(**kwargs)
        self.api_conn_id = api_conn_id
        conn = self.get_connection(api_conn_id)
        self.bind_host, self.bind_port = self._host(conn), conn.port or DEFAULT_PORT
        self.scheme = self._scheme(conn)
        self.verify = self._verify(conn)
        self.base_url = f"{self.scheme}://{self.bind_host}:{self.bind_port}"
        self.auth = (conn.login, conn.password) if conn.login else None
        if self.scheme == "http":
            self.log.warning("connection %s: schema http, the API password goes over the network unencrypted",
                             api_conn_id)

    # The errors below name the connection and the field, never its password.
    def _host(self, conn) -> str:
        if not conn.host or "/" in conn.host:
            raise StepError(f"connection {self.api_conn_id}: host {conn.host!r} is not a host name or address "
                            "(the scheme goes in schema)")
        return conn.host

    def _scheme(self, conn) -> str:
        scheme = (conn.schema or "https").lower()
        if scheme not in SCHEMES:
            raise StepError(f"connection {self.api_conn_id}: schema {conn.schema!r} is not https or http")
        return scheme

    def _verify(self, conn) -> bool | str:
        """True (the default CA bundle) or the path of the CA bundle to check the certificate against."""
        verify = conn.extra_dejson.get("verify", True)
        if isinstance(verify, str) and verify.lower() in ("true", "false"):  # a URI's query gives strings
            verify = verify.lower() == "true"
        if verify is False:
            raise StepError(f"connection {self.api_conn_id}: extra verify false is refused (the API password "
                            "would go to whoever answers): give the CA bundle that signed the API's certificate")
        if verify is not True and not (isinstance(verify, str) and os.path.isfile(verify)):
            raise StepError(f"connection {self.api_conn_id}: extra verify {verify!r} is not a CA bundle file")
        return verify

    def _call(self, method: str, path: str, *, json=None, params=None, timeout: float = 60) -> dict:
        import requests

        response = requests.request(method, self.base_url + path, json=json, params=params,
                                    auth=self.auth, verify=self.verify, timeout=timeout)
        try:
            body = response.json()
        except ValueError as exc:
            raise VpsAdminApiError(f"{method} {path}: HTTP {response.status_code}, not JSON: "
                                   f"{response.text[:200]}") from exc
        if not body.get("status"):
            raise VpsAdminApiError(f"{method} {path}: HTTP {response.status_code}: {body.get('message')} "
                                   f"{body.get('errors') or ''}".strip())
        return body.get("response") or {}

    def version(self, timeout: float = 10) -> dict | None:
        """The API's answer to GET /v1/, or None when it does not answer. A certificate that
        does not verify raises: something answers there, and waiting will not change it."""
        import requests

        try:
            return self._call("GET", "/v1/", timeout=timeout)
        except requests.exceptions.SSLError:
            raise
        except (requests.RequestException, VpsAdminApiError):
            return None

    def create_integrity_check(self, storage: bool = True, vps: bool = True) -> int:
        response = self._call("POST", "/v1/integrity_checks",
                              json={"integrity_check": {"storage": storage, "vps": vps, "skip_maintenance": False}})
        return int(response["integrity_check"]["id"])

    def own_integrity_checks(self, limit: int = 20) -> list[dict]:
        """Of the newest `limit` integrity checks (newest first), those this connection's login
        started (IntegrityCheck#Index shows each check's user with its login)."""
        checks = self._call("GET", "/v1/integrity_checks",
                            params={"integrity_check[limit]": int(limit)})["integrity_checks"]
        login = self.auth[0] if self.auth else None
        return [c for c in checks if (c.get("user") or {}).get("login") == login]

    def integrity_check(self, check_id: int) -> dict:
        return self._call("GET", f"/v1/integrity_checks/{int(check_id)}")["integrity_check"]

    def integrity_facts(self, check_id: int, status: bool | None = False) -> list[dict]:
        params = {"integrity_fact[integrity_check]": int(check_id)}
        if status is not None:
            params["integrity_fact[status]"] = "true" if status else "false"
        return self._call("GET", "/v1/integrity_facts", params=params)["integrity_facts"]
