#!/usr/bin/python3
"""`crontab` of cronie (CentOS 6) for a lab node. Standard library only: it runs inside the
node sandbox on the host's /usr/bin/python3.

The table is where cronie keeps it, /var/spool/cron/<user>. `crontab -l`, `-r`, and
installing from a file or stdin (`-`), mode 0600, with cronie's checks: every line a job, an
environment setting or a comment ("bad minute" otherwise), a newline at the end.
"""

import os
import re
import sys

if __package__:  # imported on the host (lab.core.tools.cronie)
    from lab.core.tools import toolbox
else:  # run as a program: toolbox.py is next to it
    import toolbox

CRON_LINE = re.compile(r"^\s*(@(reboot|yearly|annually|monthly|weekly|daily|hourly)\s+\S|(\S+\s+){5}\S)")
CRON_ENV = re.compile(r"^\s*[A-Za-z_][A-Za-z0-9_]*\s*=")


def crontab(args):
    user = "root"
    if args[:1] == ["-u"]:
        user, args = args[1], args[2:]
    path = f"/var/spool/cron/{user}"
    if args == ["-l"]:
        text = toolbox.read(path)
        if text is None:
            toolbox.err(f"no crontab for {user}")
            return 1
        sys.stdout.write(text)
        return 0
    if args == ["-r"]:
        if toolbox.read(path) is None:
            toolbox.err(f"no crontab for {user}")
            return 1
        os.unlink(path)
        return 0
    if len(args) == 1:
        text = sys.stdin.read() if args[0] == "-" else toolbox.read(args[0])
        if text is None:
            toolbox.err(f"{args[0]}: No such file or directory")
            return 1
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#") or CRON_ENV.match(line):
                continue
            if not CRON_LINE.match(line):
                toolbox.err(f'"-":{number}: bad minute')
                toolbox.err("errors in crontab file, can't install.")
                return 1
        if text and not text.endswith("\n"):
            toolbox.err('new crontab file is missing newline before EOF, can\'t install.')
            return 1
        toolbox.write(path, text, 0o600)  # cronie's spool files are the owner's alone
        return 0
    toolbox.err("usage:\tcrontab [-u user] file\n\tcrontab [-u user] [ -e | -l | -r ]")
    return 1


if __name__ == "__main__":
    toolbox.main({"crontab": crontab})
