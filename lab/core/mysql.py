"""The lab's MariaDB: LAB_MYSQL_URL, else a local server with passwordless root, else a
private instance started from the system's binaries under the lab directory."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

PRIVATE_PORT = 3407


def _connect(kwargs: dict, **extra):
    import MySQLdb

    return MySQLdb.connect(connect_timeout=3, **kwargs, **extra)


def reachable(kwargs: dict) -> bool:
    try:
        _connect(kwargs).close()
        return True
    except Exception:
        return False


def from_url(url: str) -> dict:
    parsed = urlparse(url)
    if parsed.scheme not in ("mysql", "mariadb"):
        raise SystemExit(f"LAB_MYSQL_URL must be mysql://user:password@host:port, got {url!r}")
    return {
        "host": parsed.hostname or "127.0.0.1",
        "port": parsed.port or 3306,
        "user": unquote(parsed.username or "root"),
        "passwd": unquote(parsed.password or ""),
    }


def start_private(lab_dir: Path, port: int = PRIVATE_PORT) -> dict:
    """Start (or reuse) a MariaDB under `<lab>/mysql`, listening on 127.0.0.1:`port` only,
    with the character set Debian's packaged server has."""
    kwargs = {"host": "127.0.0.1", "port": port, "user": "root", "passwd": ""}
    if reachable(kwargs):
        return kwargs
    server = shutil.which("mariadbd") or shutil.which("mysqld") or "/usr/sbin/mariadbd"
    install = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
    if not Path(server).exists() or not install:
        raise SystemExit(
            "No MariaDB reachable at 127.0.0.1:3306 and no server binaries to start one: "
            "install the Debian package mariadb-server or set LAB_MYSQL_URL."
        )
    datadir = lab_dir / "mysql" / "data"
    if not datadir.exists():
        datadir.mkdir(parents=True)
        subprocess.run(
            [install, "--no-defaults", f"--datadir={datadir}", "--auth-root-authentication-method=normal",
             "--skip-test-db", "--user=root"],
            check=True, capture_output=True,
        )
    subprocess.Popen(
        [server, "--no-defaults", f"--datadir={datadir}", "--bind-address=127.0.0.1",
         f"--port={port}", f"--socket={lab_dir / 'mysql' / 'mysqld.sock'}",
         f"--pid-file={lab_dir / 'mysql' / 'mysqld.pid'}", "--user=root", "--skip-name-resolve",
         "--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci"],
        stdout=open(lab_dir / "mysql" / "mysqld.log", "ab"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    for _ in range(60):
        if reachable(kwargs):
            return kwargs
        time.sleep(0.5)
    raise SystemExit(f"the private MariaDB did not start; see {lab_dir / 'mysql' / 'mysqld.log'}")


def resolve(lab_dir: Path, url: str | None) -> dict:
    if url:
        kwargs = from_url(url)
        if not reachable(kwargs):
            raise SystemExit(f"LAB_MYSQL_URL {url!r} is not reachable")
        return kwargs
    local = {"host": "127.0.0.1", "port": 3306, "user": "root", "passwd": ""}
    if reachable(local):
        return local
    return start_private(lab_dir)


def stop_private(lab_dir: Path, timeout: float = 60) -> None:
    """Stop the MariaDB start_private() started there; returns once it has exited."""
    pid_file = lab_dir / "mysql" / "mysqld.pid"
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text().strip())
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):  # our child: reap it, or it stays a zombie
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    return
            os.kill(pid, 0)  # ProcessLookupError once it is gone
            time.sleep(0.2)


def admin(kwargs: dict, sql: str, params=None) -> list[tuple]:
    conn = _connect(kwargs, charset="utf8mb4")
    try:
        cur = conn.cursor()
        cur.execute(sql, params)
        rows = list(cur.fetchall() or [])
        conn.commit()
        return rows
    finally:
        conn.close()


def create_user(kwargs: dict, user: str, password: str) -> None:
    """An account with every privilege, as a vpsAdmin upgrade needs (DDL, dumps with a global
    read lock, the time zone tables, scratch databases)."""
    admin(kwargs, "CREATE USER IF NOT EXISTS %s@'%%' IDENTIFIED BY %s", (user, password))
    admin(kwargs, "ALTER USER %s@'%%' IDENTIFIED BY %s", (user, password))
    admin(kwargs, "GRANT ALL PRIVILEGES ON *.* TO %s@'%%' WITH GRANT OPTION", (user,))


def drop_user(kwargs: dict, user: str) -> None:
    admin(kwargs, "DROP USER IF EXISTS %s@'%%'", (user,))


def drop_database(kwargs: dict, name: str) -> None:
    admin(kwargs, f"DROP DATABASE IF EXISTS `{name}`")


def clear_timezones(kwargs: dict) -> None:
    """Empty mysql.time_zone* as on a server that never ran mysql_tzinfo_to_sql."""
    for table in ("time_zone", "time_zone_name", "time_zone_transition",
                  "time_zone_transition_type", "time_zone_leap_second"):
        admin(kwargs, f"TRUNCATE TABLE mysql.{table}")


def load_timezones(kwargs: dict) -> None:
    """What the runbook runs on the DB host, here against the lab's server."""
    tzinfo = subprocess.run(["mysql_tzinfo_to_sql", "/usr/share/zoneinfo"], capture_output=True, check=True)
    subprocess.run(["mysql", f"--host={kwargs['host']}", f"--port={kwargs['port']}", f"--user={kwargs['user']}",
                    "mysql"], input=tzinfo.stdout, capture_output=True, check=True,
                   env={**os.environ, "MYSQL_PWD": kwargs["passwd"]})
