-- Step db.remove-stray-vps: lazily deleted VPSes whose node no longer exists.
-- name: probe
SELECT COUNT(*) AS to_change FROM vps LEFT JOIN servers ON vps_server = server_id
WHERE server_id IS NULL

-- name: sample
SELECT vps_id, vps_server, m_id FROM vps LEFT JOIN servers ON vps_server = server_id
WHERE server_id IS NULL ORDER BY vps_id LIMIT 20

-- name: apply
DELETE vps FROM vps LEFT JOIN servers ON vps_server = server_id
WHERE server_id IS NULL
