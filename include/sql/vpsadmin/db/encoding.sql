-- Step db.encoding: the scratch database the latin1 dump is reloaded into as utf8, its
-- verification, and the atomic swap (identifiers {name} are filled in, quoted, by the
-- operator; the per-table probe and verify statements are built from each table's columns
-- by plugins/vpsadmin/encoding.py).
-- name: drop_database
DROP DATABASE IF EXISTS {database}

-- name: create_scratch
CREATE DATABASE IF NOT EXISTS {database} CHARACTER SET utf8

-- name: create_old
CREATE DATABASE IF NOT EXISTS {database}

-- name: count_rows
SELECT COUNT(*) AS n FROM {database}.{table}

-- name: member_name
SELECT m_name FROM {database}.members WHERE m_id = %(m_id)s

-- name: drop_table
DROP TABLE {database}.{table}
