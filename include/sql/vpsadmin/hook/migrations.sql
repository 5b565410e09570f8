-- VpsAdminDbHook's read of the applied migrations (v2.0 schema_migrations).
-- name: versions
SELECT version FROM schema_migrations ORDER BY version
