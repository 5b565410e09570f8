"""NodeHook: run commands on cluster nodes over SSH with one connection's credentials.

The connection (default `vpsadmin_ssh`) carries the user, key and port; the host of each
call comes from the inventory. Host keys are checked against the file named by the
connection's `known_hosts` extra (else ~/.ssh/known_hosts) and never auto-accepted: an
unknown or changed key fails the task. The stock SSHHook only reads ~/.ssh/known_hosts and
holds one host per hook, hence this subclass.
"""

from __future__ import annotations

import shlex
import time
from functools import cached_property

from airflow.providers.ssh.hooks.ssh import SSHHook

from airlift.connections import VPSADMIN_SSH
from airlift.remote import JobDied, JobState, NodeCommandError, Result, job_dir, job_launcher

__all__ = ["JobDied", "JobState", "NodeCommandError", "NodeHook", "Result"]


class NodeHook(SSHHook):
    default_conn_name = VPSADMIN_SSH
    hook_name = "Cluster nodes (SSH)"

    def __init__(self, ssh_conn_id: str = default_conn_name, **kwargs):
        super().__init__(ssh_conn_id=ssh_conn_id, **kwargs)
        self._clients: dict[str, object] = {}

    @cached_property
    def known_hosts(self) -> str | None:
        extra = self.get_connection(self.ssh_conn_id).extra_dejson
        return extra.get("known_hosts")

    @property
    def default_host(self) -> str:
        """The connection's own host: the API/web host for `vpsadmin_ssh`."""
        return self.remote_host

    def connect_to(self, host: str):
        import paramiko

        client = self._clients.get(host)
        if client is not None and client.get_transport() and client.get_transport().is_active():
            return client
        client = paramiko.SSHClient()
        if self.known_hosts:
            client.load_host_keys(self.known_hosts)
        else:
            client.load_system_host_keys()
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.connect(
            hostname=host, port=self.port, username=self.username, password=self.password or None,
            key_filename=self.key_file, pkey=self.pkey, timeout=self.conn_timeout,
            banner_timeout=self.banner_timeout, look_for_keys=False, allow_agent=False,
        )
        client.get_transport().set_keepalive(self.keepalive_interval or 30)
        self._clients[host] = client
        return client

    def run(self, host: str, command: list[str] | str, *, stdin: str | bytes | None = None,
            timeout: float | None = 600, check: bool = True, log_output: bool = False) -> Result:
        """Run `command` on `host`. A list is an argv and is quoted here; a string is a shell
        snippet whose variable parts the caller has already quoted."""
        text = shlex.join(command) if isinstance(command, list) else command
        channel = self.connect_to(host).get_transport().open_session()
        channel.exec_command(text)
        if stdin is not None:
            channel.sendall(stdin.encode() if isinstance(stdin, str) else stdin)
        channel.shutdown_write()
        out, err = bytearray(), bytearray()
        deadline = None if timeout is None else time.monotonic() + timeout
        channel.settimeout(1.0)
        while True:
            try:
                while channel.recv_ready():
                    chunk = channel.recv(65536)
                    out += chunk
                    if log_output:
                        self.log.info("[%s] %s", host, chunk.decode(errors="replace").rstrip())
                while channel.recv_stderr_ready():
                    err += channel.recv_stderr(65536)
            except TimeoutError:
                pass
            if channel.exit_status_ready() and not channel.recv_ready() and not channel.recv_stderr_ready():
                break
            if deadline is not None and time.monotonic() > deadline:
                channel.close()
                raise TimeoutError(f"{host}: `{text}` did not finish in {timeout}s")
            time.sleep(0.02)
        status = channel.recv_exit_status()
        channel.close()
        if status == -1:  # no exit status: the connection went away, the command's fate is unknown
            raise ConnectionError(f"{host}: the connection was lost while `{text[:200]}` ran")
        result = Result(host, text, status, out.decode(errors="replace"), err.decode(errors="replace"))
        if check and not result.ok:
            raise NodeCommandError(result)
        return result

    def run_script(self, host: str, script: str, args: list[str], **kwargs) -> Result:
        """Run a script (its text: an operator's rendered `script` field) on `host` with bash,
        sent on stdin so nothing is left behind; `args` reach it quoted as "$@"."""
        return self.run(host, shlex.join(["bash", "-s", "--", *args]), stdin=script, **kwargs)

    # -- remote jobs (include/scripts/job.sh) --------------------------------------------------
    def _job(self, host: str, action: str, key: str, *args: str, stdin: str | None = None) -> JobState:
        """One job.sh action on `host` (the launcher goes as an argument, the job's script on
        stdin); returns the state line it prints."""
        command = ["bash", "-c", job_launcher(), "job.sh", action, job_dir(key), *args]
        return JobState.parse(host, key, self.run(host, command, stdin=stdin, timeout=120).stdout)

    def start_job(self, host: str, key: str, run: str, script: str, args: list[str]) -> JobState:
        """Start the step `key`'s script detached on `host` for DAG run `run`, unless a copy runs
        already (whichever run started it) or this run's finished (its result stands)."""
        return self._job(host, "start", key, run, *args, stdin=script)

    def job_status(self, host: str, key: str) -> JobState:
        return self._job(host, "status", key)

    def job_output(self, host: str, key: str) -> str:
        return self.run(host, ["bash", "-c", job_launcher(), "job.sh", "output", job_dir(key)], timeout=120).stdout

    def forget_job(self, host: str, key: str) -> JobState:
        """Forget the result of a job that no longer runs (a failed attempt a retry starts anew);
        a running job is left alone."""
        return self._job(host, "forget", key)

    def kill_job(self, host: str, key: str) -> JobState:
        """End a job's whole process group (TERM, then KILL after a grace period)."""
        return self._job(host, "kill", key)

    def run_job(self, host: str, key: str, run: str, script: str, args: list[str], *, timeout: float = 3600,
                poll: float = 1.0) -> Result:
        """Run a step's script as a job and wait for it: attach to a copy that runs already
        (another run's: wait, then start this run's), take the result of this run's finished
        one, start anew after one that died. On timeout the job's process group is ended."""
        deadline = time.monotonic() + timeout
        state = self.start_job(host, key, run, script, args)
        while True:
            if state.state == "running" and state.run != run:
                self.log.warning("%s: job %s of run %s still runs; waiting for it before this run's", host, key,
                                 state.run)
            elif state.state == "died":
                raise JobDied(f"{host}: job {key} of run {run} died (killed, or the node restarted); a retry "
                              "starts it anew")
            elif state.state == "finished" and state.run == run:
                output = self.job_output(host, key)
                return Result(host, f"job {key}: {shlex.join(args)}", state.exit_status, output, "")
            if time.monotonic() > deadline:
                self.kill_job(host, key)
                raise TimeoutError(f"{host}: job {key} did not finish in {timeout:.0f}s; its processes were ended")
            time.sleep(poll)
            state = self.job_status(host, key)
            if state.state != "running" and state.run != run:  # the other run's job ended: ours now
                state = self.start_job(host, key, run, script, args)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
