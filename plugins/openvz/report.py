"""The converter's report of consumed and ignored config items (research vpsadminos.md §2.4):

    Consumed config items:
      PHYSPAGES = [0, 1048576]
      HOSTNAME = "vps"

    Ignored config items:
      DISKSPACE = "2097152:2306867"
"""

from __future__ import annotations

import re

_HEADERS = {"Consumed config items:": "consumed", "Ignored config items:": "ignored"}
_ITEM = re.compile(r"^  ([A-Z_]+) = (.*)$")


def parse(text: str) -> dict[str, dict[str, str]]:
    """{"consumed": {KEY: value as printed}, "ignored": {...}}; other lines are left out."""
    found: dict[str, dict[str, str]] = {"consumed": {}, "ignored": {}}
    section = None
    for line in text.splitlines():
        if line.strip() in _HEADERS:
            section = _HEADERS[line.strip()]
        elif section and (m := _ITEM.match(line)):
            found[section][m.group(1)] = m.group(2)
        elif not line.strip():
            continue
        else:
            section = None
    return found
