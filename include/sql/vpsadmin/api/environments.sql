-- Step api.environments (runbook: "Table environments"). The add_storage migration replaced
-- every environment with one 'Production'; the DAG's `environments` param says which ones
-- the cluster wants (matched by label).
-- name: insert_environment
INSERT INTO environments (label, domain, can_create_vps, can_destroy_vps, vps_lifetime,
                          max_vps_count, user_ip_ownership, created_at, updated_at)
VALUES (%(label)s, %(domain)s, %(can_create_vps)s, %(can_destroy_vps)s, %(vps_lifetime)s,
        %(max_vps_count)s, %(user_ip_ownership)s, UTC_TIMESTAMP(), UTC_TIMESTAMP())

-- name: update_environment
UPDATE environments
SET domain = %(domain)s, can_create_vps = %(can_create_vps)s, can_destroy_vps = %(can_destroy_vps)s,
    vps_lifetime = %(vps_lifetime)s, max_vps_count = %(max_vps_count)s,
    user_ip_ownership = %(user_ip_ownership)s, updated_at = UTC_TIMESTAMP()
WHERE id = %(id)s
