-- sysconfig values are JSON text (PHP json_encode in 1.22, `serialize :cfg_value, JSON` in 2.0).
-- name: get
SELECT cfg_value FROM sysconfig WHERE cfg_name = %(name)s
