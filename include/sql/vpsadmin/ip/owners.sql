-- Step ip.owners: IP addresses in use in environments that enforce IP ownership belong to the VPS's owner
-- (the runbook's statement, limited to rows that differ so a re-run changes nothing).
-- name: probe
SELECT COUNT(*) AS to_change
FROM vps_ip ip
INNER JOIN vps v ON ip.vps_id = v.vps_id
INNER JOIN servers s ON s.server_id = v.vps_server
INNER JOIN environments e ON e.id = s.environment_id
WHERE e.user_ip_ownership = 1 AND NOT (ip.user_id <=> v.m_id)

-- name: sample
SELECT ip.ip_id, ip.ip_addr, v.vps_id, v.m_id
FROM vps_ip ip
INNER JOIN vps v ON ip.vps_id = v.vps_id
INNER JOIN servers s ON s.server_id = v.vps_server
INNER JOIN environments e ON e.id = s.environment_id
WHERE e.user_ip_ownership = 1 AND NOT (ip.user_id <=> v.m_id)
ORDER BY ip.ip_id LIMIT 10

-- name: apply
UPDATE vps_ip ip
INNER JOIN vps v ON ip.vps_id = v.vps_id
INNER JOIN servers s ON s.server_id = v.vps_server
INNER JOIN environments e ON e.id = s.environment_id
SET ip.user_id = v.m_id
WHERE e.user_ip_ownership = 1 AND NOT (ip.user_id <=> v.m_id)
