-- Step storage.backup-snapshots-db (and backups.to-snapshots): old backups as v2.0 trees,
-- branches and snapshots (what migrate_backups_to_snapshots.rb does, research/vpsadmin.md §4.3): per VPS with vps_backups rows, in the backup pool that
-- holds its dataset (found here, not the script's hard-coded BACKUP_POOL = 14), one
-- dataset_tree (index 0, not head), one branch named after the oldest backup, and per backup
-- a snapshot, its snapshot_in_pool and snapshot_in_pool_in_branch. A VPS whose backup
-- dataset already has a tree is done, so a re-run registers nothing twice. Names are the
-- backup times in the zone vpsAdmind 1.22 named its snapshots in (%(tz)s). Run with the
-- session time zone at UTC (created_at columns are UTC in 2.0).
-- name: utc_session
SET SESSION time_zone = '+00:00'

-- name: vps_backups_exists
SELECT COUNT(*) AS n FROM information_schema.tables
WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'vps_backups'

-- name: collect
CREATE TEMPORARY TABLE airlift_backups AS
SELECT dip.id AS dip_id, dip.dataset_id, d.full_name, p.id AS pool_id, p.filesystem, b.vps_id,
       b.timestamp,
       DATE_FORMAT(CONVERT_TZ(FROM_UNIXTIME(b.timestamp), '+00:00', %(tz)s), '%%Y-%%m-%%dT%%H:%%i:%%s') AS name
FROM vps_backups b
INNER JOIN vps v ON v.vps_id = b.vps_id
INNER JOIN dataset_in_pools vdip ON vdip.id = v.dataset_in_pool_id
INNER JOIN datasets d ON d.id = vdip.dataset_id
INNER JOIN dataset_in_pools dip ON dip.dataset_id = vdip.dataset_id
INNER JOIN pools p ON p.id = dip.pool_id AND p.role = 2
WHERE NOT EXISTS (SELECT 1 FROM dataset_trees t WHERE t.dataset_in_pool_id = dip.id)

-- name: pending
SELECT pool_id, filesystem, full_name, vps_id, COUNT(*) AS snapshots, MIN(name) AS oldest,
       GROUP_CONCAT(name ORDER BY timestamp SEPARATOR ',') AS names
FROM airlift_backups GROUP BY pool_id, filesystem, full_name, vps_id ORDER BY vps_id

-- name: unnamed
SELECT COUNT(*) AS n FROM airlift_backups WHERE name IS NULL

-- name: trees
INSERT INTO dataset_trees (dataset_in_pool_id, `index`, head, confirmed, created_at, updated_at)
SELECT dip_id, 0, 0, 1, FROM_UNIXTIME(MIN(timestamp)), FROM_UNIXTIME(MIN(timestamp))
FROM airlift_backups GROUP BY dip_id

-- name: branches
INSERT INTO branches (dataset_tree_id, name, `index`, head, confirmed, created_at, updated_at)
SELECT t.id, MIN(b.name), 0, 0, 1, FROM_UNIXTIME(MIN(b.timestamp)), FROM_UNIXTIME(MIN(b.timestamp))
FROM airlift_backups b INNER JOIN dataset_trees t ON t.dataset_in_pool_id = b.dip_id
GROUP BY t.id

-- name: snapshots
INSERT INTO snapshots (name, dataset_id, confirmed, created_at, updated_at)
SELECT name, dataset_id, 1, FROM_UNIXTIME(timestamp), FROM_UNIXTIME(timestamp)
FROM airlift_backups ORDER BY dip_id, timestamp

-- name: snapshot_in_pools
INSERT INTO snapshot_in_pools (snapshot_id, dataset_in_pool_id, reference_count, confirmed)
SELECT s.id, b.dip_id, 0, 1
FROM airlift_backups b INNER JOIN snapshots s ON s.dataset_id = b.dataset_id AND s.name = b.name

-- name: snapshot_in_branches
INSERT INTO snapshot_in_pool_in_branches (snapshot_in_pool_id, branch_id, confirmed)
SELECT sip.id, br.id, 1
FROM airlift_backups b
INNER JOIN snapshots s ON s.dataset_id = b.dataset_id AND s.name = b.name
INNER JOIN snapshot_in_pools sip ON sip.snapshot_id = s.id AND sip.dataset_in_pool_id = b.dip_id
INNER JOIN dataset_trees t ON t.dataset_in_pool_id = b.dip_id
INNER JOIN branches br ON br.dataset_tree_id = t.id

-- name: drop
DROP TEMPORARY TABLE IF EXISTS airlift_backups
