-- VpsAdminDbHook's read of the environments (v2.0).
-- name: environments
SELECT id, label, domain, can_create_vps, can_destroy_vps, vps_lifetime, max_vps_count,
       user_ip_ownership
FROM environments ORDER BY id
