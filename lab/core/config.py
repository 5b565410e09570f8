"""Where a lab keeps its state, and the settings one lab instance runs with.

Everything a lab writes lives under its directory (`.lab/` in the project by default,
`LAB_DIR` to move it); `state.json` there records what `lab up` chose, so the other
commands, the server process and the tests all read the same settings.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SSH_PORT = 2222


def free_port() -> int:
    """A TCP port nothing listens on now (for a lab's SSH next to another lab's)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def default_lab_dir() -> Path:
    return Path(os.environ.get("LAB_DIR") or PROJECT_ROOT / ".lab").resolve()


@dataclass
class LabConfig:
    lab_dir: str
    ssh_port: int = DEFAULT_SSH_PORT
    mysql_host: str = "127.0.0.1"
    mysql_port: int = 3306
    mysql_user: str = "root"
    mysql_password: str = ""
    vpsadmin_db: str = "vpsadmin"
    scale: int = 1
    # Where the upgrade starts the vpsAdmin 2.0 API (connection vpsadmin_api): a port of its
    # own per lab, so labs side by side on one machine do not answer each other's requests.
    api_port: int = 9292
    # vpsAdmin's own database account (what its nodes' configs and the DAGs' connection use),
    # with a password of its own, so a test can look for that secret everywhere a run wrote.
    app_user: str = ""
    app_password: str = ""

    @property
    def root(self) -> Path:
        return Path(self.lab_dir)

    @property
    def nodes_dir(self) -> Path:
        return self.root / "nodes"

    @property
    def ssh_dir(self) -> Path:
        return self.root / "ssh"

    @property
    def client_key(self) -> Path:
        return self.ssh_dir / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.ssh_dir / "known_hosts"

    @property
    def tls_dir(self) -> Path:
        return self.root / "tls"

    @property
    def tls_ca(self) -> Path:
        """The lab CA's certificate: the bundle clients check the lab's TLS servers against."""
        return self.tls_dir / "ca.pem"

    @property
    def tls_cert(self) -> Path:
        return self.tls_dir / "server.pem"

    @property
    def tls_key(self) -> Path:
        return self.tls_dir / "server.key"

    @property
    def pid_file(self) -> Path:
        return self.root / "lab.pid"

    @property
    def control_socket(self) -> str:
        """The lab process's control socket: an abstract one (Linux), named after the lab's
        directory (a path under a test's tmp dir can exceed a socket path's 108 bytes)."""
        return "\0airlift-lab-" + hashlib.sha256(str(self.root).encode()).hexdigest()[:24]

    @property
    def log_file(self) -> Path:
        return self.root / "lab.log"

    def node_root(self, name: str) -> Path:
        return self.nodes_dir / name

    def mysql_kwargs(self) -> dict:
        """MySQLdb.connect keyword arguments for the lab's MariaDB server (no database)."""
        return {
            "host": self.mysql_host,
            "port": self.mysql_port,
            "user": self.mysql_user,
            "passwd": self.mysql_password,
        }

    def app_kwargs(self) -> dict:
        """MySQLdb.connect keyword arguments of vpsAdmin's account (no database)."""
        return {**self.mysql_kwargs(), "user": self.app_user, "passwd": self.app_password}

    def save(self) -> None:
        """state.json, readable by its owner only (it holds the passwords)."""
        self.root.mkdir(parents=True, exist_ok=True)
        state = self.root / "state.json"
        state.touch(mode=0o600)
        state.chmod(0o600)
        state.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, lab_dir: Path | None = None) -> LabConfig:
        lab_dir = Path(lab_dir or default_lab_dir())
        state = lab_dir / "state.json"
        if not state.exists():
            raise SystemExit(f"no lab at {lab_dir}: run `python -m lab up` first")
        return cls(**json.loads(state.read_text()))
