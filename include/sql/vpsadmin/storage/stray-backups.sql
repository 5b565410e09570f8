-- Task storage.stray_backups (step db.remove-stray-vps): what the database knows of one backup
-- pool's top-level datasets, and which VPS ids still exist.
-- name: pool_datasets
SELECT d.full_name
FROM dataset_in_pools dip
INNER JOIN datasets d ON d.id = dip.dataset_id
WHERE dip.pool_id = %(pool_id)s

-- name: vps_ids
SELECT vps_id FROM vps
