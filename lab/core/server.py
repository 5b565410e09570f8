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


async def main(cfg: LabConfig) -> None:
    stopping = threading.Event()
    for product in products():
        product.start_daemons(cfg, stopping)
    acceptors = await sshd.serve(cfg)
    logging.info("lab up: %d nodes on port %d, database %s", len(HOSTS), cfg.ssh_port,
                 cfg.vpsadmin_db)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)
    await done.wait()
    stopping.set()
    for acceptor in acceptors:
        acceptor.close()
    logging.info("lab down")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("asyncssh").setLevel(logging.WARNING)
    asyncio.run(main(LabConfig.load(Path(sys.argv[1]))))
