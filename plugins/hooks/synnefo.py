"""SynnefoHook: the Synnefo hosts over SSH (NodeHook), with what the upgrade does on them:
`snf-manage` commands and the settings files in /etc/synnefo.

snf-manage's failures are not all in its exit code (shared research synnefo.md §5 "Generic
error convention", §8): per-item failures print `ERROR: ...` and exit 0, so a line starting
with `ERROR` or `Error:` on either stream fails the call whatever the exit code. Prompts are
answered by the caller's `answers` on stdin, which is closed after them: a prompt nobody
answered reads end-of-file and fails instead of hanging.
"""

from __future__ import annotations

import re
import shlex

from airlift.connections import SYNNEFO_SSH
from airlift.errors import StepError
from airlift.remote import NodeCommandError, Result
from hooks.node import NodeHook

SETTINGS_DIR = "/etc/synnefo"
_ERROR_LINE = re.compile(r"^(ERROR\b|Error:)", re.MULTILINE)
_CONF_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.conf$")


class SnfManageError(StepError):
    """snf-manage printed an error (whatever its exit code)."""

    def __init__(self, result: Result, lines: list[str]):
        super().__init__(f"{result.host}: `{result.command}` printed an error (exit {result.exit_status}):\n"
                         + "\n".join(lines[:20]))
        self.result, self.lines = result, lines


def error_lines(result: Result) -> list[str]:
    """The lines of a command's output that say it failed."""
    return [m.group(0) + line[m.end():] for text in (result.stdout, result.stderr)
            for line in text.splitlines() if (m := _ERROR_LINE.match(line))]


class SynnefoHook(NodeHook):
    default_conn_name = SYNNEFO_SSH
    hook_name = "Synnefo hosts (SSH)"

    def __init__(self, ssh_conn_id: str = default_conn_name, **kwargs):
        super().__init__(ssh_conn_id=ssh_conn_id, **kwargs)

    def snf_manage(self, host: str, args: list[str], *, answers: list[str] = (), timeout: float = 3600,
                   allowed: int = 0, log_output: bool = True) -> Result:
        """`snf-manage ARGS` on `host`; `answers` are its prompts' answers, a line each.
        Fails (SnfManageError) on an error line, or an exit status other than 0 (or `allowed`,
        for commands whose non-zero exit is an answer, e.g. --list-duplicate's 1)."""
        stdin = "".join(f"{a}\n" for a in answers)
        result = self.run(host, ["snf-manage", *args], stdin=stdin, timeout=timeout, check=False,
                          log_output=log_output)
        if result.exit_status == 0:
            lines = error_lines(result)
            if lines:
                raise SnfManageError(result, lines)
        elif result.exit_status != allowed:
            raise NodeCommandError(result)
        return result

    def settings_files(self, host: str) -> dict[str, str]:
        """{path: text} of every /etc/synnefo/*.conf on `host` (read whole, in one call; the
        texts may hold passwords: never log them)."""
        script = (f"cd {SETTINGS_DIR} && for f in *.conf; do [ -f \"$f\" ] || continue; "
                  "printf '%s\\0' \"$f\"; cat -- \"$f\"; printf '\\0'; done")
        out = self.run(host, script, timeout=120).stdout
        parts = out.split("\0")
        files = {}
        for name, text in zip(parts[0::2], parts[1::2], strict=False):
            if not _CONF_NAME.fullmatch(name):
                raise StepError(f"{host}: unexpected settings file name {name!r} in {SETTINGS_DIR}")
            files[f"{SETTINGS_DIR}/{name}"] = text
        return files

    def write_settings_file(self, host: str, path: str, text: str) -> None:
        """Replace a settings file atomically (a new file beside it, renamed over it), keeping
        its owner and group, others' access taken away (the upgrade writes tokens into them); a
        new file is root's, mode 0640. The text goes on stdin, never on a command line."""
        if not path.startswith(SETTINGS_DIR + "/") or not _CONF_NAME.fullmatch(path[len(SETTINGS_DIR) + 1:]):
            raise StepError(f"refusing to write {path!r}: not a {SETTINGS_DIR}/*.conf file")
        quoted = shlex.quote(path)
        script = (f"set -e; f={quoted}; tmp=$(mktemp \"$f.airlift.XXXXXX\"); trap 'rm -f \"$tmp\"' EXIT; "
                  "cat > \"$tmp\"; if [ -e \"$f\" ]; then chmod --reference=\"$f\" \"$tmp\"; "
                  "chown --reference=\"$f\" \"$tmp\"; chmod o-rwx \"$tmp\"; else chmod 0640 \"$tmp\"; fi; mv -f \"$tmp\" \"$f\"; "
                  "trap - EXIT")
        self.run(host, script, stdin=text, timeout=120)
