-- VpsAdminDbHook's read of one sysconfig key. Values are JSON text in v1.22 (PHP
-- json_encode) and in v2.0 (serialize :cfg_value, JSON).
-- name: get
SELECT cfg_value FROM sysconfig WHERE cfg_name = %(name)s
