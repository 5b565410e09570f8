"""SQL for the encoding fix that depends on each table's columns (pure: builds statements, runs
nothing); the fixed statements are in include/sql/vpsadmin/db/encoding.sql.

v1.22's PHP sent UTF-8 bytes over a latin1 connection, so the utf8 columns hold each byte as
a character ("JiÅ™Ã­" for "Jiří"). A cell is *double-encoded* when converting it to latin1
is lossless, the resulting bytes are valid UTF-8, and they differ from the cell: that is
exactly what the runbook's latin1 dump + utf8 reload repairs. Correct UTF-8 text with a
character outside latin1 ("ř") fails the first test, correct latin1-range text ("é" alone)
fails the second, so a fixed table probes as clean and a second run changes nothing.

Text that repairs to a 4-byte character (emoji) is refused, not converted to utf8mb4: vpsAdmin
2.0 talks to MySQL as `encoding: utf8`, which cannot carry such a character either way, and
utf8mb4 would push the tables' VARCHAR(255) indexes past InnoDB's 767-byte key limit on the
MySQL 5.5/5.6 servers vpsAdmin ran on. The operator fixes those few rows by hand first.
"""

from __future__ import annotations

TABLES = ("members", "members_changes", "sysconfig", "vps")
TEXT_TYPES = ("char", "varchar", "tinytext", "text", "mediumtext", "longtext")


def q(identifier: str) -> str:
    """Quote a MySQL identifier (names come from information_schema or fixed lists)."""
    return "`" + identifier.replace("`", "``") + "`"


def _bytes(col: str) -> str:
    return f"CAST(CONVERT({col} USING latin1) AS BINARY)"


def repaired(col: str) -> str:
    return f"CONVERT({_bytes(col)} USING utf8mb4)"


def double_encoded(col: str) -> str:
    return (f"({col} IS NOT NULL"
            f" AND CAST(CONVERT(CONVERT({col} USING latin1) USING utf8mb4) AS BINARY) = CAST(CONVERT({col} USING utf8mb4) AS BINARY)"
            f" AND CAST({repaired(col)} AS BINARY) = {_bytes(col)}"
            f" AND {_bytes(col)} <> CAST(CONVERT({col} USING utf8mb4) AS BINARY))")


def non_ascii(col: str) -> str:
    return f"({col} IS NOT NULL AND LENGTH({col}) <> CHAR_LENGTH({col}))"


def probe(db: str, table: str, columns: list[str]) -> str:
    """Rows with at least one double-encoded cell, and rows with non-ASCII text that is not
    double-encoded (which a latin1 dump would mangle)."""
    cols = [q(c) for c in columns]
    dbl = " OR ".join(double_encoded(c) for c in cols)
    other = " OR ".join(f"({non_ascii(c)} AND NOT {double_encoded(c)})" for c in cols)
    return (f"SELECT COALESCE(SUM({dbl}), 0) AS double_encoded, COALESCE(SUM({other}), 0) AS unsafe, "
            f"COUNT(*) AS total_rows FROM {q(db)}.{q(table)}")


def four_byte(db: str, table: str, key: list[str], columns: list[str], limit: int = 100) -> str:
    """Rows (their key, then a flag c<i> per text column) where a double-encoded cell repairs
    to a 4-byte UTF-8 character (an emoji, say): the utf8 tables cannot hold it, the reload
    would cut the text there. A 4-byte sequence starts with a byte F0-F4 (read in hex,
    at an even offset)."""
    flags = [f"({double_encoded(q(c))} AND HEX({_bytes(q(c))}) REGEXP '^([0-9A-F]{{2}})*F[0-4]') AS c{i}"
             for i, c in enumerate(columns)]
    return (f"SELECT * FROM (SELECT {', '.join(q(k) for k in key)}, {', '.join(flags)} "
            f"FROM {q(db)}.{q(table)}) AS cells WHERE {' OR '.join(f'c{i}' for i in range(len(columns)))} "
            f"LIMIT {int(limit)}")


def verify(db: str, scratch: str, table: str, key: list[str], columns: list[str]) -> str:
    """Rows of the reloaded copy whose text is not the repaired original (must be 0), and
    rows missing on either side."""
    join = " AND ".join(f"n.{q(k)} = o.{q(k)}" for k in key)
    wrong = " OR ".join(
        f"NOT (CAST(n.{q(c)} AS BINARY) <=> CAST(IF({double_encoded('o.' + q(c))}, {repaired('o.' + q(c))}, "
        f"CONVERT(o.{q(c)} USING utf8mb4)) AS BINARY))" for c in columns)
    return (f"SELECT COUNT(*) AS total_rows, COALESCE(SUM(n.{q(key[0])} IS NULL), 0) AS missing, "
            f"COALESCE(SUM({wrong}), 0) AS wrong FROM {q(db)}.{q(table)} o "
            f"LEFT JOIN {q(scratch)}.{q(table)} n ON {join}")


def swap(db: str, scratch: str, old: str) -> str:
    """One atomic RENAME: every original table into `old`, its repaired copy from `scratch` in."""
    return "RENAME TABLE " + ", ".join(
        f"{q(db)}.{q(t)} TO {q(old)}.{q(t)}, {q(scratch)}.{q(t)} TO {q(db)}.{q(t)}" for t in TABLES)
