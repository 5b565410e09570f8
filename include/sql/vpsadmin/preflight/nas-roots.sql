-- Task preflight.upgrade_phase: the NAS storage roots of the v1.22 schema (the datasets whose
-- members' data nas.move-data will move into private/) with the node that holds each.
-- name: nas_roots
SELECT r.id, r.root_dataset, s.server_name, s.server_ip4 AS address
FROM storage_root r INNER JOIN servers s ON s.server_id = r.node_id
WHERE r.storage_layout = 'per_member'
ORDER BY r.id
