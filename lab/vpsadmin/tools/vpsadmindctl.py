#!/usr/bin/python3
"""vpsadmindctl 2.0 (upstream cd5bbe2b0b2b, lib/vpsadmindctl/*) for a lab node: talks to the
node's vpsAdmind over its Unix socket (/var/run/vpsadmind.sock) as the real client does:
read the daemon's greeting {"version"}, send one JSON line {"command", "params"}, read one
JSON reply. Standard library only; runs inside the node sandbox.

Commands here: status, ping, reinit|init|flush all|fw|shaper, stop [-f], restart [-f].
Output, error text and exit codes follow the Ruby client: a daemon that is not running gives
"Error occured: ..." / "Are you sure that vpsAdmind is running and configured properly?" on
stderr, then "Command error: Cannot connect to vpsAdmind" and exit status 1.
"""

import json
import os
import socket
import sys
import time

if __package__:  # imported on the host (lab.vpsadmin.tools.vpsadmindctl)
    from lab.core.tools import toolbox
else:  # run as a program: toolbox.py is next to it
    import toolbox

VERSION = "2.0.0"
SOCKET = "/var/run/vpsadmind.sock"

COMMANDS = {
    "flush": ("all|fw|shaper", "Flush resource"),
    "init": ("all|fw|shaper", "Initialize resource"),
    "ping": ("", "Check if vpsAdmind is alive"),
    "reinit": ("all|fw|shaper", "Reinitialize resource"),
    "restart": ("", "Safely restart vpsAdmind"),
    "status": ("", "Show vpsAdmind's status"),
    "stop": ("", "Safely stop vpsAdmind"),
}


def usage() -> str:
    text = "Usage: vpsadmindctl <command> [global options] [command options]\n\nCommands:\n"
    for name, (args, desc) in sorted(COMMANDS.items()):
        text += f"{name + ' ' + args:<20} {desc}\n"
    text += ("\nFor specific options type: vpsadmindctl <command> --help\n\n\nGlobal options:\n"
             "    -p, --parsable                   Use in scripts, output can be easily parsed\n"
             "    -s, --socket SOCKET              Specify socket\n"
             "    -v, --version                    Print version and exit\n"
             "    -h, --help                       Show this message")
    return text


def format_duration(interval: int) -> str:
    d, h, m, s = interval // 86400, interval // 3600 % 24, interval // 60 % 60, interval % 60
    if d > 0:
        return f"{d} days, {h:02d}:{m:02d}:{s:02d}"
    return f"{h:02d}:{m:02d}:{s:02d}"


def talk(path: str, command: str, params: dict) -> tuple[str, dict]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    f = sock.makefile("rwb")
    greeting = json.loads(f.readline())
    f.write((json.dumps({"command": command, "params": params}) + "\n").encode())
    f.flush()
    reply = json.loads(f.readline())
    sock.close()
    return greeting.get("version", ""), reply


def connect_error(exc: OSError, path: str) -> str:
    """Ruby's Errno message for UNIXSocket.new."""
    return f"{os.strerror(exc.errno) if exc.errno else exc} - connect(2) for {path}"


def print_status(version: str, res: dict) -> None:
    state = res["state"]
    if state["run"]:
        text = f"running, going to pause after {state['pause']}" if state.get("pause") else "running"
    elif state["status"] == 0:
        text = "paused"
    else:
        text = "finishing, going to " + {100: "stop", 150: "restart", 200: "update"}.get(state["status"], "")
    now = int(time.time())
    print(f"   Version: {version}")
    print(f"     State: {text}")
    print(f"    Uptime: {format_duration(now - res['start_time'])}")
    print(f"  Consoles: {len(res['consoles']) if res['export_console'] else 'disabled'}")
    print(f"  Subtasks: {sum(len(v) for v in res['subprocesses'].values())}")
    print(f"    Mounts: {sum(len(v) for v in res['delayed_mounts'].values())}")
    print(f"Queue size: {res['queue_size']}")
    print("    Queues:")
    for name, q in res["queues"].items():
        opens = "" if q["started"] else \
            f"opens in {format_duration(res['start_time'] + q['start_delay'] - now)}"
        print(f"    {name:>10}  {len(q['workers'])} / {q['threads']} (+{q['urgent']}) {opens}")


def print_resources(res: dict) -> None:
    for key, value in res.items():
        if key == "fw":
            if not value:
                print("Firewall  ...  ok")
            else:
                print("Firewall")
                for version, count in value.items():
                    print(f"\t{count} rules for IPv{version}")
        elif key == "shaper":
            print("Shaper  ...  ok")


def main(argv: list[str]) -> int:
    if not argv:
        toolbox.err("No command specified")
        print(usage())
        return 1
    path, args, force = SOCKET, [], False
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-s", "--socket"):
            path, i = argv[i + 1], i + 2
            continue
        if a in ("-v", "--version"):
            print(VERSION)
            return 0
        if a in ("-h", "--help"):
            print(usage())
            return 0
        if a in ("-f", "--force") and argv[0] in ("stop", "restart"):
            force = True
        elif a in ("-p", "--parsable"):
            pass
        elif a.startswith("-") and not (argv[0] == "status" and a in ("-w", "-c", "-m", "-t", "-H")):
            toolbox.err(f"invalid option: {a}")
            print(usage())
            return 1
        else:
            args.append(a)
        i += 1
    command = args[0]
    if command not in COMMANDS:
        toolbox.err("Invalid command")
        print(usage())
        return 1
    params = {}
    if COMMANDS[command][0] == "all|fw|shaper":
        if len(args) < 2 or args[1] not in ("all", "fw", "shaper"):
            toolbox.err("Command failed")
            toolbox.err(f"{command}: {'missing resource' if len(args) < 2 else 'not a valid resource'}")
            return 0  # the Ruby client returns nil here, so it exits 0
        params = {"resources": ["fw", "shaper"] if args[1] == "all" else [args[1]]}
    elif command in ("stop", "restart"):
        params = {"force": force}
    try:
        version, reply = talk(path, command, params)
    except OSError as e:
        toolbox.err(f"Error occured: {connect_error(e, path)}")
        toolbox.err("Are you sure that vpsAdmind is running and configured properly?")
        toolbox.err("Command error: Cannot connect to vpsAdmind")
        return 1
    if reply.get("status") != "ok":
        error = reply.get("error")
        print(f"Command error: {error.get('error') if isinstance(error, dict) else error}",
              file=sys.stderr)
        return 1
    res = reply.get("response")
    if command == "status":
        print_status(version, res)
    elif command == "ping":
        if (res or {}).get("pong") != "pong":
            toolbox.err("Command error: vpsAdmind did not respond correctly")
            return 1
        print("pong")
    elif command in ("reinit", "init", "flush"):
        print({"reinit": "Reinitialized", "init": "Initialized", "flush": "Flushed"}[command])
        print_resources(res or {})
    elif command == "stop":
        print("Stop scheduled")
    elif command == "restart":
        print("Restart scheduled")
    return 0


if __name__ == "__main__":
    toolbox.main({"vpsadmindctl": main})
