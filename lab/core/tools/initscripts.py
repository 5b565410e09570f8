#!/usr/bin/python3
"""`service` of CentOS 6 initscripts for a lab node. Standard library only: it runs inside the
node sandbox on the host's /usr/bin/python3.

A service exists when /etc/init.d/<name> does; its state ("running"/"stopped") is kept in
/var/lib/lab/services/<name>, where the lab's daemons look (vpsAdmind runs while its
service does). Output and exit codes follow initscripts: `status` exits 3 when stopped,
`stop` of a stopped service prints [FAILED] and exits 1.
"""

import os

if __package__:  # imported on the host (lab.core.tools.initscripts)
    from lab.core.tools import toolbox
else:  # run as a program: toolbox.py is next to it
    import toolbox


def service(args):
    if len(args) < 2:
        toolbox.err("Usage: service < option > | --status-all | [ service_name [ command | --full-restart ] ]")
        return 1
    name, action = args[0], args[1]
    if not os.path.exists(f"/etc/init.d/{name}"):
        toolbox.err(f"{name}: unrecognized service")
        return 1
    state = toolbox.service_state(name)
    pid = (toolbox.read(f"{toolbox.STATE}/services/{name}.pid", "").strip()
           or str(1000 + sum(map(ord, name))))
    label = f"{action.capitalize()}ing {name}:".replace("Stoping", "Stopping")
    if action == "status":
        if state == "running":
            toolbox.out(f"{name} (pid  {pid}) is running...")
            return 0
        toolbox.out(f"{name} is stopped")
        return 3
    if action == "start":
        if state != "running":
            toolbox.set_service_state(name, "running")
        toolbox.out(f"{label:<60}[  OK  ]")
        return 0
    if action == "stop":
        if state != "running":
            toolbox.out(f"{label:<60}[FAILED]")
            return 1
        toolbox.set_service_state(name, "stopped")
        toolbox.out(f"{label:<60}[  OK  ]")
        return 0
    if action == "restart":
        toolbox.set_service_state(name, "running")
        toolbox.out(f"{'Stopping ' + name + ':':<60}[  OK  ]")
        toolbox.out(f"{'Starting ' + name + ':':<60}[  OK  ]")
        return 0
    toolbox.err(f"Usage: /etc/init.d/{name} {{start|stop|restart|status}}")
    return 2


if __name__ == "__main__":
    toolbox.main({"service": service})
