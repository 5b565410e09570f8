-- NAS migration (runbook: "NAS").
-- name: node_mounts
SELECT m.vps_id, m.dst FROM mounts m
INNER JOIN vps v ON v.vps_id = m.vps_id
WHERE v.vps_server = %(server_id)s
ORDER BY m.vps_id, m.id
