-- VpsAdminDbHook's marker on the server the connection reaches: a lock named for one check,
-- held by this session until it ends. Preflight asks the DB host's MySQL client which session
-- holds it (include/scripts/mysql/server-identity.sh): only the same server knows.
-- name: take_lock
SELECT GET_LOCK(%(lock)s, 0) AS taken, CONNECTION_ID() AS connection_id, @@hostname AS hostname,
       @@port AS port, @@server_id AS server_id
