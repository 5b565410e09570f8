-- Step db.vps-ip-null: the legacy web interface wrote 0 for "no VPS"; 2.0 needs NULL.
-- name: probe
SELECT COUNT(*) AS to_change FROM vps_ip WHERE vps_id = 0

-- name: sample
SELECT ip_id, ip_addr FROM vps_ip WHERE vps_id = 0 ORDER BY ip_id LIMIT 20

-- name: apply
UPDATE vps_ip SET vps_id = NULL WHERE vps_id = 0
