"""End-to-end runs of vpsadmin_upgrade_v2 on lab worlds; what its test modules share."""

from __future__ import annotations

DAG_ID = "vpsadmin_upgrade_v2"
GATE = "db.approve_encoding_swap"


def real_run_conf(**extra) -> dict:
    """A real run's conf: the encoding fix must read the seeded members' names back."""
    from lab.vpsadmin.v1_22.seed import KNOWN_TEXT

    member_names = {str(key): text for table, column, _, key, text in KNOWN_TEXT
                    if table == "members" and column == "m_name"}
    return {"dry_run": False, "encoding_known_names": member_names, **extra}
