-- Step api.sysconfig: one sysconfig key, JSON-encoded as both 1.22 and 2.0 read it.
-- name: set
INSERT INTO sysconfig (cfg_name, cfg_value) VALUES (%(name)s, %(value)s)
ON DUPLICATE KEY UPDATE cfg_value = VALUES(cfg_value)
