-- VpsAdminDbHook's reads of the cluster's nodes (every row of `servers` is a vpsAdmin node
-- the upgrade touches) and of the schema version.
-- name: servers
SELECT server_id, server_name, server_type, server_ip4, server_location
FROM servers
ORDER BY server_id

-- name: schema_version
SELECT cfg_value AS db_version FROM sysconfig WHERE cfg_name = 'db_version'
