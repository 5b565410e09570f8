-- Step db.vps-ip-free-orphans: addresses still assigned to VPSes that do not exist.
-- name: probe
SELECT COUNT(*) AS to_change FROM vps_ip ip LEFT JOIN vps v ON ip.vps_id = v.vps_id
WHERE ip.vps_id > 0 AND v.vps_id IS NULL

-- name: sample
SELECT ip.ip_id, ip.ip_addr, ip.vps_id FROM vps_ip ip LEFT JOIN vps v ON ip.vps_id = v.vps_id
WHERE ip.vps_id > 0 AND v.vps_id IS NULL ORDER BY ip.ip_id LIMIT 20

-- name: apply
UPDATE vps_ip ip LEFT JOIN vps v ON ip.vps_id = v.vps_id
SET ip.vps_id = NULL
WHERE ip.vps_id > 0 AND v.vps_id IS NULL
