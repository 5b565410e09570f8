-- Step nas.umount: the mounts (v2.0 `mounts`) of the VPSes on one hypervisor.
-- name: node_mounts
SELECT m.vps_id, m.dst FROM mounts m
INNER JOIN vps v ON v.vps_id = m.vps_id
WHERE v.vps_server = %(server_id)s
ORDER BY m.vps_id, m.id
