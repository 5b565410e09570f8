"""The encoding probe and verification SQL against a real MariaDB, on text written the way
v1.22's PHP wrote it (UTF-8 bytes over a latin1 connection)."""

from __future__ import annotations

import uuid
from contextlib import closing

import MySQLdb
import pytest

from lab.core import mysql
from vpsadmin import encoding

TEXTS = {1: "Jiří Dvořák", 2: "Šárka Nováková – Brno", 3: "plain ascii", 4: None, 5: "Ondřej Ěšč"}


@pytest.fixture
def server(tmp_path):
    kwargs = mysql.resolve(tmp_path, None)
    name = f"airlift_enc_{uuid.uuid4().hex[:8]}"
    mysql.admin(kwargs, f"CREATE DATABASE `{name}` CHARACTER SET utf8")
    mysql.admin(kwargs, f"CREATE TABLE `{name}`.t (id INT PRIMARY KEY, txt TEXT) DEFAULT CHARSET=utf8")
    yield kwargs, name
    mysql.drop_database(kwargs, name)


def insert(kwargs, db, rows, charset):
    with closing(MySQLdb.connect(db=db, charset=charset, **kwargs)) as conn:
        cur = conn.cursor()
        for key, text in rows.items():
            value = text.encode("utf-8") if (text is not None and charset == "latin1") else text
            cur.execute("INSERT INTO t VALUES (%s, %s)", (key, value))
        conn.commit()


def one(kwargs, statement):
    with closing(MySQLdb.connect(charset="utf8mb4", **kwargs)) as conn:
        cur = conn.cursor()
        cur.execute(statement)
        return cur.fetchone()


def test_probe_counts_double_encoded_rows(server):
    kwargs, db = server
    insert(kwargs, db, TEXTS, "latin1")
    double, unsafe, total = one(kwargs, encoding.probe(db, "t", ["txt"]))
    assert (double, unsafe, total) == (3, 0, 5)


def test_correct_text_is_not_double_encoded(server):
    kwargs, db = server
    insert(kwargs, db, {**TEXTS, 6: "é alone"}, "utf8mb4")
    double, unsafe, total = one(kwargs, encoding.probe(db, "t", ["txt"]))
    assert double == 0 and unsafe == 4 and total == 6


def test_mixed_table_is_reported(server):
    kwargs, db = server
    insert(kwargs, db, {1: "Jiří"}, "latin1")
    insert(kwargs, db, {2: "Jiří"}, "utf8mb4")
    assert one(kwargs, encoding.probe(db, "t", ["txt"]))[:2] == (1, 1)


def test_verify_accepts_the_repair_and_catches_a_wrong_row(server):
    kwargs, db = server
    insert(kwargs, db, TEXTS, "latin1")
    scratch = f"{db}_scratch"
    mysql.admin(kwargs, f"CREATE DATABASE `{scratch}` CHARACTER SET utf8")
    try:
        mysql.admin(kwargs, f"CREATE TABLE `{scratch}`.t LIKE `{db}`.t")
        insert(kwargs, scratch, TEXTS, "utf8mb4")
        assert one(kwargs, encoding.verify(db, scratch, "t", ["id"], ["txt"])) == (5, 0, 0)
        mysql.admin(kwargs, f"UPDATE `{scratch}`.t SET txt = 'Jiri Dvorak' WHERE id = 1")
        mysql.admin(kwargs, f"DELETE FROM `{scratch}`.t WHERE id = 3")
        assert one(kwargs, encoding.verify(db, scratch, "t", ["id"], ["txt"])) == (5, 1, 2)
    finally:
        mysql.drop_database(kwargs, scratch)
