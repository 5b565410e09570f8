-- VpsAdminDbHook's reads of the transaction queue.
-- v1.22 transactions: t_done = 0 means queued or running (research/vpsadmin.md §1.3).
-- name: pending
SELECT COUNT(*) AS pending FROM transactions
WHERE t_done = 0 AND (%(server_id)s IS NULL OR t_server = %(server_id)s)

-- name: pending_by_server
SELECT t_server, COUNT(*) AS pending FROM transactions WHERE t_done = 0 GROUP BY t_server

-- name: failed_since
SELECT t_id, t_server, t_vps, t_type, t_output FROM transactions
WHERE t_id >= %(first_id)s AND t_done = 1 AND t_success = 0
ORDER BY t_id

-- name: next_id
SELECT COALESCE(MAX(t_id), 0) + 1 AS next_id FROM transactions

-- v2.0 transaction chains (research/vpsadmin.md §3.2: state 2 done, 4 failed, 5 fatal, 6 resolved).
-- name: chain
SELECT id, state, size, progress FROM transaction_chains WHERE id = %(chain_id)s

-- name: chain_failures
SELECT t_id, t_server, t_vps, t_type, t_output FROM transactions
WHERE transaction_chain_id = %(chain_id)s AND t_done = 1 AND t_success = 0 ORDER BY t_id
