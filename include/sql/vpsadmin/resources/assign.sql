-- Step resources.assign: user cluster resources from v1.22 VPS configs, IP addresses and NAS
-- quotas (plugins/vpsadmin/resources.py computes; these read the inputs once and write the
-- result set-based through temporary tables, all in one transaction). Schema at migration
-- 20150630072821 (research/vpsadmin.md §3.1, §3.2).

-- Users and VPSes in `hard_delete` (object_state 3) are out of the API's default scope.
-- name: users
SELECT m_id AS user_id FROM members WHERE object_state <> 3

-- name: environments
SELECT id, label FROM environments

-- name: cluster_resources
SELECT id, name FROM cluster_resources

-- name: vpses
SELECT v.vps_id, v.m_id AS user_id, s.environment_id, v.dataset_in_pool_id
FROM vps v JOIN servers s ON s.server_id = v.vps_server
WHERE v.object_state <> 3

-- name: vps_configs
SELECT vhc.id, vhc.vps_id, vhc.`order`, c.name
FROM vps_has_config vhc JOIN config c ON c.id = vhc.config_id

-- name: ip_counts
SELECT vps_id, ip_v, COUNT(*) AS n FROM vps_ip WHERE vps_id IS NOT NULL GROUP BY vps_id, ip_v

-- Datasets on primary (NAS) pools, with the environment of the pool's node.
-- name: nas_datasets
SELECT dip.id AS dataset_in_pool_id, d.user_id, s.environment_id, d.ancestry
FROM dataset_in_pools dip
JOIN datasets d ON d.id = dip.dataset_id
JOIN pools p ON p.id = dip.pool_id
JOIN servers s ON s.server_id = p.node_id
WHERE p.role = 1 AND d.user_id IS NOT NULL

-- The quota and refquota properties (YAML dumps, MiB) of every dataset in a pool, read in one
-- scan: dataset_properties has no index on dataset_in_pool_id at this schema version, so a
-- join on it is a scan per row.
-- name: properties
SELECT id, dataset_in_pool_id, name, value FROM dataset_properties
WHERE name IN ('quota', 'refquota') AND dataset_in_pool_id IS NOT NULL

-- name: user_resources
SELECT ucr.user_id, ucr.environment_id, cr.name AS resource, ucr.value
FROM user_cluster_resources ucr JOIN cluster_resources cr ON cr.id = ucr.cluster_resource_id
WHERE ucr.user_id IS NOT NULL

-- name: uses
SELECT u.class_name, u.row_id, u.confirmed, ucr.user_id, ucr.environment_id, cr.name AS resource, u.value
FROM cluster_resource_uses u
JOIN user_cluster_resources ucr ON ucr.id = u.user_cluster_resource_id
JOIN cluster_resources cr ON cr.id = ucr.cluster_resource_id
WHERE ucr.user_id IS NOT NULL

-- The plan goes into these temporary tables (this connection only), then into the real ones.
-- name: create_tmp_ucr
CREATE TEMPORARY TABLE airlift_ucr (
  user_id INT NOT NULL, environment_id INT NOT NULL, cluster_resource_id INT NOT NULL, value INT NOT NULL,
  PRIMARY KEY (user_id, environment_id, cluster_resource_id)
)

-- name: create_tmp_uses
CREATE TEMPORARY TABLE airlift_uses (
  user_id INT NOT NULL, environment_id INT NOT NULL, cluster_resource_id INT NOT NULL,
  class_name VARCHAR(255) NOT NULL, table_name VARCHAR(255) NOT NULL, row_id INT NOT NULL, value INT NOT NULL
)

-- name: create_tmp_configs
CREATE TEMPORARY TABLE airlift_configs (id INT NOT NULL PRIMARY KEY)

-- name: create_tmp_refquotas
CREATE TEMPORARY TABLE airlift_refquotas (id INT NOT NULL PRIMARY KEY, value VARCHAR(255) NOT NULL)

-- name: fill_ucr
INSERT INTO airlift_ucr (user_id, environment_id, cluster_resource_id, value) VALUES (%s, %s, %s, %s)

-- name: fill_uses
INSERT INTO airlift_uses (user_id, environment_id, cluster_resource_id, class_name, table_name, row_id, value)
VALUES (%s, %s, %s, %s, %s, %s, %s)

-- name: fill_configs
INSERT INTO airlift_configs (id) VALUES (%s)

-- name: fill_refquotas
INSERT INTO airlift_refquotas (id, value) VALUES (%s, %s)

-- name: insert_user_resources
INSERT INTO user_cluster_resources (user_id, environment_id, cluster_resource_id, value)
SELECT t.user_id, t.environment_id, t.cluster_resource_id, t.value
FROM airlift_ucr t LEFT JOIN user_cluster_resources ucr
  ON ucr.user_id = t.user_id AND ucr.environment_id = t.environment_id
 AND ucr.cluster_resource_id = t.cluster_resource_id
WHERE ucr.id IS NULL

-- Never lowers an allocation (the plan only holds raises for existing rows).
-- name: raise_user_resources
UPDATE user_cluster_resources ucr JOIN airlift_ucr t
  ON ucr.user_id = t.user_id AND ucr.environment_id = t.environment_id
 AND ucr.cluster_resource_id = t.cluster_resource_id
SET ucr.value = t.value
WHERE ucr.value < t.value

-- confirmed 1 = `confirmed` of the Confirmable enum. STRAIGHT_JOIN: the temporary table has no
-- index, so it must drive the join (each row finds its user_cluster_resource by the unique key).
-- name: insert_uses
INSERT INTO cluster_resource_uses (user_cluster_resource_id, class_name, table_name, row_id, value, confirmed)
SELECT STRAIGHT_JOIN ucr.id, t.class_name, t.table_name, t.row_id, t.value, 1
FROM airlift_uses t JOIN user_cluster_resources ucr
  ON ucr.user_id = t.user_id AND ucr.environment_id = t.environment_id
 AND ucr.cluster_resource_id = t.cluster_resource_id

-- name: delete_configs
DELETE vhc FROM vps_has_config vhc JOIN airlift_configs t ON t.id = vhc.id

-- name: set_refquotas
UPDATE dataset_properties q JOIN airlift_refquotas t ON t.id = q.id
SET q.value = t.value, q.updated_at = UTC_TIMESTAMP()
WHERE q.name = 'refquota'

-- name: drop_temporary_tables
DROP TEMPORARY TABLE IF EXISTS airlift_ucr, airlift_uses, airlift_configs, airlift_refquotas
