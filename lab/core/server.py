"""The lab process: SSH for every node and the products' daemons, until SIGTERM.

Started by `Lab.start()` as `python -m lab.core.server LAB_DIR`; its log is `<lab>/lab.log`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
from pathlib import Path

from lab.core import sshd
from lab.core.config import LabConfig
from lab.core.products import products
from lab.core.topology import HOSTS


async def _control(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One command per connection on the lab's control socket (Lab.cut_ssh): `cut NODE` or
    `cut *` aborts the SSH connections to a node or to all; the reply is how many."""
    words = (await reader.readline()).decode().split()
    if len(words) == 2 and words[0] == "cut":
        reply = str(sshd.cut(None if words[1] == "*" else words[1]))
    else:
        reply = f"unknown command {' '.join(words)!r}"
    writer.write(reply.encode() + b"\n")
    await writer.drain()
    writer.close()


async def main(cfg: LabConfig) -> None:
    stopping = threading.Event()
    for product in products():
        product.start_daemons(cfg, stopping)
    acceptors = await sshd.serve(cfg)
    control = await asyncio.start_unix_server(_control, path=cfg.control_socket)
    logging.info("lab up: %d nodes on port %d, database %s", len(HOSTS), cfg.ssh_port,
                 cfg.vpsadmin_db)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)
    await done.wait()
    stopping.set()
    control.close()
    for acceptor in acceptors:
        acceptor.close()
    logging.info("lab down")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    asyncio.run(main(LabConfig.load(Path(sys.argv[1]))))
