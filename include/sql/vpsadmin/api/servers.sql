-- Step api.servers (runbook: "Table servers"): every node in an environment, named without
-- its location domain, ve_private in 2.0's placeholder syntax.
-- name: servers
SELECT server_id, server_name, server_type, environment_id, ve_private FROM servers ORDER BY server_id

-- name: update_server
UPDATE servers SET environment_id = %(environment_id)s, server_name = %(server_name)s,
                   ve_private = %(ve_private)s
WHERE server_id = %(server_id)s
