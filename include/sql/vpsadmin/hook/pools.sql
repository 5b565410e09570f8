-- VpsAdminDbHook's read of the storage pools with the node that holds each (v2.0: pools.role
-- 0 hypervisor, 1 primary, 2 backup).
-- name: pools
SELECT p.id AS pool_id, p.filesystem, p.role, p.label, s.server_id, s.server_name,
       s.server_ip4 AS address
FROM pools p INNER JOIN servers s ON s.server_id = p.node_id
ORDER BY p.id
