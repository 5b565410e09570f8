"""python -m bench [NAME [ARGS...]]: run every bench, or the one named (with its arguments).

Each bench is a module bench/<name>.py with `main(argv) -> int`; it prints its figures,
the baseline measured in the same run, and the ratio.
"""

from __future__ import annotations

import importlib
import sys

BENCHES = ("vpsadmin_database", "vpsadmin_resources", "vpsadmin_lifetimes", "openvz_downtime", "openvz_pool",
           "synnefo_reconcile")


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__.strip() + "\n\nbenches: " + ", ".join(BENCHES))
        return 0
    if argv and argv[0] not in BENCHES:
        print(f"no bench named {argv[0]!r}; known: {', '.join(BENCHES)}", file=sys.stderr)
        return 2
    runs = [(argv[0], argv[1:])] if argv else [(name, []) for name in BENCHES]
    status = 0
    for name, args in runs:
        print(f"== bench {name}", flush=True)
        status |= importlib.import_module(f"bench.{name}").main(args)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
