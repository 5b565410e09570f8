"""AirflowApiHook: Airflow's own REST API (v2), for what a task cannot do through the Task SDK:
setting its DAG run's note, which the UI shows beside the run.

The connection (default `airflow_api`, type http) gives the API server's base URL (host with
scheme, and port) and a user allowed to edit DAG runs (login, password); the hook takes a JWT
from `/auth/token` and sends it as a bearer token. Without the connection nothing is sent: the
caller's XCom has the same figures.
"""

from __future__ import annotations

from airflow.sdk.bases.hook import BaseHook

AIRFLOW_API = "airflow_api"


class AirflowApiHook(BaseHook):
    conn_name_attr = "airflow_api_conn_id"
    default_conn_name = AIRFLOW_API
    conn_type = "http"
    hook_name = "Airflow REST API"

    def __init__(self, airflow_api_conn_id: str = default_conn_name, timeout: float = 30, **kwargs):
        super().__init__(**kwargs)
        conn = self.get_connection(airflow_api_conn_id)
        host = conn.host or ""
        scheme = conn.schema or ("https" if conn.port in (None, 443) else "http")
        base = host if "://" in host else f"{scheme}://{host}"
        self.base_url = base.rstrip("/") + (f":{conn.port}" if conn.port and "://" not in host else "")
        self.login, self.password, self.timeout = conn.login, conn.password, timeout

    def _token(self, client) -> str:
        response = client.post(f"{self.base_url}/auth/token", json={"username": self.login, "password": self.password})
        response.raise_for_status()
        return response.json()["access_token"]

    def _request(self, method: str, path: str, **kwargs) -> dict:
        import httpx

        with httpx.Client(timeout=self.timeout) as client:
            headers = {"Authorization": f"Bearer {self._token(client)}"}
            response = client.request(method, f"{self.base_url}/api/v2/{path}", headers=headers, **kwargs)
            response.raise_for_status()
            return response.json()

    def set_dag_run_note(self, dag_id: str, run_id: str, note: str) -> None:
        self._request("PATCH", f"dags/{dag_id}/dagRuns/{run_id}", params={"update_mask": "note"}, json={"note": note})

    def dag_is_paused(self, dag_id: str) -> bool:
        return bool(self._request("GET", f"dags/{dag_id}")["is_paused"])

    def set_dag_paused(self, dag_id: str, paused: bool) -> None:
        self._request("PATCH", f"dags/{dag_id}", params={"update_mask": "is_paused"}, json={"is_paused": paused})

    @classmethod
    def if_configured(cls, log) -> AirflowApiHook | None:
        """The hook, or None (logged) when connection airflow_api does not exist."""
        from airflow.exceptions import AirflowNotFoundException
        from airflow.sdk.exceptions import AirflowRuntimeError

        try:
            return cls()
        except (AirflowNotFoundException, AirflowRuntimeError):
            log.info("no connection %s (Airflow's REST API)", AIRFLOW_API)
            return None

    @classmethod
    def set_run_note_if_configured(cls, dag_id: str, run_id: str, note: str, log) -> bool:
        """Sets the note when connection airflow_api exists; a failure is logged, not raised
        (the report went out; the note only repeats its figures)."""
        hook = cls.if_configured(log)
        if hook is None:
            return False
        try:
            hook.set_dag_run_note(dag_id, run_id, note)
        except Exception as exc:  # noqa: BLE001 - see the docstring
            log.warning("could not set the note of run %s through %s: %s", run_id, hook.base_url, exc)
            return False
        return True
