-- Step db.innodb: log, node_pubkey and transactions were MyISAM in production.
-- name: engines
SELECT TABLE_NAME, ENGINE FROM information_schema.tables
WHERE TABLE_SCHEMA = %(database)s AND TABLE_NAME IN %(tables)s
