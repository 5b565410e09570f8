#!/usr/bin/python3
"""`nc` (the nc package of CentOS 6) for a lab node: `nc [-z] HOST PORT` connects over TCP
and, without -z, copies stdin to the connection and the connection to stdout. Standard
library only: it runs inside the node sandbox on the host's /usr/bin/python3.

Not on a fresh node's PATH: `yum install nc` links /usr/local/bin/nc here (lab/core/tools/yum.py).
"""

import socket
import sys

if __package__:  # imported on the host (lab.core.tools.nc)
    from lab.core.tools import toolbox
else:  # run as a program: toolbox.py is next to it
    import toolbox


def nc(args):
    zero_io = "-z" in args
    words = [a for a in args if not a.startswith("-")]
    if len(words) != 2:
        toolbox.err("usage: nc [-z] hostname port")
        return 1
    host, port = words
    try:
        conn = socket.create_connection((host, int(port)), timeout=5)
    except OSError as e:
        toolbox.err(f"nc: connect to {host} port {port} (tcp) failed: {e.strerror}")
        return 1
    if not zero_io:
        conn.sendall(sys.stdin.buffer.read())
        conn.shutdown(socket.SHUT_WR)
        while data := conn.recv(65536):
            sys.stdout.buffer.write(data)
    conn.close()
    return 0


if __name__ == "__main__":
    toolbox.main({"nc": nc})
