-- Step storage.rename-private: datasets named `private` (reserved in 2.0) of one pool.
-- name: private_datasets
SELECT d.id, d.name, d.full_name, p.id AS pool_id, p.filesystem
FROM datasets d
INNER JOIN dataset_in_pools dip ON dip.dataset_id = d.id
INNER JOIN pools p ON p.id = dip.pool_id
WHERE d.name = 'private' AND p.id = %(pool_id)s

-- name: rename_dataset
UPDATE datasets SET name = %(name)s, full_name = %(full_name)s WHERE id = %(id)s
