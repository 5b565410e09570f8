-- Step db.innodb: log, node_pubkey and transactions were MyISAM in production; only the
-- tables still on another engine are converted ({table}: the table, quoted by the operator).
-- name: convert
ALTER TABLE {table} ENGINE = InnoDB
