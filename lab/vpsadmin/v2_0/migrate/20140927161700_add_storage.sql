-- API 5d85ee934 db/migrate/20140927161700_add_storage.rb, restated set-based.
-- Upstream loops over records with ActiveRecord; this does the same work per table, in the
-- same order of rows. Behaviour kept on purpose:
--  * every VPS gets a backup dataset_in_pool from its hypervisor dataset; a VPS whose node
--    is not in `servers` has none, so the insert fails on NOT NULL dataset_id (upstream
--    crashes on nil.dataset_id): stray VPSes must be deleted first;
--  * dataset_properties values are YAML (ActiveRecord `serialize :value`), one row per
--    property of the 2.0 registrator (config/dataset_properties.rb at 5d85ee934, which
--    already has `referenced`); VPS datasets get refquota 61440 (MiB) and stay confirmed 0;
--  * NAS exports (data, not templates) become dataset trees split on '/', in `dataset`
--    order; the first path element is reused when a root of that name exists for the
--    member in the pool, the rest is created below it (exports nested at most 2 deep);
--    quota > 0 becomes the quota property in MiB; roots get label 'nas';
--  * a mount is migrated only if its export is mapped by then: NAS exports always, a
--    VPS's backup export once that VPS (lower or equal vps_id) was processed; the others
--    print "unable to migrate mount N" as upstream warns.
CREATE TABLE `pools` (
  `id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `node_id` int(11) NOT NULL,
  `label` varchar(500) NOT NULL,
  `filesystem` varchar(500) NOT NULL,
  `role` int(11) NOT NULL,
  `refquota_check` tinyint(1) NOT NULL DEFAULT 0
) ENGINE=InnoDB;
CREATE TABLE `datasets` (
  `id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `name` varchar(255) NOT NULL,
  `full_name` varchar(1000) NOT NULL,
  `user_id` int(11) DEFAULT NULL,
  `user_editable` tinyint(1) NOT NULL,
  `user_create` tinyint(1) NOT NULL,
  `user_destroy` tinyint(1) NOT NULL,
  `ancestry` varchar(255) DEFAULT NULL,
  `ancestry_depth` int(11) NOT NULL DEFAULT 0,
  `expiration` datetime DEFAULT NULL,
  `confirmed` tinyint(1) NOT NULL DEFAULT 0
) ENGINE=InnoDB;
CREATE INDEX `index_datasets_on_ancestry` ON `datasets` (`ancestry`);
CREATE TABLE `dataset_in_pools` (
  `id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `dataset_id` int(11) NOT NULL,
  `pool_id` int(11) NOT NULL,
  `label` varchar(100) DEFAULT NULL,
  `used` int(11) NOT NULL DEFAULT 0,
  `avail` int(11) NOT NULL DEFAULT 0,
  `min_snapshots` int(11) NOT NULL DEFAULT 14,
  `max_snapshots` int(11) NOT NULL DEFAULT 20,
  `snapshot_max_age` int(11) NOT NULL DEFAULT 1209600,
  `mountpoint` varchar(500) DEFAULT NULL,
  `confirmed` int(11) NOT NULL DEFAULT 0
) ENGINE=InnoDB;
CREATE UNIQUE INDEX `index_dataset_in_pools_on_dataset_id_and_pool_id` ON `dataset_in_pools` (`dataset_id`, `pool_id`);
CREATE TABLE `snapshots` (
  `id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `name` varchar(255) NOT NULL,
  `dataset_id` int(11) NOT NULL,
  `confirmed` int(11) NOT NULL DEFAULT 0,
  `created_at` datetime DEFAULT NULL,
  `updated_at` datetime DEFAULT NULL
) ENGINE=InnoDB;
CREATE TABLE `dataset_properties` (
  `id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `pool_id` int(11) DEFAULT NULL,
  `dataset_id` int(11) DEFAULT NULL,
  `dataset_in_pool_id` int(11) DEFAULT NULL,
  `ancestry` varchar(255) DEFAULT NULL,
  `ancestry_depth` int(11) NOT NULL DEFAULT 0,
  `name` varchar(30) NOT NULL,
  `value` varchar(255) DEFAULT NULL,
  `inherited` tinyint(1) NOT NULL DEFAULT 1,
  `confirmed` int(11) NOT NULL DEFAULT 0,
  `created_at` datetime DEFAULT NULL,
  `updated_at` datetime DEFAULT NULL
) ENGINE=InnoDB;
CREATE TABLE `snapshot_in_pools` (
  `id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `snapshot_id` int(11) NOT NULL,
  `dataset_in_pool_id` int(11) NOT NULL,
  `reference_count` int(11) NOT NULL DEFAULT 0,
  `mount_id` int(11) DEFAULT NULL,
  `confirmed` int(11) NOT NULL DEFAULT 0
) ENGINE=InnoDB;
CREATE UNIQUE INDEX `index_snapshot_in_pools_on_snapshot_id_and_dataset_in_pool_id` ON `snapshot_in_pools` (`snapshot_id`, `dataset_in_pool_id`);
CREATE TABLE `dataset_trees` (
  `id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `dataset_in_pool_id` int(11) NOT NULL,
  `index` int(11) NOT NULL DEFAULT 0,
  `head` tinyint(1) NOT NULL DEFAULT 0,
  `confirmed` int(11) NOT NULL DEFAULT 0,
  `created_at` datetime DEFAULT NULL,
  `updated_at` datetime DEFAULT NULL
) ENGINE=InnoDB;
CREATE TABLE `branches` (
  `id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `dataset_tree_id` int(11) NOT NULL,
  `name` varchar(255) NOT NULL,
  `index` int(11) NOT NULL DEFAULT 0,
  `head` tinyint(1) NOT NULL DEFAULT 0,
  `confirmed` int(11) NOT NULL DEFAULT 0,
  `created_at` datetime DEFAULT NULL,
  `updated_at` datetime DEFAULT NULL
) ENGINE=InnoDB;
CREATE TABLE `snapshot_in_pool_in_branches` (
  `id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `snapshot_in_pool_id` int(11) NOT NULL,
  `snapshot_in_pool_in_branch_id` int(11) DEFAULT NULL,
  `branch_id` int(11) NOT NULL,
  `confirmed` int(11) NOT NULL DEFAULT 0
) ENGINE=InnoDB;
CREATE UNIQUE INDEX `unique_snapshot_in_pool_in_branches` ON `snapshot_in_pool_in_branches` (`snapshot_in_pool_id`, `branch_id`);
CREATE TABLE `mounts` (
  `id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `vps_id` int(11) NOT NULL,
  `src` varchar(500) DEFAULT NULL,
  `dst` varchar(500) NOT NULL,
  `mount_opts` varchar(255) NOT NULL,
  `umount_opts` varchar(255) NOT NULL,
  `mount_type` varchar(10) NOT NULL,
  `user_editable` tinyint(1) NOT NULL DEFAULT 1,
  `dataset_in_pool_id` int(11) DEFAULT NULL,
  `snapshot_in_pool_id` int(11) DEFAULT NULL,
  `mode` varchar(2) NOT NULL,
  `cmd_premount` varchar(500) DEFAULT NULL,
  `cmd_postmount` varchar(500) DEFAULT NULL,
  `cmd_preumount` varchar(500) DEFAULT NULL,
  `cmd_postumount` varchar(500) DEFAULT NULL,
  `confirmed` int(11) NOT NULL DEFAULT 0
) ENGINE=InnoDB;
CREATE TABLE `mirrors` (
  `id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `src_pool_id` int(11) DEFAULT NULL,
  `dst_pool_id` int(11) DEFAULT NULL,
  `src_dataset_in_pool_id` int(11) DEFAULT NULL,
  `dst_dataset_in_pool_id` int(11) DEFAULT NULL,
  `recursive` tinyint(1) NOT NULL DEFAULT 0,
  `interval` int(11) NOT NULL DEFAULT 60
) ENGINE=InnoDB;
CREATE TABLE `dataset_plans` (
  `id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `name` varchar(255) NOT NULL
) ENGINE=InnoDB;
CREATE TABLE `environment_dataset_plans` (
  `id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `environment_id` int(11) NOT NULL,
  `dataset_plan_id` int(11) NOT NULL,
  `user_add` tinyint(1) NOT NULL,
  `user_remove` tinyint(1) NOT NULL
) ENGINE=InnoDB;
CREATE TABLE `dataset_in_pool_plans` (
  `id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `environment_dataset_plan_id` int(11) NOT NULL,
  `dataset_in_pool_id` int(11) NOT NULL
) ENGINE=InnoDB;
CREATE UNIQUE INDEX `dataset_in_pool_plans_unique` ON `dataset_in_pool_plans` (`environment_dataset_plan_id`, `dataset_in_pool_id`);
CREATE TABLE `repeatable_tasks` (
  `id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `label` varchar(100) DEFAULT NULL,
  `class_name` varchar(255) NOT NULL,
  `table_name` varchar(255) NOT NULL,
  `row_id` int(11) NOT NULL,
  `minute` varchar(255) NOT NULL,
  `hour` varchar(255) NOT NULL,
  `day_of_month` varchar(255) NOT NULL,
  `month` varchar(255) NOT NULL,
  `day_of_week` varchar(255) NOT NULL
) ENGINE=InnoDB;
CREATE TABLE `dataset_actions` (
  `id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `pool_id` int(11) DEFAULT NULL,
  `src_dataset_in_pool_id` int(11) DEFAULT NULL,
  `dst_dataset_in_pool_id` int(11) DEFAULT NULL,
  `snapshot_id` int(11) DEFAULT NULL,
  `recursive` tinyint(1) NOT NULL DEFAULT 0,
  `dataset_plan_id` int(11) DEFAULT NULL,
  `dataset_in_pool_plan_id` int(11) DEFAULT NULL,
  `action` int(11) NOT NULL
) ENGINE=InnoDB;
CREATE TABLE `group_snapshots` (
  `id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `dataset_action_id` int(11) DEFAULT NULL,
  `dataset_in_pool_id` int(11) DEFAULT NULL
) ENGINE=InnoDB;
ALTER TABLE `vps` ADD `dataset_in_pool_id` int(11) DEFAULT NULL;

SET @now = UTC_TIMESTAMP();
-- Environments: all replaced by one 'Production' (its id follows AUTO_INCREMENT).
DELETE FROM `environments`;
INSERT INTO `environments` (`label`, `domain`, `created_at`, `updated_at`) VALUES ('Production', 'vpsfree.cz', @now, @now);
SET @production_env = LAST_INSERT_ID();
INSERT INTO `dataset_plans` (`name`) VALUES ('daily_backup');
SET @backup_plan = LAST_INSERT_ID();
INSERT INTO `environment_dataset_plans` (`dataset_plan_id`, `environment_id`, `user_add`, `user_remove`) VALUES (@backup_plan, @production_env, 1, 1);
SET @env_backup_plan = LAST_INSERT_ID();

-- The 2.0 dataset properties: name, YAML default, inheritable.
CREATE TEMPORARY TABLE `lab_property_defaults` (
  `ord` int NOT NULL PRIMARY KEY, `name` varchar(30) NOT NULL, `value` varchar(255), `inheritable` tinyint(1) NOT NULL);
INSERT INTO `lab_property_defaults` VALUES
  (1, 'atime', '--- false\n...\n', 1),
  (2, 'compression', '--- true\n...\n', 1),
  (3, 'recordsize', '--- 131072\n...\n', 1),
  (4, 'quota', '--- 0\n...\n', 0),
  (5, 'refquota', '--- 0\n...\n', 0),
  (6, 'relatime', '--- false\n...\n', 1),
  (7, 'sync', '--- standard\n...\n', 1),
  (8, 'sharenfs', '--- \'\'\n', 1),
  (9, 'used', '--- 0\n...\n', 1),
  (10, 'referenced', '--- 0\n...\n', 1),
  (11, 'avail', '--- 0\n...\n', 1);

-- Hypervisor pools, their properties and group snapshot actions.
-- Explicit ids: consecutive, as Rails' one-by-one inserts give them (a multi-row INSERT
-- ... SELECT may leave AUTO_INCREMENT gaps, and pool ids get hard-coded in scripts).
INSERT INTO `pools` (`id`, `node_id`, `label`, `filesystem`, `role`, `refquota_check`)
  SELECT (SELECT COALESCE(MAX(id), 0) FROM pools) + ROW_NUMBER() OVER (ORDER BY server_id),
         server_id, CONCAT(server_name, ': vz/private'), 'vz/private', 0, 1
  FROM servers WHERE server_type = 'node' ORDER BY server_id;
INSERT INTO `dataset_properties` (`pool_id`, `name`, `value`, `inherited`, `confirmed`, `created_at`, `updated_at`)
  SELECT p.id, d.name, d.value, 0, 1, @now, @now FROM pools p CROSS JOIN lab_property_defaults d
  ORDER BY p.id, d.ord;
INSERT INTO `dataset_actions` (`pool_id`, `action`, `dataset_plan_id`)
  SELECT id, 4, @backup_plan FROM pools ORDER BY id;

-- A dataset for every VPS on a hypervisor, in its hypervisor's pool.
INSERT INTO `datasets` (`name`, `full_name`, `user_id`, `user_editable`, `user_create`, `user_destroy`)
  SELECT v.vps_id, v.vps_id, v.m_id, 0, 1, 0
  FROM vps v JOIN servers s ON s.server_id = v.vps_server AND s.server_type = 'node'
  ORDER BY s.server_id, v.vps_id;
CREATE TEMPORARY TABLE `lab_vps_dataset` (
  `vps_id` int NOT NULL PRIMARY KEY, `dataset_id` int NOT NULL, `pool_id` int NOT NULL,
  `dip_id` int DEFAULT NULL);
INSERT INTO `lab_vps_dataset` (`vps_id`, `dataset_id`, `pool_id`)
  SELECT v.vps_id, d.id, p.id FROM datasets d
  JOIN vps v ON v.vps_id = CAST(d.name AS UNSIGNED)
  JOIN pools p ON p.node_id = v.vps_server AND p.role = 0;
INSERT INTO `dataset_in_pools` (`dataset_id`, `pool_id`, `label`, `min_snapshots`, `max_snapshots`, `snapshot_max_age`, `confirmed`)
  SELECT dataset_id, pool_id, CONCAT('vps', vps_id), 1, 1, 86400, 1 FROM lab_vps_dataset ORDER BY dataset_id;
UPDATE `lab_vps_dataset` m JOIN `dataset_in_pools` dip ON dip.dataset_id = m.dataset_id AND dip.pool_id = m.pool_id
  SET m.dip_id = dip.id;
INSERT INTO `dataset_properties` (`dataset_id`, `dataset_in_pool_id`, `ancestry`, `ancestry_depth`, `name`, `value`, `inherited`, `confirmed`, `created_at`, `updated_at`)
  SELECT m.dataset_id, m.dip_id, pp.id, 1, d.name,
         IF(d.name = 'refquota', '--- 61440\n...\n', d.value), d.inheritable, 1, @now, @now
  FROM lab_vps_dataset m
  CROSS JOIN lab_property_defaults d
  JOIN dataset_properties pp ON pp.pool_id = m.pool_id AND pp.name = d.name
  ORDER BY m.dip_id, d.ord;
UPDATE `vps` v JOIN `lab_vps_dataset` m ON m.vps_id = v.vps_id SET v.dataset_in_pool_id = m.dip_id;
INSERT INTO `group_snapshots` (`dataset_action_id`, `dataset_in_pool_id`)
  SELECT a.id, m.dip_id FROM lab_vps_dataset m JOIN dataset_actions a ON a.pool_id = m.pool_id AND a.action = 4
  ORDER BY m.dip_id;

-- Pools of the storage roots (NAS and backups): backup if the root's first export is one.
INSERT INTO `pools` (`id`, `node_id`, `label`, `filesystem`, `role`)
  SELECT (SELECT COALESCE(MAX(id), 0) FROM pools) + ROW_NUMBER() OVER (ORDER BY r.id),
         r.node_id, r.label, r.root_dataset,
         IF((SELECT e.data_type FROM storage_export e WHERE e.root_id = r.id ORDER BY e.id LIMIT 1) = 'backup', 2, 1)
  FROM storage_root r ORDER BY r.id;
CREATE TEMPORARY TABLE `lab_root_pool` (`root_id` int NOT NULL PRIMARY KEY, `pool_id` int NOT NULL)
  SELECT r.id AS root_id, p.id AS pool_id
  FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY id) AS rn FROM storage_root) r
  JOIN (SELECT id, ROW_NUMBER() OVER (ORDER BY id) AS rn FROM pools WHERE role <> 0) p ON p.rn = r.rn;
INSERT INTO `dataset_properties` (`pool_id`, `name`, `value`, `inherited`, `confirmed`, `created_at`, `updated_at`)
  SELECT rp.pool_id, d.name, d.value, 0, 1, @now, @now FROM lab_root_pool rp CROSS JOIN lab_property_defaults d
  ORDER BY rp.pool_id, d.ord;
INSERT INTO `repeatable_tasks` (`label`, `class_name`, `table_name`, `row_id`, `minute`, `hour`, `day_of_month`, `month`, `day_of_week`)
  SELECT CONCAT('group_snapshot of pool ', pool_id), 'DatasetAction', 'dataset_actions', id, '00', '01', '*', '*', '*'
  FROM dataset_actions WHERE action = 4 ORDER BY id;

-- NAS: every data export that is not a template, in `dataset` order.
CREATE TEMPORARY TABLE `lab_nas_export` (
  `export_id` int NOT NULL PRIMARY KEY, `ord` int NOT NULL, `member_id` int NOT NULL, `pool_id` int,
  `first_part` varchar(255) NOT NULL, `rest` varchar(500), `quota_mib` bigint, `user_editable` tinyint,
  `creates_root` tinyint NOT NULL)
  SELECT e.id AS export_id,
         ROW_NUMBER() OVER (ORDER BY e.dataset) AS ord,
         e.member_id, rp.pool_id,
         SUBSTRING_INDEX(e.dataset, '/', 1) AS first_part,
         IF(LOCATE('/', e.dataset) > 0, SUBSTRING(e.dataset, LOCATE('/', e.dataset) + 1), NULL) AS rest,
         IF(e.quota > 0, e.quota DIV 1024 DIV 1024, NULL) AS quota_mib,
         IF(e.user_editable <> 0, 1, 0) AS user_editable,
         ROW_NUMBER() OVER (PARTITION BY e.member_id, e.root_id, SUBSTRING_INDEX(e.dataset, '/', 1)
                            ORDER BY e.dataset) = 1 AS creates_root
  FROM storage_export e LEFT JOIN lab_root_pool rp ON rp.root_id = e.root_id
  WHERE e.data_type = 'data' AND e.`default` = 'no';
SET @before = (SELECT COALESCE(MAX(id), 0) FROM datasets);
INSERT INTO `datasets` (`name`, `full_name`, `user_id`, `user_editable`, `user_create`, `user_destroy`, `confirmed`)
  SELECT first_part, first_part, member_id, 0, user_editable, user_editable, 1
  FROM lab_nas_export WHERE creates_root ORDER BY ord;
CREATE TEMPORARY TABLE `lab_nas_root` (
  `dataset_id` int NOT NULL PRIMARY KEY, `export_id` int NOT NULL, `member_id` int NOT NULL, `pool_id` int,
  `first_part` varchar(255) NOT NULL, `quota_mib` bigint, `is_export` tinyint NOT NULL, `dip_id` int)
  SELECT d.id AS dataset_id, c.export_id, c.member_id, c.pool_id, c.first_part, c.quota_mib,
         c.rest IS NULL AS is_export, NULL AS dip_id
  FROM (SELECT export_id, member_id, pool_id, first_part, rest, quota_mib,
               ROW_NUMBER() OVER (ORDER BY ord) AS rn FROM lab_nas_export WHERE creates_root) c
  JOIN (SELECT id, ROW_NUMBER() OVER (ORDER BY id) AS rn FROM datasets WHERE id > @before) d ON d.rn = c.rn;
INSERT INTO `dataset_in_pools` (`dataset_id`, `pool_id`, `label`, `confirmed`)
  SELECT dataset_id, pool_id, 'nas', 1 FROM lab_nas_root ORDER BY dataset_id;
UPDATE `lab_nas_root` r JOIN `dataset_in_pools` dip ON dip.dataset_id = r.dataset_id SET r.dip_id = dip.id;
-- Top-level datasets have no parent properties: defaults, not inherited; quota from the export.
SET @properties_before = (SELECT COALESCE(MAX(id), 0) FROM dataset_properties);
INSERT INTO `dataset_properties` (`dataset_id`, `dataset_in_pool_id`, `name`, `value`, `inherited`, `confirmed`, `created_at`, `updated_at`)
  SELECT r.dataset_id, r.dip_id, d.name,
         IF(d.name = 'quota' AND r.quota_mib IS NOT NULL, CONCAT('--- ', r.quota_mib, '\n...\n'), d.value),
         0, 1, @now, @now
  FROM lab_nas_root r CROSS JOIN lab_property_defaults d ORDER BY r.dip_id, d.ord;
-- The roots' properties by (dataset_in_pool, name), for their children to inherit from.
CREATE TEMPORARY TABLE `lab_nas_root_property` (`dip_id` int NOT NULL, `name` varchar(30) NOT NULL,
  `id` int NOT NULL, `value` varchar(255), PRIMARY KEY (`dip_id`, `name`))
  SELECT dataset_in_pool_id AS dip_id, name, id, value FROM dataset_properties WHERE id > @properties_before;
-- Second level: below the member's root of that name in the pool.
CREATE TEMPORARY TABLE `lab_nas_child` (
  `export_id` int NOT NULL PRIMARY KEY, `ord` int NOT NULL, `rn` int NOT NULL, `parent_dataset_id` int NOT NULL,
  `parent_dip_id` int NOT NULL, `name` varchar(500) NOT NULL, `full_name` varchar(1000) NOT NULL,
  `member_id` int NOT NULL, `pool_id` int, `quota_mib` bigint, `user_editable` tinyint,
  `dataset_id` int, `dip_id` int)
  SELECT e.export_id, e.ord, ROW_NUMBER() OVER (ORDER BY e.ord) AS rn, r.dataset_id AS parent_dataset_id, r.dip_id AS parent_dip_id, e.rest AS name,
         CONCAT(e.first_part, '/', e.rest) AS full_name, e.member_id, e.pool_id, e.quota_mib,
         e.user_editable, NULL AS dataset_id, NULL AS dip_id
  FROM lab_nas_export e
  JOIN lab_nas_root r ON r.member_id = e.member_id AND r.pool_id <=> e.pool_id AND r.first_part = e.first_part
  WHERE e.rest IS NOT NULL;
SET @before = (SELECT COALESCE(MAX(id), 0) FROM datasets);
INSERT INTO `datasets` (`name`, `full_name`, `user_id`, `user_editable`, `user_create`, `user_destroy`, `ancestry`, `ancestry_depth`, `confirmed`)
  SELECT name, full_name, member_id, user_editable, user_editable, user_editable, parent_dataset_id, 1, 1
  FROM lab_nas_child ORDER BY ord;
UPDATE `lab_nas_child` c
  JOIN (SELECT id, ROW_NUMBER() OVER (ORDER BY id) AS rn FROM datasets WHERE id > @before) d ON d.rn = c.rn
  SET c.dataset_id = d.id;
INSERT INTO `dataset_in_pools` (`dataset_id`, `pool_id`, `confirmed`)
  SELECT dataset_id, pool_id, 1 FROM lab_nas_child ORDER BY dataset_id;
UPDATE `lab_nas_child` c JOIN `dataset_in_pools` dip ON dip.dataset_id = c.dataset_id SET c.dip_id = dip.id;
INSERT INTO `dataset_properties` (`dataset_id`, `dataset_in_pool_id`, `ancestry`, `ancestry_depth`, `name`, `value`, `inherited`, `confirmed`, `created_at`, `updated_at`)
  SELECT c.dataset_id, c.dip_id, pp.id, 1, d.name,
         CASE WHEN d.name = 'quota' AND c.quota_mib IS NOT NULL THEN CONCAT('--- ', c.quota_mib, '\n...\n')
              WHEN d.inheritable THEN pp.value ELSE d.value END,
         IF(d.name = 'quota' AND c.quota_mib IS NOT NULL, 0, d.inheritable), 1, @now, @now
  FROM lab_nas_child c CROSS JOIN lab_property_defaults d
  JOIN lab_nas_root_property pp ON pp.dip_id = c.parent_dip_id AND pp.name = d.name
  ORDER BY c.dip_id, d.ord;
-- export -> dataset_in_pool, and from which VPS on a backup export counts (NULL: always).
CREATE TEMPORARY TABLE `lab_export_dip` (`export_id` int NOT NULL PRIMARY KEY, `dip_id` int NOT NULL, `from_vps_id` int);
INSERT INTO `lab_export_dip` SELECT export_id, dip_id, NULL FROM lab_nas_root WHERE is_export;
INSERT INTO `lab_export_dip` SELECT export_id, dip_id, NULL FROM lab_nas_child;

-- Backups: every VPS (Vps.all) gets its dataset in the pool of its backup export's root,
-- else in the first backup pool; a VPS without either is skipped.
SET @first_backup_pool = (SELECT MIN(id) FROM pools WHERE role = 2);
CREATE TEMPORARY TABLE `lab_vps_backup` (
  `vps_id` int NOT NULL PRIMARY KEY, `hv_dip_id` int, `dataset_id` int, `pool_id` int, `export_id` int, `dip_id` int)
  SELECT v.vps_id, v.dataset_in_pool_id AS hv_dip_id, hv.dataset_id,
         IF(ex.id IS NOT NULL, rp.pool_id, @first_backup_pool) AS pool_id, ex.id AS export_id, NULL AS dip_id
  FROM vps v
  LEFT JOIN dataset_in_pools hv ON hv.id = v.dataset_in_pool_id
  LEFT JOIN storage_export ex ON ex.id = v.vps_backup_export
  LEFT JOIN lab_root_pool rp ON rp.root_id = ex.root_id
  WHERE ex.id IS NOT NULL OR @first_backup_pool IS NOT NULL;
INSERT INTO `dataset_in_pools` (`dataset_id`, `pool_id`, `confirmed`)
  SELECT dataset_id, pool_id, 1 FROM lab_vps_backup ORDER BY vps_id;
UPDATE `lab_vps_backup` b JOIN `dataset_in_pools` dip ON dip.dataset_id = b.dataset_id AND dip.pool_id = b.pool_id
  SET b.dip_id = dip.id;
INSERT INTO `lab_export_dip` SELECT export_id, dip_id, vps_id FROM lab_vps_backup WHERE export_id IS NOT NULL
  ON DUPLICATE KEY UPDATE dip_id = VALUES(dip_id), from_vps_id = VALUES(from_vps_id);
INSERT INTO `mounts` (`vps_id`, `src`, `dst`, `mount_opts`, `umount_opts`, `mount_type`, `dataset_in_pool_id`, `mode`,
                      `cmd_premount`, `cmd_postmount`, `cmd_preumount`, `cmd_postumount`)
  SELECT m.vps_id, m.src, m.dst, m.mount_opts, m.umount_opts, IF(m.mount_type = '', 'nfs', m.mount_type),
         ed.dip_id, m.mode, m.cmd_premount, m.cmd_postmount, m.cmd_preumount, m.cmd_postumount
  FROM lab_vps_backup b
  JOIN vps_mount m ON m.vps_id = b.vps_id
  JOIN lab_export_dip ed ON ed.export_id = m.storage_export_id AND (ed.from_vps_id IS NULL OR ed.from_vps_id <= b.vps_id)
  ORDER BY b.vps_id, m.id;
SELECT CONCAT('unable to migrate mount ', m.id, ': storage export does not exist\n',
              IF(b.export_id IS NOT NULL, 'ex is set', 'ex is not set'))
  FROM lab_vps_backup b
  JOIN vps_mount m ON m.vps_id = b.vps_id
  LEFT JOIN lab_export_dip ed ON ed.export_id = m.storage_export_id AND (ed.from_vps_id IS NULL OR ed.from_vps_id <= b.vps_id)
  WHERE ed.export_id IS NULL
  ORDER BY b.vps_id, m.id;
INSERT INTO `dataset_in_pool_plans` (`environment_dataset_plan_id`, `dataset_in_pool_id`)
  SELECT @env_backup_plan, hv_dip_id FROM lab_vps_backup ORDER BY vps_id;
INSERT INTO `dataset_actions` (`src_dataset_in_pool_id`, `dst_dataset_in_pool_id`, `action`, `dataset_in_pool_plan_id`)
  SELECT b.hv_dip_id, b.dip_id, 3, pl.id
  FROM lab_vps_backup b
  JOIN dataset_in_pool_plans pl ON pl.environment_dataset_plan_id = @env_backup_plan AND pl.dataset_in_pool_id = b.hv_dip_id
  ORDER BY b.vps_id;
INSERT INTO `repeatable_tasks` (`class_name`, `table_name`, `row_id`, `minute`, `hour`, `day_of_month`, `month`, `day_of_week`)
  SELECT 'DatasetAction', 'dataset_actions', id, '05', '01', '*', '*', '*' FROM dataset_actions WHERE action = 3 ORDER BY id;

DROP TABLE `storage_root`;
DROP TABLE `storage_export`;
DROP TABLE `vps_mount`;
ALTER TABLE `vps` DROP `vps_backup_enabled`;
ALTER TABLE `vps` DROP `vps_backup_export`;
ALTER TABLE `vps` DROP `vps_backup_exclude`;
