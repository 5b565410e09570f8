-- VpsAdminDbHook's reads of the schema itself (information_schema).
-- name: engines
SELECT TABLE_NAME, ENGINE FROM information_schema.tables
WHERE TABLE_SCHEMA = %(database)s AND TABLE_NAME IN %(tables)s

-- name: columns
SELECT COLUMN_NAME, DATA_TYPE, COLUMN_KEY FROM information_schema.columns
WHERE TABLE_SCHEMA = %(database)s AND TABLE_NAME = %(table)s
ORDER BY ORDINAL_POSITION

-- name: tables
SELECT TABLE_NAME FROM information_schema.tables
WHERE TABLE_SCHEMA = %(database)s AND TABLE_NAME IN %(tables)s

-- name: queries
SELECT ID, USER, TIME, LEFT(INFO, 200) AS INFO FROM information_schema.PROCESSLIST
WHERE DB = %(database)s AND COMMAND = 'Query' AND ID <> CONNECTION_ID()
ORDER BY ID

-- name: base_tables
SELECT TABLE_NAME FROM information_schema.tables
WHERE TABLE_SCHEMA = %(database)s AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')
