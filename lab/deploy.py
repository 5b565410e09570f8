"""python -m lab.deploy up|down|status|secrets: the production shape on this machine.

docker-compose.yaml is the one description of the deployment. `up` starts its Airflow services
as processes from that file, with no container engine: it reads x-airflow-common's
environment and each service's command. The services are the api-server, scheduler,
dag-processor, triggerer and two Celery workers, on the lab's connections.
- Metadata and Celery results go to PostgreSQL on 127.0.0.1:5432 when it answers (a role and
  a database of the deployment's own), else to a private server under the state folder.
- The broker is Redis on 127.0.0.1:6379 when it answers, else a private one there.
- Secrets are generated once and kept 0600 in the state folder's secrets.json: the Fernet
  key, the JWT and session secrets, the database and broker passwords, and the admin's and
  the approver's passwords. No default password exists.
- The users are `admin` (Admin) and `approver` (Op). The approver is the one the gates are
  assigned to.

`down` stops every process `up` started and checks that none is left, then the lab (unless
`make demo` runs on it). `status` shows what runs. `secrets --env-file .env` writes the AIRLIFT_* secrets that docker compose needs.

The state folder is .airflow/production (DEPLOY_DIR). It holds the logs of the services and
of every task, the pid files, secrets.json, and a private database's files. Settings come
from the environment:
- DEPLOY_PORT: the UI/API port, default 8080.
- DEPLOY_WORKERS: the number of Celery workers, default 2.
- DEPLOY_REDIS_DB: the database number on a shared Redis, default 0.
- LAB_SSH_PORT: as for `make demo`.
- AIRLIFT_*: as in docker-compose.yaml, e.g. AIRLIFT_WORKER_CONCURRENCY or
  AIRLIFT_HEARTBEAT_TIMEOUT.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import secrets
import shlex
import socket
import subprocess
import sys
import time
import urllib.error
from pathlib import Path

import yaml

from lab import Lab
from lab.core import postgres
from lab.core.config import DEFAULT_SSH_PORT, PROJECT_ROOT, default_lab_dir, free_port
from lab.core.processes import alive, session_members, stop_session, stop_sessions
from lab.demo import Api

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yaml"
HOME = PROJECT_ROOT / ".airflow" / "production"
CONTAINER_HOME = "/opt/airflow"
# The compose mounts that hold the deployment's own data: under the state folder here, not
# in the checkout.
STATE_MOUNTS = ("logs", "config")
# compose service -> the processes started for it here (Celery workers: several)
AIRFLOW_SERVICES = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
                    "airflow-worker")
START_TIMEOUT = 420  # the first start migrates a fresh metadata database: minutes on 2 cores
STOP_GRACE = 60  # a Celery worker's warm shutdown lets its running tasks end first
SHARED_POSTGRES = "postgresql://postgres@127.0.0.1:5432"
SHARED_REDIS = ("127.0.0.1", 6379)
SECRET_NAMES = ("db_password", "redis_password", "fernet_key", "jwt_secret", "api_secret_key", "admin_password",
                "approver_password", "tasks_password")
# The UI's users: {name: (FAB role, its password in secrets.json)}. airlift-tasks is the
# account the DAGs' own REST calls use (connection airflow_api: run notes, unpausing the
# scheduled DAGs).
USERS = {"admin": ("Admin", "admin_password"), "approver": ("Op", "approver_password"),
         "airlift-tasks": ("User", "tasks_password")}


class DeployError(Exception):
    pass


# -- the compose file, read ------------------------------------------------------------------
_VARIABLE = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\})")


def interpolate(value: str, variables: dict[str, str]) -> str:
    """`value` with compose's variable forms replaced: ${X}, ${X:-default}, ${X-default},
    ${X:?error}, ${X?error}, and $$ for a literal $."""
    def replace(match: re.Match) -> str:
        name, op, arg = match.groups()
        if name is None:
            return "$"
        value = variables.get(name)
        if op in (":-", ":?") and not value:
            value = None
        if value is None:
            if op and op.endswith("?"):
                raise DeployError(f"{name} is not set: {arg}")
            return arg if op else ""
        return value

    return _VARIABLE.sub(replace, value)


def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def service_command(service: str) -> list[str]:
    """The `airflow` arguments of a compose service (its `command`)."""
    command = compose()["services"][service]["command"]
    return shlex.split(command) if isinstance(command, str) else list(command)


def common_environment(variables: dict[str, str], home: Path) -> dict[str, str]:
    """x-airflow-common's environment with `variables` put in, and the container's paths
    (/opt/airflow/dags, ...) turned into this machine's: the checkout's dags/, plugins/ and
    include/, the state folder's logs/ and config/."""
    common = compose()["x-airflow-common"]
    mounts = {}
    for volume in common["volumes"]:
        source, target = volume.split(":")[:2]
        name = Path(source).name
        mounts[target] = home / name if name in STATE_MOUNTS else (PROJECT_ROOT / source).resolve()
    env = {}
    for key, raw in common["environment"].items():
        value = interpolate(str(raw), variables)
        for target, path in mounts.items():
            if value == target or value.startswith(target + "/"):
                value = str(path) + value[len(target):]
        env[key] = value
    return env


