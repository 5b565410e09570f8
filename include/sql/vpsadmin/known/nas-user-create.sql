-- Step known.nas-user-create: a known issue of the runbook: users cannot create NAS subdatasets. Its fix matches every
-- dataset whose full name is its owner's id; here only top-level datasets on primary (NAS)
-- pools, so a VPS dataset whose id happens to equal its owner's id is not touched.
-- name: probe
SELECT COUNT(*) AS to_change FROM datasets d
WHERE d.user_create = 0 AND d.full_name = CAST(d.user_id AS CHAR(10))
  AND d.id IN (SELECT dip.dataset_id FROM dataset_in_pools dip
               INNER JOIN pools p ON p.id = dip.pool_id WHERE p.role = 1)

-- name: apply
UPDATE datasets d SET d.user_create = 1
WHERE d.user_create = 0 AND d.full_name = CAST(d.user_id AS CHAR(10))
  AND d.id IN (SELECT dataset_id FROM (SELECT dip.dataset_id FROM dataset_in_pools dip
               INNER JOIN pools p ON p.id = dip.pool_id WHERE p.role = 1) AS nas)
