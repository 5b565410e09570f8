-- Storage pools with the node that holds them (v2.0: pools.role 0 hypervisor, 1 primary, 2 backup).
-- name: pools
SELECT p.id AS pool_id, p.filesystem, p.role, p.label, s.server_id, s.server_name,
       s.server_ip4 AS address
FROM pools p INNER JOIN servers s ON s.server_id = p.node_id
ORDER BY p.id

-- name: private_datasets
SELECT d.id, d.name, d.full_name, p.id AS pool_id, p.filesystem
FROM datasets d
INNER JOIN dataset_in_pools dip ON dip.dataset_id = d.id
INNER JOIN pools p ON p.id = dip.pool_id
WHERE d.name = 'private' AND p.id = %(pool_id)s

-- name: rename_dataset
UPDATE datasets SET name = %(name)s, full_name = %(full_name)s WHERE id = %(id)s
