-- Step nodes.sharenfs: the sharenfs rows of dataset_properties of one pool, its own and its
-- datasets' (full_name NULL: the pool's own row).
-- name: sharenfs_rows
SELECT dp.id, dp.value, dp.inherited, NULL AS full_name
FROM dataset_properties dp
WHERE dp.pool_id = %(pool_id)s AND dp.name = 'sharenfs'
UNION ALL
SELECT dp.id, dp.value, dp.inherited, d.full_name
FROM dataset_properties dp
INNER JOIN dataset_in_pools dip ON dip.id = dp.dataset_in_pool_id
INNER JOIN datasets d ON d.id = dip.dataset_id
WHERE dip.pool_id = %(pool_id)s AND dp.name = 'sharenfs'
ORDER BY id

-- name: record_sharenfs
UPDATE dataset_properties SET value = %(value)s, inherited = %(inherited)s, updated_at = UTC_TIMESTAMP()
WHERE id = %(id)s AND name = 'sharenfs'
