"""Background services this project starts on its own machine (`airflow standalone` for the
demo, the production shape's components): each in a session of its own, so that stopping it
stops everything it started, and nothing is left behind."""

from __future__ import annotations

import os
import signal
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


def stop_session(sid: int, grace: float) -> list[int]:
    """SIGTERM every process of the session, SIGKILL what is left after `grace` seconds;
    returns the pids that survived even that (none, normally)."""
    members = session_members(sid)
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5)):
        for member in members:
            try:
                os.kill(member, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while members and time.monotonic() < deadline:
            time.sleep(0.3)
            members = session_members(sid)
        if not members:
            break
    return members
