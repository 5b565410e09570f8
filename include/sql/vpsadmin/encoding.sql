-- Step db.encoding: the columns whose text the fix repairs and verifies.
-- name: columns
SELECT COLUMN_NAME, DATA_TYPE, COLUMN_KEY FROM information_schema.columns
WHERE TABLE_SCHEMA = %(database)s AND TABLE_NAME = %(table)s
ORDER BY ORDINAL_POSITION

