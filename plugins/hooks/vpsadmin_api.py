"""VpsAdminApiHook: the vpsAdmin 2.0 API (HaveAPI over HTTP) with an admin's credentials.

The connection (default `vpsadmin_api`) gives host and port (where the API listens, also
where the upgrade starts it), login and password (HTTP basic auth). Responses are HaveAPI
envelopes: {"status": bool, "response": {...}, "message": str}; a false status raises.
"""

from __future__ import annotations

from airflow.sdk.bases.hook import BaseHook

from airlift.connections import VPSADMIN_API


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
        self.bind_host, self.bind_port = conn.host, conn.port or 9292
        self.base_url = f"http://{conn.host}:{self.bind_port}"
        self.auth = (conn.login, conn.password) if conn.login else None

    def _call(self, method: str, path: str, *, json=None, params=None, timeout: float = 60) -> dict:
        import requests

        response = requests.request(method, self.base_url + path, json=json, params=params,
                                    auth=self.auth, timeout=timeout)
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
        """The API's answer to GET /v1/, or None when it does not answer."""
        import requests

        try:
            return self._call("GET", "/v1/", timeout=timeout)
        except (requests.RequestException, VpsAdminApiError):
            return None

    def create_integrity_check(self, storage: bool = True, vps: bool = True) -> int:
        response = self._call("POST", "/v1/integrity_checks",
                              json={"integrity_check": {"storage": storage, "vps": vps, "skip_maintenance": False}})
        return int(response["integrity_check"]["id"])

    def integrity_check(self, check_id: int) -> dict:
        return self._call("GET", f"/v1/integrity_checks/{int(check_id)}")["integrity_check"]

    def integrity_facts(self, check_id: int, status: bool | None = False) -> list[dict]:
        params = {"integrity_fact[integrity_check]": int(check_id)}
        if status is not None:
            params["integrity_fact[status]"] = "true" if status else "false"
        return self._call("GET", "/v1/integrity_facts", params=params)["integrity_facts"]
