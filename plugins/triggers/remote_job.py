"""RemoteJobTrigger: waits for a step's remote job (NodeHook jobs, include/scripts/job.sh) on a
node without holding a worker slot, logging the job's new output lines as they come."""

from __future__ import annotations

from triggers.polling import PollTrigger


class RemoteJobTrigger(PollTrigger):
    """Fires when this run's job finished or died, or when another run's job (which this one
    waits behind) no longer runs."""

    def __init__(self, *, ssh_conn_id: str, host: str, key: str, run: str, poll_interval: float = 5,
                 plan: dict | None = None):
        super().__init__(poll_interval=poll_interval, plan=plan, ssh_conn_id=ssh_conn_id, host=host, key=key,
                         run=run)
        self._hook, self._seen = None, 0

    def poll(self) -> dict | None:
        from hooks.node import NodeHook

        if self._hook is None:
            self._hook = NodeHook(self.kwargs["ssh_conn_id"])
        host, key, run = self.kwargs["host"], self.kwargs["key"], self.kwargs["run"]
        try:
            state = self._hook.job_status(host, key)
            if state.run == run:
                output = self._hook.job_output(host, key)
                for line in output[self._seen:].splitlines():
                    self.log.info("[%s] %s", host, line)
                self._seen = len(output)
        except (OSError, EOFError) as exc:  # the node or the connection: try again next time
            self.log.warning("%s: job %s: %s; polling again", host, key, exc)
            self._hook.close()
            return None
        if state.state == "running":
            return None
        return {"job": key, "host": host, "status": state.state, "run": state.run, "exit_status": state.exit_status}
