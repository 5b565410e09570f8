"""Background services this project starts on its own machine (`airflow standalone` for the
demo, the production shape's components): each in a session of its own, so that stopping it
stops everything it started, and nothing is left behind."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path


def _proc_stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()  # fields from `state` on


def alive(pid: int) -> bool:
    stat = _proc_stat(pid)
    return stat is not None and stat[0] != "Z"


def session_members(sid: int) -> list[int]:
    """Every live process of the session `sid` (its leader and all it started)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _proc_stat(int(entry.name))
            if stat and stat[0] != "Z" and int(stat[3]) == sid:
                members.append(int(entry.name))
    return members


def stop_sessions(sids: list[int], grace: float) -> dict[int, list[int]]:
    """SIGTERM every process of the sessions `sids` at once, SIGKILL what is left after `grace`
    seconds; returns, per session, the pids that survived even that (none, normally). Stopped
    together, services that each take their grace (Celery workers letting tasks end) cost one
    grace, not one each."""
    members = {sid: session_members(sid) for sid in sids}
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5)):
        for member in (m for pids in members.values() for m in pids):
            try:
                os.kill(member, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while any(members.values()) and time.monotonic() < deadline:
            time.sleep(0.3)
            members = {sid: session_members(sid) for sid in sids}
        if not any(members.values()):
            break
        if sig == signal.SIGTERM:  # say what a clean stop did not end
            print(f"still running {grace:.0f} s after SIGTERM, killed: "
                  + "; ".join(f"{pid} {_command(pid)}" for pids in members.values() for pid in pids), file=sys.stderr)
    return {sid: pids for sid, pids in members.items() if pids}


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:120].strip()
    except OSError:
        return "?"


def stop_session(sid: int, grace: float) -> list[int]:
    """stop_sessions for one session: the pids that survived SIGKILL."""
    return stop_sessions([sid], grace).get(sid, [])
