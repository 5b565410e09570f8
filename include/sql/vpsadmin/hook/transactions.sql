-- VpsAdminDbHook's reads of the transaction queue.
-- v1.22 transactions: t_done = 0 means queued or running (research/vpsadmin.md §1.3).
-- name: pending_by_server
SELECT t_server, COUNT(*) AS pending FROM transactions WHERE t_done = 0 GROUP BY t_server

-- name: failed_since
-- Failed from transaction `first_id` on (what a step queued) or finished at `since` or later
-- (unix time: what failed while the run drained the queue, whoever queued it).
SELECT t_id, t_server, t_vps, t_type, t_output FROM transactions
WHERE t_done = 1 AND t_success = 0
  AND ((%(first_id)s IS NOT NULL AND t_id >= %(first_id)s) OR (%(since)s IS NOT NULL AND t_end >= %(since)s))
ORDER BY t_id

-- name: next_id
SELECT COALESCE(MAX(t_id), 0) + 1 AS next_id FROM transactions

-- v2.0 transaction chains (research/vpsadmin.md §3.2: state 2 done, 4 failed, 5 fatal, 6 resolved).
-- name: chain
SELECT id, state, size, progress FROM transaction_chains WHERE id = %(chain_id)s

-- name: chain_failures
SELECT t_id, t_server, t_vps, t_type, t_output FROM transactions
WHERE transaction_chain_id = %(chain_id)s AND t_done = 1 AND t_success = 0 ORDER BY t_id

-- name: open_chains
SELECT id, name, state FROM transaction_chains WHERE state NOT IN (2, 4, 5, 6) ORDER BY id

-- name: chains
SELECT id, name, state, size, progress FROM transaction_chains WHERE id IN %(ids)s ORDER BY id
