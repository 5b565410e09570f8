"""The embedded lab cluster: real MariaDB, sandboxed nodes over real SSH, node simulators.

`Lab` is what `python -m lab` and the tests drive:

    lab = Lab.create(lab_dir, ssh_port=2222, vpsadmin_db="vpsadmin")
    lab.seed()       # a fresh v1.22 world: database, node directories, keys
    lab.start()      # the lab process: SSH for every node, the node daemons
    lab.env()        # AIRFLOW_CONN_* for the DAGs' connections
    lab.stop()

lab/core/ is the lab without product knowledge (config, MariaDB, hosts, node sandboxes and
their tool simulators, SSH, the lab process); each product the lab simulates is a package
beside it (lab/vpsadmin/), listed in lab/core/products.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from lab.core import mysql, tls
from lab.core.config import PROJECT_ROOT, LabConfig
from lab.core.products import products
from lab.core.topology import HOSTS, host


class Lab:
    def __init__(self, cfg: LabConfig):
        self.cfg = cfg

    @classmethod
    def create(cls, lab_dir: Path, ssh_port: int, vpsadmin_db: str = "vpsadmin",
               scale: int = 1, api_port: int = 9292) -> Lab:
        lab_dir = Path(lab_dir).resolve()
        lab_dir.mkdir(parents=True, exist_ok=True)
        server = mysql.resolve(lab_dir, os.environ.get("LAB_MYSQL_URL"))
        cfg = LabConfig(lab_dir=str(lab_dir), ssh_port=ssh_port, mysql_host=server["host"],
                        mysql_port=server["port"], mysql_user=server["user"],
                        mysql_password=server["passwd"], vpsadmin_db=vpsadmin_db, scale=scale, api_port=api_port,
                        app_user="vpsadmin_" + hashlib.sha256(vpsadmin_db.encode()).hexdigest()[:10],
                        app_password=secrets.token_urlsafe(18).replace("-", "x").replace("_", "y"))
        cfg.save()
        tls.generate(cfg)  # the CA and certificate the vpsAdmin API serves with (https)
        mysql.create_user(cfg.mysql_kwargs(), cfg.app_user, cfg.app_password)
        return cls(cfg)

    @classmethod
    def load(cls, lab_dir: Path | None = None) -> Lab:
        return cls(LabConfig.load(lab_dir))

    # -- the world -----------------------------------------------------------------------
    def seed(self, reset_timezones: bool = False, pools: bool = True, world: str = "vpsadmin",
             **options) -> dict:
        """Build fresh node directories and keys, then a world on them: `vpsadmin` (the default),
        a v1.22 cluster with its database; without `pools`, no ZFS pools on the nodes (a
        benchmark of database steps at 100k VPSes needs none, and their backup snapshots would
        be copies of millions of files). `openvz`: the OpenVZ node's containers and the
        vpsAdminOS nodes (lab/openvz/world.py, `options` go there). `synnefo`: a Synnefo 0.12
        cluster, its databases on the lab's PostgreSQL and its hosts' files (lab/synnefo/)."""
        from lab import openvz, synnefo, vpsadmin
        from lab.core import nodes, sshd

        sshd.generate_keys(self.cfg)
        for h in HOSTS:
            nodes.build_node(self.cfg, h, self.cfg.ssh_dir / f"root_{h.name}")
        if world == "openvz":
            return openvz.seed_world(self.cfg, **options)
        if world == "synnefo":
            return synnefo.seed_world(self.cfg, **options)
        if world != "vpsadmin":
            raise ValueError(f"no lab world {world!r}: vpsadmin, openvz or synnefo")
        return vpsadmin.seed_world(self.cfg, reset_timezones=reset_timezones, pools=pools)

    # -- the lab process -----------------------------------------------------------------
    def pid(self) -> int | None:
        try:
            pid = int(self.cfg.pid_file.read_text())
            os.kill(pid, 0)
            return pid
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None

    def start(self, timeout: float = 30) -> None:
        if self.pid():
            return
        log = open(self.cfg.log_file, "ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "lab.core.server", self.cfg.lab_dir],
            cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.cfg.pid_file.write_text(str(proc.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the lab process exited; see {self.cfg.log_file}")
            if all(self._listening(h.address) for h in HOSTS):
                return
            time.sleep(0.2)
        raise RuntimeError(f"the lab's SSH did not come up in {timeout}s; see {self.cfg.log_file}")

    def _listening(self, address: str) -> bool:
        try:
            socket.create_connection((address, self.cfg.ssh_port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def stop(self) -> None:
        pid = self.pid()
        if pid:
            os.killpg(pid, signal.SIGTERM)
            for _ in range(50):
                if not self.pid():
                    break
                time.sleep(0.1)
            else:
                os.killpg(pid, signal.SIGKILL)
        self.cfg.pid_file.unlink(missing_ok=True)

    def cut_ssh(self, node: str | None = None) -> int:
        """Cut the SSH connections to a lab node (None: every node), as a network failure
        would; returns how many were cut."""
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(self.cfg.control_socket)
            s.sendall(f"cut {node or '*'}\n".encode())
            reply = s.makefile().readline().strip()
        if not reply.isdigit():
            raise RuntimeError(f"the lab process said: {reply}")
        return int(reply)

    def destroy(self) -> None:
        """Stop the lab, drop its database (and the scratch copies DAG runs left beside it,
        e.g. after a rejected encoding fix) and remove its directory."""
        self.stop()
        kwargs = self.cfg.mysql_kwargs()
        scratch = mysql.admin(kwargs, "SHOW DATABASES LIKE %s", (self.cfg.vpsadmin_db.replace("_", r"\_") + r"\_airlift%",))
        for (name,) in scratch:
            mysql.drop_database(kwargs, name)
        mysql.drop_database(kwargs, self.cfg.vpsadmin_db)
        if self.cfg.app_user:
            mysql.drop_user(kwargs, self.cfg.app_user)
        from lab import synnefo

        synnefo.destroy_world(self.cfg)  # its PostgreSQL databases; nothing (no server) if never seeded
        shutil.rmtree(self.cfg.root, ignore_errors=True)

    # -- what clients need ---------------------------------------------------------------
    def connections(self) -> dict[str, dict]:
        """{conn_id: Airflow connection} of every product's DAGs on this lab."""
        conns: dict[str, dict] = {}
        for product in products():
            conns.update(product.connections(self.cfg))
        return conns

    def env(self) -> dict[str, str]:
        return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(conn)
                for conn_id, conn in self.connections().items()}

    def node_root(self, name: str) -> Path:
        host(name)
        return self.cfg.node_root(name)