# -- the deployment ----------------------------------------------------------------------------
def _answers(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex((host, port)) == 0


def _write_private(path: Path, text: str) -> None:
    """A file only its owner can read, from its first byte."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


class Deployment:
    """The production shape with its state in `home`."""

    def __init__(self, home: Path = HOME, port: int = 8080, workers: int = 2, redis_db: int = 0,
                 settings: dict[str, str] | None = None, extra_env: dict[str, str] | None = None):
        self.home = home
        self.settings = settings or {}  # compose variables that win over everything (tests)
        self.extra_env = extra_env or {}  # beyond the compose file: a test's own Airflow settings
        self.port = port
        self.workers = workers
        self.redis_db = redis_db
        self.secrets_file = home / "secrets.json"
        self.state_file = home / "state.json"
        self.run_dir = home / "run"
        # one role and database per state folder: two deployments (a test's and yours) never meet
        self.db_name = "airlift_" + hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:10]

    # -- secrets and state
    def secrets(self) -> dict[str, str]:
        """The deployment's secrets, generated the first time (and any this version added)."""
        values = {}
        if self.secrets_file.exists():
            if self.secrets_file.stat().st_mode & 0o077:
                raise DeployError(f"{self.secrets_file} is readable by others: chmod 600 it")
            values = json.loads(self.secrets_file.read_text())
        if all(name in values for name in SECRET_NAMES):
            return values
        from cryptography.fernet import Fernet

        for name in SECRET_NAMES:
            # The JWT secret signs HS512 tokens: 64 bytes at least (RFC 7518 §3.2; PyJWT warns below)
            values.setdefault(name, Fernet.generate_key().decode() if name == "fernet_key" else
                              secrets.token_urlsafe(64 if name == "jwt_secret" else 32))
        self.home.mkdir(parents=True, exist_ok=True)
        _write_private(self.secrets_file, json.dumps(values, indent=1) + "\n")
        return values

    def state(self) -> dict:
        return json.loads(self.state_file.read_text()) if self.state_file.exists() else {}

    def variables(self, state: dict, approvers: str = "") -> dict[str, str]:
        """The compose file's variables for this machine (AIRLIFT_* from the environment win)."""
        s = self.secrets()
        base_url = f"http://localhost:{self.port}"
        values = {
            "AIRLIFT_DB_USER": self.db_name, "AIRLIFT_DB_PASSWORD": s["db_password"], "AIRLIFT_DB_NAME": self.db_name,
            "AIRLIFT_DB_HOST": "127.0.0.1", "AIRLIFT_DB_PORT": str(state["db_port"]),
            "AIRLIFT_REDIS_HOST": "127.0.0.1", "AIRLIFT_REDIS_PORT": str(state["redis_port"]),
            "AIRLIFT_REDIS_PASSWORD": s["redis_password"] if state["redis_private"] else "",
            "AIRLIFT_REDIS_DB": str(state["redis_db"]),
            "AIRLIFT_FERNET_KEY": s["fernet_key"], "AIRLIFT_JWT_SECRET": s["jwt_secret"],
            "AIRLIFT_API_SECRET_KEY": s["api_secret_key"],
            "AIRLIFT_API_HOST": "127.0.0.1", "AIRLIFT_API_PORT": str(self.port), "AIRLIFT_BASE_URL": base_url,
            "AIRLIFT_API_WORKERS": "1", "AIRLIFT_WORKER_CONCURRENCY": "4",
            "AIRLIFT_SCHEDULER_HEALTH_PORT": str(state["scheduler_health_port"]),
            "AIRLIFT_WORKER_LOG_PORT": str(state["worker_log_port"]),
            "AIRLIFT_TRIGGER_LOG_PORT": str(state["trigger_log_port"]),
            "AIRLIFT_APPROVERS": approvers, "AIRLIFT_TASKS_PASSWORD": s["tasks_password"],
        }
        values.update({k: v for k, v in os.environ.items() if k.startswith("AIRLIFT_")})
        values.update(self.settings)
        return values

    def env(self, lab: Lab | None, approvers: str = "") -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AIRLIFT_"))}
        if lab is not None:
            env.update(lab.env())
        env.update(common_environment(self.variables(self.state(), approvers), self.home))
        env.update({
            "AIRFLOW_HOME": str(self.home),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            # the FAB users' settings file (webserver_config.py) lives in the state folder
            "AIRFLOW__FAB__CONFIG_FILE": str(self.home / "webserver_config.py"),
        })
        env.update(self.extra_env)
        return env

    # -- the services under it
    def _prepare_database(self, state: dict) -> None:
        """A role and a database of the deployment's own on the shared server, or a private
        server under the state folder when none answers on 127.0.0.1:5432."""
        password = self.secrets()["db_password"]
        if state.get("db_private") or not postgres.reachable(SHARED_POSTGRES):
            state.update(db_private=True, db_port=state.get("db_port") or free_port())
            self._start_private_postgres(state["db_port"])
            server = f"postgresql://postgres@127.0.0.1:{state['db_port']}"
        else:
            state.update(db_private=False, db_port=5432)
            server = SHARED_POSTGRES
        if postgres.admin(server, "SELECT 1 FROM pg_roles WHERE rolname = %s", (self.db_name,)):
            postgres.admin(server, postgres.sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(
                postgres.sql.Identifier(self.db_name), postgres.sql.Literal(password)))
        else:
            postgres.admin(server, postgres.sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                postgres.sql.Identifier(self.db_name), postgres.sql.Literal(password)))
        if not postgres.database_exists(server, self.db_name):
            postgres.admin(server, postgres.sql.SQL("CREATE DATABASE {} OWNER {}").format(
                postgres.sql.Identifier(self.db_name), postgres.sql.Identifier(self.db_name)))

    def _start_private_postgres(self, port: int) -> None:
        data = self.home / "postgres"
        binaries = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
        if not binaries:
            raise DeployError("no PostgreSQL answers on 127.0.0.1:5432 and no server is installed "
                              "(apt-get install postgresql)")
        bin_dir = binaries[-1]
        if "postgres" in self.processes():
            return
        if not (data / "PG_VERSION").exists():
            # trust: the server listens on 127.0.0.1 only, and its folder is postgres's alone
            subprocess.run([bin_dir / "initdb", "-D", data, "-U", "postgres", "--auth=trust"], check=True,
                           capture_output=True, **self._as_postgres())
        self._spawn("postgres", [str(bin_dir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(data),
                                 "-c", "listen_addresses=127.0.0.1"], dict(os.environ), **self._as_postgres())
        self._wait("the private PostgreSQL", lambda: postgres.reachable(f"postgresql://postgres@127.0.0.1:{port}"),
                   60, "postgres")

    def _as_postgres(self) -> dict:
        """PostgreSQL refuses to run as root: as the postgres user then, owning its folder."""
        if os.geteuid() != 0:
            return {}
        import pwd

        user = pwd.getpwnam("postgres")
        data = self.home / "postgres"
        data.mkdir(parents=True, exist_ok=True)
        os.chown(data, user.pw_uid, user.pw_gid)
        os.chmod(data, 0o700)
        return {"user": user.pw_uid, "group": user.pw_gid}

    def _prepare_broker(self, state: dict) -> None:
        if state.get("redis_private") or not _answers(*SHARED_REDIS):
            port = state.get("redis_port") if state.get("redis_private") else free_port()
            state.update(redis_private=True, redis_port=port, redis_db=0)
            conf = self.home / "redis.conf"
            _write_private(conf, f"bind 127.0.0.1\nport {port}\nrequirepass {self.secrets()['redis_password']}\n"
                                 f"dir {self.home}\nsave \"\"\nappendonly no\n")
            if "redis" not in self.processes():
                self._spawn("redis", ["redis-server", str(conf)], dict(os.environ))
                self._wait("the private Redis", lambda: _answers("127.0.0.1", port), 30, "redis")
        else:
            state.update(redis_private=False, redis_port=SHARED_REDIS[1], redis_db=self.redis_db)

    def _airflow(self, env: dict[str, str], *args: str, stdin: str | None = None) -> str:
        result = subprocess.run([sys.executable, "-m", "airflow", *args] if args[0] != "-c" else
                                [sys.executable, *args], cwd=PROJECT_ROOT, env=env, input=stdin, text=True,
                                capture_output=True)
        if result.returncode:
            raise DeployError(f"airflow {args[0]} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
        return result.stdout

    def _users(self, env: dict[str, str]) -> dict[str, str]:
        """The UI's users with their generated passwords (given on stdin, never as
        arguments); {username: FAB user id}."""
        s = self.secrets()
        wanted = {name: {"role": role, "password": s[key]} for name, (role, key) in USERS.items()}
        out = self._airflow(env, "-c", _USERS_SCRIPT, stdin=json.dumps(wanted))
        return json.loads(out.strip().splitlines()[-1])

    def processes(self) -> dict[str, int]:
        """{process name: pid} of what runs, by the pid files."""
        running = {}
        for pid_file in sorted(self.run_dir.glob("*.pid")) if self.run_dir.exists() else []:
            try:
                pid = int(pid_file.read_text())
            except ValueError:
                continue
            if alive(pid):
                running[pid_file.stem] = pid
        return running

    def _spawn(self, name: str, argv: list[str], env: dict[str, str], **kwargs) -> int:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        with open(self.home / "logs" / f"{name}.log", "ab") as log:
            log.write(f"\n==== lab.deploy: {name} started {time.ctime()} ====\n".encode())
            log.flush()
            proc = subprocess.Popen(argv, cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True, **kwargs)
        (self.run_dir / f"{name}.pid").write_text(f"{proc.pid}\n")
        return proc.pid

    def start_service(self, name: str, env: dict[str, str]) -> int:
        """One Airflow process: `airflow-worker-2` is the second Celery worker."""
        service = name if name in AIRFLOW_SERVICES else name.rsplit("-", 1)[0]
        argv = [sys.executable, "-m", "airflow", *service_command(service)]
        if service == "airflow-worker":
            # several workers on one machine: each its own Celery name and log server port
            index = int(name.rsplit("-", 1)[1])
            argv += ["--celery-hostname", f"{name}@%h"]
            env = {**env, "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT":
                   str(int(env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"]) + index - 1)}
        return self._spawn(name, argv, env)

    def service_names(self) -> list[str]:
        names = [s for s in AIRFLOW_SERVICES if s != "airflow-worker"]
        return names + [f"airflow-worker-{i}" for i in range(1, self.workers + 1)]

    def _wait(self, what: str, probe, timeout: float, name: str | None = None) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if probe():
                    return
            except (OSError, urllib.error.URLError):
                pass
            dead = [n for n in ([name] if name else self.service_names()) if n not in self.processes()]
            if dead:
                raise DeployError(f"{', '.join(dead)} exited while waiting for {what}; see "
                                  f"{self.home / 'logs' / (dead[0] + '.log')}:\n{self.log_tail(dead[0])}")
            if time.monotonic() > deadline:
                raise DeployError(f"timed out after {timeout:.0f}s waiting for {what}")
            time.sleep(2)

    def log_tail(self, name: str, lines: int = 20) -> str:
        try:
            text = (self.home / "logs" / f"{name}.log").read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join("    " + line for line in text[-lines:])

    def up(self, lab: Lab | None) -> Api:
        """Start everything not running yet; the REST API logged in as admin."""
        if _answers("127.0.0.1", self.port) and "airflow-apiserver" not in self.processes():
            raise DeployError(f"port {self.port} is already taken; set DEPLOY_PORT to a free one")
        self.home.mkdir(parents=True, exist_ok=True)
        state = self.state()
        for key in ("scheduler_health_port", "worker_log_port", "trigger_log_port"):
            state.setdefault(key, free_port() if self.port != 8080 else {"scheduler_health_port": 8974,
                                                                          "worker_log_port": 8793,
                                                                          "trigger_log_port": 8794}[key])
        self._prepare_database(state)
        self._prepare_broker(state)
        self.state_file.write_text(json.dumps(state, indent=1) + "\n")
        env = self.env(lab)
        self._airflow(env, "db", "migrate")
        users = self._users(env)
        env = self.env(lab, approvers=f"{users['approver']}:approver")
        running = self.processes()
        for name in self.service_names():
            if name not in running:
                self.start_service(name, env)
        api = Api(self.port)
        self._wait(f"the API on port {self.port}", lambda: api.call("GET", "/api/v2/version", timeout=5)[0] == 200,
                   START_TIMEOUT)
        self._wait("the scheduler's health check", lambda: _http_ok(
            f"http://127.0.0.1:{state['scheduler_health_port']}/health"), START_TIMEOUT)
        return self.api()

    def restart(self, name: str, lab: Lab | None) -> None:
        """Stop one service (gracefully) and start it again, as an operator's restart does."""
        pid = self.processes().get(name)
        if pid is not None and stop_session(pid, STOP_GRACE):
            raise DeployError(f"{name} did not stop")
        users = self._users(self.env(lab))
        self.start_service(name, self.env(lab, approvers=f"{users['approver']}:approver"))

    def down(self) -> list[str]:
        """Stop every process of the deployment (the Airflow services first, the private
        database and broker last); the names of those that ran."""
        running = self.processes()
        backends = [n for n in ("redis", "postgres") if n in running]
        services = [n for n in running if n not in backends]
        left = {}
        for names in (services, backends):  # the services together (one grace for all), then what they use
            survivors = stop_sessions([running[n] for n in names], STOP_GRACE)
            left.update({n: survivors[running[n]] for n in names if running[n] in survivors})
            for name in names:
                (self.run_dir / f"{name}.pid").unlink(missing_ok=True)
        if left:
            raise DeployError(f"processes survived SIGKILL: {left}")
        return services + backends

    def api(self, user: str = "admin") -> Api:
        """The REST API, logged in as one of the deployment's users."""
        api = Api(self.port)
        api.login(user, self.secrets()[USERS[user][1]])
        return api

    def destroy(self) -> None:
        """Stopped, and its database, role and broker messages gone (a test's deployment)."""
        self.down()
        state = self.state()
        if not state.get("db_private") and postgres.reachable(SHARED_POSTGRES):
            postgres.drop_database(SHARED_POSTGRES, self.db_name)
            postgres.admin(SHARED_POSTGRES, postgres.sql.SQL("DROP ROLE IF EXISTS {}").format(
                postgres.sql.Identifier(self.db_name)))
        if not state.get("redis_private") and state.get("redis_port"):
            import redis

            redis.Redis(host="127.0.0.1", port=state["redis_port"], db=state["redis_db"]).flushdb()

    def leftovers(self) -> list[int]:
        """Processes of any session this deployment started that are still alive."""
        pids = []
        for pid_file in self.run_dir.glob("*.pid") if self.run_dir.exists() else []:
            try:
                pids += session_members(int(pid_file.read_text()))
            except ValueError:
                pass
        return pids


def _http_ok(url: str) -> bool:
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status == 200


# Run with the deployment's environment: creates or updates the FAB users from a JSON on stdin
# ({name: {role, password}}), prints {name: user id}.
_USERS_SCRIPT = """
import json, sys
from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder
wanted = json.load(sys.stdin)
ids = {}
with get_application_builder() as appbuilder:
    sm = appbuilder.sm
    for name, user_spec in wanted.items():
        role = sm.find_role(user_spec["role"])
        user = sm.find_user(username=name)
        if user is None:
            user = sm.add_user(name, name, "Airlift", f"{name}@airlift.invalid", role, user_spec["password"])
            if not user:
                raise SystemExit(f"could not create the user {name}")
        else:
            sm.reset_password(user.id, user_spec["password"])
            if role not in user.roles:
                user.roles = [role]
                sm.update_user(user)
        ids[name] = str(user.id)
print(json.dumps(ids))
"""


def env_file_lines(values: dict[str, str]) -> str:
    names = {"db_password": "AIRLIFT_DB_PASSWORD", "redis_password": "AIRLIFT_REDIS_PASSWORD",
             "fernet_key": "AIRLIFT_FERNET_KEY", "jwt_secret": "AIRLIFT_JWT_SECRET",
             "api_secret_key": "AIRLIFT_API_SECRET_KEY", "admin_password": "AIRLIFT_ADMIN_PASSWORD",
             "tasks_password": "AIRLIFT_TASKS_PASSWORD"}
    return "".join(f"{variable}={values[key]}\n" for key, variable in names.items())


# -- commands ------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.deploy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["up", "down", "status", "secrets"])
    parser.add_argument("--env-file", type=Path, help="secrets: the .env file to write (0600)")
    args = parser.parse_args(argv)
    home = Path(os.environ.get("DEPLOY_DIR") or HOME).resolve()
    deployment = Deployment(home, port=int(os.environ.get("DEPLOY_PORT") or 8080),
                            workers=int(os.environ.get("DEPLOY_WORKERS") or 2),
                            redis_db=int(os.environ.get("DEPLOY_REDIS_DB") or 0))
    try:
        if args.command == "up":
            from lab.__main__ import main as lab_main

            if lab_main(["up", "--port", os.environ.get("LAB_SSH_PORT") or str(DEFAULT_SSH_PORT)]) != 0:
                raise DeployError("`python -m lab up` failed")
            print(f"starting the production shape (state in {home}) ...")
            deployment.up(Lab.load(default_lab_dir()))
            print(f"""
Airlift's production shape is up: {', '.join(deployment.processes())}
  UI:        http://localhost:{deployment.port}
  login:     admin, or approver (who answers the gates); passwords in {deployment.secrets_file}
  logs:      {home / 'logs'}
  stop:      make deploy-down""")
        elif args.command == "down":
            from lab.demo import DEMO, stop_lab

            stopped = deployment.down()
            print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
            if DEMO.pid() is None:  # `make demo` runs on the same lab: it stays while the demo runs
                stop_lab()
        elif args.command == "status":
            running = deployment.processes()
            for name in deployment.service_names():
                print(f"{name:24} {'pid ' + str(running[name]) if name in running else 'stopped'}")
        else:
            if not args.env_file:
                parser.error("secrets needs --env-file")
            if args.env_file.exists():
                raise DeployError(f"{args.env_file} exists: not overwritten")
            _write_private(args.env_file, env_file_lines(deployment.secrets()))
            print(f"wrote {args.env_file} (0600)")
    except DeployError as exc:
        print(f"deploy: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
