-- Step prereq.maintenance-mode: sysconfig maintenance_mode = JSON true, as the 1.22 web
-- interface's maintenance toggle writes it.
-- name: probe
SELECT COUNT(*) AS to_change FROM (SELECT 1 AS one) AS x
LEFT JOIN sysconfig s ON s.cfg_name = 'maintenance_mode'
WHERE s.cfg_value IS NULL OR s.cfg_value <> 'true'

-- name: apply
INSERT INTO sysconfig (cfg_name, cfg_value) VALUES ('maintenance_mode', 'true')
ON DUPLICATE KEY UPDATE cfg_value = 'true'
