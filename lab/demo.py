"""python -m lab.demo up|down: the lab, `airflow standalone` on it, and a plan-mode run.

`up` seeds and starts the lab (as `python -m lab up`), starts `airflow standalone` in the
background with the lab's connections (AIRFLOW_HOME=.airflow/demo, SQLite metadata,
LocalExecutor, the project's dags/ and plugins/), unpauses vpsadmin_upgrade_v2, triggers it
with `{"dry_run": true}` through the REST API and prints where to watch it. `down` stops
`airflow standalone` (its whole session) and the lab. Both can be run again safely.

Settings from the environment: DEMO_PORT (the UI/API port, default 8080), LAB_SSH_PORT
(the lab nodes' SSH port, default 2222), DEMO_PARALLELISM (LocalExecutor workers, default 8),
LAB_DIR and LAB_MYSQL_URL (see lab/).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from lab import Lab
from lab.__main__ import main as lab_main
from lab.core import mysql
from lab.core.airflow_env import airflow_env
from lab.core.config import DEFAULT_SSH_PORT, PROJECT_ROOT, default_lab_dir
from lab.core.processes import alive, stop_session

DAG_ID = "vpsadmin_upgrade_v2"
HOME = PROJECT_ROOT / ".airflow" / "demo"
START_TIMEOUT = 420  # first start migrates a fresh metadata DB: minutes on 2 cores
DAG_TIMEOUT = 300
STOP_GRACE = 30


class DemoError(Exception):
    pass


# -- the standalone process ----------------------------------------------------------------
class Standalone:
    """`airflow standalone` with AIRFLOW_HOME `home` (SQLite metadata, log, pid file and the
    generated admin password there), on the lab's connections. The demo's lives in HOME; a
    test starts its own in a temporary home."""

    def __init__(self, home: Path = HOME):
        self.home = home
        self.log = home / "standalone.log"
        self.pid_file = home / "standalone.pid"
        self.passwords = home / "simple_auth_manager_passwords.json.generated"

    def env(self, port: int, lab: Lab, extra: dict[str, str] | None = None) -> dict[str, str]:
        base_url = f"http://localhost:{port}"
        env = dict(os.environ)
        env.update(lab.env())
        env.update(airflow_env(self.home))
        env.update({
            # `airflow standalone` starts its components as `airflow ...` from PATH.
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            # Moving the API off 8080 must move the execution API with it, or every task fails
            # with "Connection refused" (research/airflow.md 2.10).
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": base_url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
            # LocalExecutor forks `parallelism` workers up front (32 by default, ~5 GB resident).
            "AIRFLOW__CORE__PARALLELISM": os.environ.get("DEMO_PARALLELISM") or "8",
        })
        env.update(extra or {})
        return env

    def pid(self) -> int | None:
        """The pid of this home's `airflow standalone`, if it runs."""
        try:
            pid = int(self.pid_file.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        if not alive(pid) or b"standalone" not in cmdline:
            return None
        return pid

    def start(self, port: int, lab: Lab, extra_env: dict[str, str] | None = None) -> subprocess.Popen:
        self.home.mkdir(parents=True, exist_ok=True)
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                raise DemoError(f"port {port} is already taken; set DEMO_PORT to a free one")
        log = open(self.log, "ab")
        log.write(f"\n==== lab.demo: airflow standalone on port {port}, {time.ctime()} ====\n".encode())
        log.flush()
        proc = subprocess.Popen(
            [sys.executable, "-m", "airflow", "standalone"], cwd=PROJECT_ROOT,
            env=self.env(port, lab, extra_env), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.pid_file.write_text(f"{proc.pid}\n")
        return proc

    def stop(self) -> bool:
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        members = stop_session(pid, STOP_GRACE)
        self.pid_file.unlink(missing_ok=True)
        if members:
            raise DemoError(f"processes of the standalone session {pid} survived SIGKILL: {members}")
        return True

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join("    " + line for line in text[-lines:])

    def admin_password(self) -> str:
        return json.loads(self.passwords.read_text())["admin"]


DEMO = Standalone()


# -- the REST API --------------------------------------------------------------------------
class Api:
    def __init__(self, port: int):
        self.base = f"http://localhost:{port}"
        self.token: str | None = None

    def call(self, method: str, path: str, body=None, timeout: float = 15) -> tuple[int, object]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        try:
            return status, json.loads(raw or b"null")
        except ValueError:
            return status, raw.decode(errors="replace")

    def ok(self, method: str, path: str, body=None):
        status, reply = self.call(method, path, body)
        if status >= 300:
            raise DemoError(f"{method} {path}: HTTP {status}: {reply}")
        return reply

    def login(self, username: str, password: str) -> None:
        self.token = None
        self.token = self.ok("POST", "/auth/token", {"username": username, "password": password})["access_token"]


def wait_for(what: str, probe, proc: subprocess.Popen, timeout: float, interval: float = 2,
             standalone: Standalone = DEMO):
    """Call `probe()` until it returns something true; fail clearly when the standalone
    process dies or the time is up."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise DemoError(f"airflow standalone exited (code {proc.returncode}) while waiting for {what}; "
                            f"see {standalone.log}:\n{standalone.log_tail()}")
        try:
            result = probe()
        except (OSError, urllib.error.URLError):
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise DemoError(f"timed out after {timeout:.0f}s waiting for {what}; see {standalone.log}:\n"
                            f"{standalone.log_tail()}")
        time.sleep(interval)


def dag_visible(api: Api, dag_id: str = DAG_ID):
    status, _ = api.call("GET", f"/api/v2/dags/{dag_id}")
    if status == 200:
        return True
    status, errors = api.call("GET", "/api/v2/importErrors")
    if status == 200:
        for error in errors.get("import_errors", []):
            if dag_id in str(error.get("filename", "")):
                raise DemoError(f"the DAG file does not import:\n{error.get('stack_trace')}")
    return False


def open_api(standalone: Standalone, proc: subprocess.Popen, port: int, dag_ids: list[str],
             dag_timeout: float = 300) -> Api:
    """Wait for the API of `standalone` on `port`, log in as its generated admin, wait for each
    of `dag_ids` to be parsed and unpause it."""
    api = Api(port)
    wait_for(f"the API on port {port}", lambda: api.call("GET", "/api/v2/version", timeout=5)[0] == 200, proc,
             START_TIMEOUT, standalone=standalone)
    wait_for("the generated admin password", standalone.passwords.exists, proc, 60, interval=1,
             standalone=standalone)
    api.login("admin", standalone.admin_password())
    for dag_id in dag_ids:
        wait_for(f"DAG {dag_id} to be parsed", lambda dag_id=dag_id: dag_visible(api, dag_id), proc, dag_timeout,
                 standalone=standalone)
        api.ok("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
    return api


def trigger(api: Api) -> dict:
    api.ok("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
    # max_active_runs=1: a run left unfinished by an earlier demo would hold the new one back.
    for state in ("running", "queued"):
        runs = api.ok("GET", f"/api/v2/dags/{DAG_ID}/dagRuns?state={state}&limit=100")
        for run in runs["dag_runs"]:
            api.ok("PATCH", f"/api/v2/dags/{DAG_ID}/dagRuns/{urllib.parse.quote(run['dag_run_id'], safe='')}",
                   {"state": "failed"})
            print(f"marked the unfinished run {run['dag_run_id']} of an earlier demo failed")
    return api.ok("POST", f"/api/v2/dags/{DAG_ID}/dagRuns",
                  {"logical_date": None, "conf": {"dry_run": True},
                   "note": "make demo: plan mode against the lab"})


# -- commands ------------------------------------------------------------------------------
def up(port: int, ssh_port: int) -> int:
    if DEMO.stop():
        print("stopped the demo's earlier airflow standalone")
    if lab_main(["up", "--port", str(ssh_port)]) != 0:
        raise DemoError("`python -m lab up` failed")
    lab = Lab.load(default_lab_dir())
    print(f"starting airflow standalone on port {port} (AIRFLOW_HOME={HOME}, log {DEMO.log}) ...")
    proc = DEMO.start(port, lab)
    try:
        run_id, state, password = start_run(Api(port), proc)
    except BaseException:
        DEMO.stop()
        print(f"stopped airflow standalone again (its log stays in {DEMO.log}); the lab still runs: "
              "`make demo-down` stops it", file=sys.stderr)
        raise
    print(f"""
Airlift demo is up.
  UI:      http://localhost:{port}/dags/{DAG_ID}/runs/{urllib.parse.quote(run_id, safe="")}
  login:   admin / {password}
  run:     {run_id} ({state}), plan mode: {{"dry_run": true}} against the lab
  lab:     .venv/bin/python -m lab status | ssh NODE   (nodes on port {lab.cfg.ssh_port})
  logs:    {DEMO.log}, {lab.cfg.log_file}
  stop:    make demo-down""")
    return 0


def start_run(api: Api, proc: subprocess.Popen) -> tuple[str, str, str]:
    """Wait for the API and the DAG, trigger the plan-mode run; (run id, state, password)."""
    port = api.base.rsplit(":", 1)[1]
    wait_for(f"the API on port {port}", lambda: api.call("GET", "/api/v2/version", timeout=5)[0] == 200,
             proc, START_TIMEOUT)
    wait_for("the generated admin password", DEMO.passwords.exists, proc, 60, interval=1)
    password = DEMO.admin_password()
    api.login("admin", password)
    print(f"API up; waiting for the dag-processor to parse {DAG_ID} ...")
    wait_for(f"DAG {DAG_ID} to be parsed", lambda: dag_visible(api), proc, DAG_TIMEOUT)
    run = trigger(api)
    run_id = run["dag_run_id"]
    quoted = urllib.parse.quote(run_id, safe="")
    state = wait_for(f"run {run_id}", lambda: (api.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{quoted}")[1]
                                               or {}).get("state"), proc, 60, interval=1)
    return run_id, state, password


def down() -> int:
    print("airflow standalone: " + ("stopped" if DEMO.stop() else "not running"))
    stop_lab()
    return 0


def stop_lab() -> None:
    """Stop the lab `make demo` and `make deploy` start (and its private MariaDB, if any)."""
    lab_dir = default_lab_dir()
    if (lab_dir / "state.json").exists():
        lab = Lab.load(lab_dir)
        running = lab.pid() is not None
        lab.stop()
        if lab.cfg.mysql_port == mysql.PRIVATE_PORT:  # the lab's own MariaDB under .lab/
            mysql.stop_private(lab_dir)
        print("lab: " + ("stopped" if running else "not running"))
    else:
        print("lab: not set up")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["up", "down"])
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            return up(int(os.environ.get("DEMO_PORT") or 8080),
                      int(os.environ.get("LAB_SSH_PORT") or DEFAULT_SSH_PORT))
        return down()
    except DemoError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
