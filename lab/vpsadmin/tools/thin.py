#!/usr/bin/python3
"""`thin` (1.6.4) as the vpsAdmin API host runs it: `thin [--address A] [--port P]
[--environment E] [--log F] [--pid F] [-c DIR] [-R config.ru] [-d] start|stop`. Standard
library only: it runs inside the node sandbox on the host's /usr/bin/python3.

Nothing is served from the node: thin keeps the API server's state, the service
`vpsadmin-api` ("running"/"stopped", /var/lib/lab/services/vpsadmin-api, as `service`
keeps it) and /var/lib/lab/vpsadmin-api.json ({"address", "port", "environment", "chdir",
"log", "pid"}); the lab process serves the vpsAdmin API (lab/vpsadmin/api.py) while that
state says running.
"""

import json
import os

if __package__:  # imported on the host (lab.vpsadmin.tools.thin)
    from lab.core.tools import toolbox
else:  # run as a program: toolbox.py is next to it
    import toolbox

API_SERVICE = "vpsadmin-api"
API_STATE = f"{toolbox.STATE}/vpsadmin-api.json"


def thin(args):
    options, actions, i = {"address": "0.0.0.0", "port": "3000", "environment": "development",
                           "log": "log/thin.log", "pid": "tmp/pids/thin.pid", "daemonize": False}, [], 0
    aliases = {"-a": "address", "--address": "address", "-p": "port", "--port": "port",
               "-e": "environment", "--environment": "environment", "-l": "log", "--log": "log",
               "-P": "pid", "--pid": "pid", "-c": "chdir", "--chdir": "chdir", "-R": "rackup", "--rackup": "rackup"}
    while i < len(args):
        arg = args[i]
        if arg in ("-d", "--daemonize"):
            options["daemonize"] = True
        elif arg in aliases and i + 1 < len(args):
            options[aliases[arg]] = args[i + 1]
            i += 1
        elif "=" in arg and arg.split("=", 1)[0] in aliases:
            options[aliases[arg.split("=", 1)[0]]] = arg.split("=", 1)[1]
        elif not arg.startswith("-"):
            actions.append(arg)
        i += 1
    action = actions[0] if actions else ""
    chdir = options.get("chdir") or os.getcwd()
    if action == "start":
        if not os.path.isfile(os.path.join(chdir, options.get("rackup", "config.ru"))):
            toolbox.err(f"!! Could not find config.ru in {chdir}")  # thin's rackup lookup
            return 1
        if toolbox.service_state(API_SERVICE) == "running":
            running = toolbox.read_json(API_STATE, {})
            toolbox.out(f">> Using rack adapter\n!! Port {running.get('port', options['port'])} is in use, "
                        "is another server already running?")
            return 1
        toolbox.out(f">> Using rack adapter\n>> Thin web server (v1.6.4 codename Gob Bluth)\n"
                    f">> Maximum connections set to 1024\n>> Listening on {options['address']}:{options['port']}, "
                    "CTRL+C to stop")
        toolbox.write(API_STATE, json.dumps({"address": options["address"], "port": int(options["port"]),
                                             "environment": options["environment"], "chdir": chdir,
                                             "log": options["log"], "pid": options["pid"]}, indent=1) + "\n")
        toolbox.set_service_state(API_SERVICE, "running")
        return 0
    if action == "stop":
        if toolbox.service_state(API_SERVICE) != "running":
            toolbox.out(f">> Can't stop process, no PID found in {options['pid']}")
            return 1
        running = toolbox.read_json(API_STATE, {})
        toolbox.out(f">> Stopping server on {running.get('address', options['address'])}:"
                    f"{running.get('port', options['port'])} ...")
        toolbox.set_service_state(API_SERVICE, "stopped")
        return 0
    toolbox.err("Usage: thin [options] start|stop|restart|config|install")
    return 1


if __name__ == "__main__":
    toolbox.main({"thin": thin})
