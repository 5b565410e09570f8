-- The lifetime steps' reads (steps lifetimes.*): the objects rake selected or would select,
-- their state logs and the chains that move them. object_state is the index in
-- lib/vpsadmin/api/lifetimes.rb STATES (0 active, 1 suspended, 2 soft_delete, 3 hard_delete,
-- 4 deleted) for every model.

-- name: objects_User
SELECT m_id AS id, m_nick AS label, object_state, expiration_date FROM members WHERE m_id IN %(ids)s

-- name: objects_Vps
SELECT vps_id AS id, vps_hostname AS label, object_state, expiration_date FROM vps WHERE vps_id IN %(ids)s

-- name: objects_Dataset
SELECT id, full_name AS label, object_state, expiration_date FROM datasets WHERE id IN %(ids)s

-- name: objects_SnapshotDownload
SELECT id, file_name AS label, object_state, expiration_date FROM snapshot_downloads WHERE id IN %(ids)s

-- name: state_logs
-- The newest state log of each object (what the Wrapper chain wrote for the change).
SELECT s.row_id, s.state, s.expiration_date, s.created_at, s.reason FROM object_states s
WHERE s.class_name = %(class_name)s AND s.row_id IN %(ids)s
  AND s.id = (SELECT MAX(s2.id) FROM object_states s2 WHERE s2.class_name = s.class_name AND s2.row_id = s.row_id)

-- name: open_chains
-- Chains still running that concern the objects (Lifetimes::Wrapper sets `affect` concerns).
SELECT DISTINCT c.id FROM transaction_chain_concerns cc
INNER JOIN transaction_chains c ON c.id = cc.transaction_chain_id
WHERE cc.class_name = %(class_name)s AND cc.row_id IN %(ids)s AND c.state NOT IN (2, 4, 5, 6)

-- name: failed_chains
-- The newest chain of each object that failed: why it did not move.
SELECT cc.row_id, c.id AS chain_id, c.state,
       (SELECT t.t_output FROM transactions t WHERE t.transaction_chain_id = c.id AND t.t_done = 1
        AND t.t_success = 0 ORDER BY t.t_id LIMIT 1) AS error
FROM transaction_chain_concerns cc INNER JOIN transaction_chains c ON c.id = cc.transaction_chain_id
WHERE cc.class_name = %(class_name)s AND cc.row_id IN %(ids)s AND c.state IN (4, 5)
ORDER BY c.id
