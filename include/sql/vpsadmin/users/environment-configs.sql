-- Step users.environment-configs: an environment_user_configs row for every user (not in
-- hard_delete, as the API's default scope) in every environment, copied from the environment;
-- in the playground environments (ids comma-joined in %(playground_ids)s, from the param's
-- labels) a user with m_playground_enable set (tinyint(1), a Rails boolean: any non-zero)
-- gets can_create_vps 0 and `default` 0. Only the missing (environment, user) pairs, the
-- table's unique key, are inserted.

-- name: environments
SELECT id, label FROM environments ORDER BY id

-- name: probe
SELECT COUNT(*) AS to_change
FROM members m CROSS JOIN environments e
LEFT JOIN environment_user_configs c ON c.environment_id = e.id AND c.user_id = m.m_id
WHERE m.object_state <> 3 AND c.id IS NULL

-- name: sample
SELECT e.label AS environment, COUNT(*) AS missing,
       SUM(FIND_IN_SET(e.id, %(playground_ids)s) > 0 AND m.m_playground_enable <> 0) AS playground_restricted
FROM members m CROSS JOIN environments e
LEFT JOIN environment_user_configs c ON c.environment_id = e.id AND c.user_id = m.m_id
WHERE m.object_state <> 3 AND c.id IS NULL
GROUP BY e.id, e.label ORDER BY e.id

-- name: apply
INSERT INTO environment_user_configs
  (environment_id, user_id, can_create_vps, can_destroy_vps, vps_lifetime, max_vps_count, `default`)
SELECT e.id, m.m_id,
       IF(FIND_IN_SET(e.id, %(playground_ids)s) > 0 AND m.m_playground_enable <> 0, 0, e.can_create_vps),
       e.can_destroy_vps, e.vps_lifetime, e.max_vps_count,
       IF(FIND_IN_SET(e.id, %(playground_ids)s) > 0 AND m.m_playground_enable <> 0, 0, 1)
FROM members m CROSS JOIN environments e
LEFT JOIN environment_user_configs c ON c.environment_id = e.id AND c.user_id = m.m_id
WHERE m.object_state <> 3 AND c.id IS NULL
ORDER BY m.m_id, e.id
