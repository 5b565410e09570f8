"""The lab's SSH service: one asyncssh listener per node address, all on one port.

Each node has its own host key and loopback address; a session's commands run under
bubblewrap in that node's root (lab.core.nodes.bwrap_argv), SFTP is chrooted to it. Clients
authenticate with a key listed in the lab's authorized_keys (the Airflow key and every
node's root key, so node-to-node ssh works), except on vpsAdminOS nodes:

- root (any user but the one below) is let in with the Airflow key or a key in the node's
  own /etc/ssh/authorized_keys.d/root (what the runbook's simfs/ploop preparation adds);
- `osctl-ct-receive` is let in with a key of the node's receive keychain, as deployed by its
  osctl to /run/osctl/send-receive/authorized_keys (`command="...",restrict KEY` lines), and
  runs only that forced command, with SSH_ORIGINAL_COMMAND set (no shell, pty or SFTP).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

import asyncssh

from lab.core.config import LabConfig
from lab.core.nodes import bwrap_argv
from lab.core.topology import HOSTS, LabHost

RECEIVE_USER = "osctl-ct-receive"
RECEIVE_KEYS = "run/osctl/send-receive/authorized_keys"  # in the node's root
ROOT_KEYS = "etc/ssh/authorized_keys.d/root"


def addresses(cfg: LabConfig, host) -> list[str]:
    """Where a node answers SSH. The DB host also answers on the MariaDB server's address when
    that is a loopback one, so the host of the DAGs' database connection is the host that
    holds the database, as in production, and dumps run next to it."""
    found = [host.address]
    if "db" in host.roles and cfg.mysql_host.startswith("127.") and cfg.mysql_host not in found:
        found.append(cfg.mysql_host)
    return found


def generate_keys(cfg: LabConfig) -> None:
    """Client key, per-node host and root keys, known_hosts and authorized_keys."""
    cfg.ssh_dir.mkdir(parents=True, exist_ok=True)
    if not cfg.client_key.exists():
        key = asyncssh.generate_private_key("ssh-ed25519", comment="airflow@airlift-lab")
        key.write_private_key(cfg.client_key)
        key.write_public_key(cfg.client_key.with_suffix(".pub"))
        cfg.client_key.chmod(0o600)
    known, authorized = [], [cfg.client_key.with_suffix(".pub").read_text().strip()]
    for host in HOSTS:
        host_key = cfg.ssh_dir / f"host_{host.name}"
        root_key = cfg.ssh_dir / f"root_{host.name}"
        for path, comment in ((host_key, f"host@{host.name}"), (root_key, f"root@{host.name}")):
            if not path.exists():
                key = asyncssh.generate_private_key("ssh-ed25519", comment=comment)
                key.write_private_key(path)
                key.write_public_key(path.with_suffix(".pub"))
                path.chmod(0o600)
        public = host_key.with_suffix(".pub").read_text().split()
        names = [f"[{a}]:{cfg.ssh_port}" for a in addresses(cfg, host)]
        names.append(f"[{host.name}]:{cfg.ssh_port}")
        if host.server:
            names.append(f"[{host.server['server_name']}]:{cfg.ssh_port}")
        known.append(f"{','.join(names)} {public[0]} {public[1]}")
        authorized.append(root_key.with_suffix(".pub").read_text().strip())
    cfg.known_hosts.write_text("\n".join(known) + "\n")
    (cfg.ssh_dir / "authorized_keys").write_text("\n".join(authorized) + "\n")


async def _pump(reader, write, close=None):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            result = write(data)
            if asyncio.iscoroutine(result):
                await result
    except (asyncssh.BreakReceived, asyncssh.SignalReceived, asyncssh.TerminalSizeChanged):
        pass
    except (BrokenPipeError, ConnectionResetError, asyncssh.DisconnectError):
        pass
    finally:
        if close:
            with contextlib.suppress(Exception):
                close()


def _session_handler(root: Path):
    async def handle(process: asyncssh.SSHServerProcess) -> None:
        command, env = process.command, None
        forced = process.get_extra_info("lab_forced_command")
        if process.get_extra_info("username") == RECEIVE_USER:
            # sshd's ForceCommand: the key's command runs whatever was asked, which it reads
            # from SSH_ORIGINAL_COMMAND (`restrict`: no pty either).
            env = {"SSH_ORIGINAL_COMMAND": command} if command is not None else {}
            command = forced
        elif process.get_terminal_type():
            await _pty_session(process, root, command)
            return
        argv = ["/bin/bash", "-c", command] if command else ["/bin/bash", "-s"]
        proc = await asyncio.create_subprocess_exec(
            *bwrap_argv(root, argv, env),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, start_new_session=True,
        )

        async def feed(data):
            proc.stdin.write(data)
            await proc.stdin.drain()

        stdin_task = asyncio.create_task(_pump(process.stdin, feed, proc.stdin.close))
        try:
            await asyncio.gather(
                _pump(proc.stdout, process.stdout.write),
                _pump(proc.stderr, process.stderr.write),
            )
            status = await proc.wait()
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            raise
        finally:
            stdin_task.cancel()
        process.exit(status if status >= 0 else 128 - status)

    return handle


async def _pty_session(process, root: Path, command: str | None) -> None:
    """An interactive login (`lab ssh NODE`): bash on a pseudo-terminal inside the node."""
    import pty

    master, slave = pty.openpty()
    argv = ["/bin/bash", "-c", command] if command else ["/bin/bash", "-l"]
    proc = await asyncio.create_subprocess_exec(
        *bwrap_argv(root, argv), stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
    )
    os.close(slave)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(master, "rb", 0))
    stdin_task = asyncio.create_task(_pump(process.stdin, lambda d: os.write(master, d)))
    with contextlib.suppress(OSError):
        await _pump(reader, process.stdout.write)
    stdin_task.cancel()
    process.exit(await proc.wait())


# The live connections of each node, so a test can cut them (a lost network, a dropped link).
CONNECTIONS: dict[str, set] = {}


def _keys_file(path: Path) -> asyncssh.SSHAuthorizedKeys | None:
    """A node's authorized_keys file (read at each login: osctl and the runbook change it),
    None when missing or empty."""
    try:
        text = path.read_text()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return asyncssh.import_authorized_keys(text) if text.strip() else None


class _NodeServer(asyncssh.SSHServer):
    def __init__(self, host: LabHost, root: Path, lab_keys: asyncssh.SSHAuthorizedKeys,
                 client_keys: asyncssh.SSHAuthorizedKeys):
        self.node, self.conn = host.name, None
        self.root, self.lab_keys, self.client_keys = root, lab_keys, client_keys
        self.vpsadminos = "vpsadminos" in host.roles

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        peer = (self.conn.get_extra_info("peername") or ("",))[0]
        if username == RECEIVE_USER:
            keys = _keys_file(self.root / RECEIVE_KEYS) if self.vpsadminos else None
            options = keys.validate(key, peer, peer) if keys else None
            if not options or "command" not in options:
                return False
            self.conn.set_extra_info(lab_forced_command=options["command"])
            return True
        if self.vpsadminos:
            return any(keys is not None and keys.validate(key, peer, peer) is not None
                       for keys in (self.client_keys, _keys_file(self.root / ROOT_KEYS)))
        return self.lab_keys.validate(key, peer, peer) is not None

    def connection_made(self, conn) -> None:
        self.conn = conn
        CONNECTIONS.setdefault(self.node, set()).add(conn)

    def connection_lost(self, exc) -> None:
        CONNECTIONS.get(self.node, set()).discard(self.conn)

    def begin_auth(self, username: str) -> bool:
        return True


def cut(node: str | None = None) -> int:
    """Abort every live SSH connection to `node` (all nodes: None), as a network failure would;
    the commands they ran are handled as on a disconnect. Returns how many were cut."""
    conns = [c for name, live in CONNECTIONS.items() if node in (None, name) for c in list(live)]
    for conn in conns:
        conn.abort()
    return len(conns)


def _sftp_factory(root: Path):
    def factory(chan) -> asyncssh.SFTPServer:
        if chan.get_extra_info("username") == RECEIVE_USER:  # only its forced command
            raise asyncssh.ChannelOpenError(asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED,
                                            "SFTP and scp are not allowed for this user")
        return asyncssh.SFTPServer(chan, chroot=str(root).encode())

    return factory


async def serve(cfg: LabConfig) -> list[asyncssh.SSHAcceptor]:
    authorized = asyncssh.read_authorized_keys(str(cfg.ssh_dir / "authorized_keys"))
    client = asyncssh.read_authorized_keys(str(cfg.client_key.with_suffix(".pub")))
    acceptors = []
    for host in HOSTS:
        root = cfg.node_root(host.name)
        acceptors.append(await asyncssh.listen(
            addresses(cfg, host), cfg.ssh_port,
            server_factory=lambda host=host, root=root: _NodeServer(host, root, authorized, client),
            server_host_keys=[str(cfg.ssh_dir / f"host_{host.name}")],
            process_factory=_session_handler(root),
            sftp_factory=_sftp_factory(root),
            encoding=None,
            allow_scp=True,
        ))
    return acceptors
