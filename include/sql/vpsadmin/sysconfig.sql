-- sysconfig values are JSON text in v1.22 (PHP json_encode) and in v2.0 (serialize :cfg_value, JSON).
-- name: get
SELECT cfg_value FROM sysconfig WHERE cfg_name = %(name)s

-- name: set
INSERT INTO sysconfig (cfg_name, cfg_value) VALUES (%(name)s, %(value)s)
ON DUPLICATE KEY UPDATE cfg_value = VALUES(cfg_value)
