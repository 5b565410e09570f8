-- Step nas.remount: the runbook's remount script as one transaction chain named
-- `nas_remount`: per VPS (by node, id) a 5301 Vps::Mounts and, if it runs, a 5302 Mount,
-- each VPS locked for the chain, each transaction depending on the previous one.
-- name: remount_chain
SELECT id, state FROM transaction_chains WHERE name = 'nas_remount' ORDER BY id DESC LIMIT 1

-- name: vpses
SELECT v.vps_id, v.vps_server, COALESCE(st.vps_up, 0) AS running
FROM vps v LEFT JOIN vps_status st ON st.vps_id = v.vps_id
WHERE v.object_state < 3
ORDER BY v.vps_server, v.vps_id

-- name: mounts
SELECT m.id, m.vps_id, m.dst, m.mount_opts, m.umount_opts, m.mode, m.mount_type,
       p.filesystem AS pool_fs, d.full_name AS dataset_name, ps.server_id AS pool_server,
       ps.server_ip4 AS src_node_addr, v.vps_server
FROM mounts m
INNER JOIN vps v ON v.vps_id = m.vps_id
INNER JOIN dataset_in_pools dip ON dip.id = m.dataset_in_pool_id
INNER JOIN datasets d ON d.id = dip.dataset_id
INNER JOIN pools p ON p.id = dip.pool_id
INNER JOIN servers ps ON ps.server_id = p.node_id
ORDER BY m.vps_id, m.dst

-- name: locked
SELECT row_id FROM resource_locks WHERE resource = 'Vps'

-- name: insert_chain
INSERT INTO transaction_chains (name, type, state, size, progress, user_id, created_at, updated_at,
                                urgent_rollback, concern_type)
VALUES ('nas_remount', 'TransactionChains::Vps::Mounts', 0, %(size)s, 0, NULL, UTC_TIMESTAMP(),
        UTC_TIMESTAMP(), 0, 0)

-- name: lock_vps
INSERT INTO resource_locks (resource, row_id, transaction_chain_id, created_at, updated_at)
VALUES ('Vps', %(vps_id)s, %(chain_id)s, UTC_TIMESTAMP(), UTC_TIMESTAMP())

-- name: insert_transaction
INSERT INTO transactions (t_m_id, t_server, t_vps, t_type, t_depends_on, t_urgent, t_priority,
                          t_success, t_done, t_param, transaction_chain_id, reversible, queue,
                          created_at)
VALUES (NULL, %(server)s, %(vps_id)s, %(t_type)s, %(depends_on)s, 0, 0, 0, 0, %(param)s,
        %(chain_id)s, 1, 'vps', UTC_TIMESTAMP())

-- name: queue_chain
UPDATE transaction_chains SET state = 1 WHERE id = %(chain_id)s
