"""Named SQL statements: parsing, loading from include/sql/, identifiers filled in quoted."""

from __future__ import annotations

import pytest

from airlift import sql

TEXT = """-- header comment
-- name: probe
SELECT COUNT(*) AS to_change FROM t WHERE x = 0;

-- A comment about apply.
-- name: apply
UPDATE t SET x = NULL WHERE x = 0
"""


def test_parse_splits_named_statements():
    assert sql.parse(TEXT) == {"probe": "SELECT COUNT(*) AS to_change FROM t WHERE x = 0",
                               "apply": "UPDATE t SET x = NULL WHERE x = 0"}


def test_parse_refuses_text_without_names():
    with pytest.raises(ValueError, match="step.sql has no `-- name:` sections"):
        sql.parse("SELECT 1", source="step.sql")


def test_probe_apply_files_have_both():
    for name in ("prereq/maintenance-mode.sql", "db/remove-stray-vps.sql", "db/vps-ip-null.sql",
                 "db/vps-ip-free-orphans.sql"):
        assert {"probe", "apply"} <= set(sql.load(f"vpsadmin/{name}")), name


def test_unknown_statement_names_the_file():
    with pytest.raises(KeyError, match="vps-ip-null.sql"):
        sql.statement("vpsadmin/db/vps-ip-null.sql", "nope")


def test_identifiers_are_quoted_and_only_plain_names_pass():
    assert sql.identifiers("DROP TABLE {database}.{table}", database="vpsadmin_airlift_enc_old", table="vps") == \
        "DROP TABLE `vpsadmin_airlift_enc_old`.`vps`"
    for bad in ("x`; DROP DATABASE y; --", "a.b", "", "x" * 65):
        with pytest.raises(ValueError, match="is not a plain identifier"):
            sql.identifiers("DROP TABLE {table}", table=bad)
    with pytest.raises(ValueError, match="unfilled identifier"):
        sql.identifiers("DROP TABLE {database}.{table}", table="vps")
