"""python -m lab up|down|status|env|ssh NODE|seed"""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from lab import Lab
from lab.core import mysql
from lab.core.config import DEFAULT_SSH_PORT, default_lab_dir
from lab.core.topology import HOSTS, host


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="seed a fresh v1.22 world and start the lab")
    up.add_argument("--port", type=int, default=DEFAULT_SSH_PORT, help="the nodes' shared SSH port")
    up.add_argument("--db", default="vpsadmin", help="name of the vpsAdmin database")
    up.add_argument("--scale", type=int, default=1, help="grow the world (4200 = ~100k VPSes)")
    seed = sub.add_parser("seed", help="re-seed a fresh world into the running lab")
    seed.add_argument("--reset-timezones", action="store_true",
                      help="empty mysql.time_zone* as on a server that never loaded them")
    sub.add_parser("down", help="stop the lab process")
    sub.add_parser("status", help="what runs and what the world holds")
    sub.add_parser("env", help="print the AIRFLOW_CONN_* variables for the lab's connections")
    ssh = sub.add_parser("ssh", help="a shell (or a command) on a node")
    ssh.add_argument("node", choices=[h.name for h in HOSTS])
    ssh.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    lab_dir = default_lab_dir()

    if args.command == "up":
        if (lab_dir / "state.json").exists():
            Lab.load(lab_dir).stop()
        lab = Lab.create(lab_dir, ssh_port=args.port, vpsadmin_db=args.db, scale=args.scale)
        info = lab.seed()
        lab.start()
        print(f"lab up: {len(HOSTS)} nodes on port {args.port}, database {args.db} "
              f"({info['counts']['vps']} VPSes); `python -m lab env` for the connections")
        return 0
    lab = Lab.load(lab_dir)
    if args.command == "seed":
        lab.seed(reset_timezones=args.reset_timezones)
        print("world re-seeded")
    elif args.command == "down":
        lab.stop()
        if lab.cfg.mysql_port == mysql.PRIVATE_PORT:
            mysql.stop_private(lab.cfg.root)
        print("lab down")
    elif args.command == "status":
        return status(lab)
    elif args.command == "env":
        for name, value in lab.env().items():
            print(f"export {name}={shlex.quote(value)}")
    elif args.command == "ssh":
        h = host(args.node)
        ssh = ["ssh", "-p", str(lab.cfg.ssh_port), "-i", str(lab.cfg.client_key),
               "-o", f"UserKnownHostsFile={lab.cfg.known_hosts}", "-o", "StrictHostKeyChecking=yes",
               "-o", "BatchMode=yes", *([] if args.cmd else ["-t"]), f"root@{h.address}", *args.cmd]
        os.execvp("ssh", ssh)
    return 0


def status(lab: Lab) -> int:
    import MySQLdb

    from lab.vpsadmin import world

    pid = lab.pid()
    print(f"lab process: {f'running (pid {pid})' if pid else 'stopped'}; "
          f"SSH port {lab.cfg.ssh_port}; state in {lab.cfg.root}")
    try:
        conn = MySQLdb.connect(db=lab.cfg.vpsadmin_db, **lab.cfg.mysql_kwargs())
        print(f"database {lab.cfg.vpsadmin_db} on {lab.cfg.mysql_host}:{lab.cfg.mysql_port}: "
              + ", ".join(f"{k} {v}" for k, v in world.summary(conn).items()))
        conn.close()
    except Exception as exc:
        print(f"database {lab.cfg.vpsadmin_db}: unreachable ({exc})")
    for h in HOSTS:
        state = lab.node_root(h.name) / "var/lib/lab/services/vpsadmind"
        daemon = state.read_text().strip() if state.exists() else "-"
        print(f"  {h.name:<10} {h.address:<12} vpsadmind {daemon}")
    return 0 if pid else 1


if __name__ == "__main__":
    sys.exit(main())
