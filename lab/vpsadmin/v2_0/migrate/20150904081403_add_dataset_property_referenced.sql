-- API 5d85ee934 db/migrate/20150904081403_add_dataset_property_referenced.rb
-- A `referenced` property for every pool, and one per dataset in a hypervisor or primary
-- pool, its parent being the parent dataset's `referenced` (the first one: with the 2.0
-- registrator add_storage already made one) or else the pool's new one. Datasets that
-- already had `referenced` from add_storage now have two rows, as upstream leaves them.
SET @now = UTC_TIMESTAMP();
SET @before = (SELECT COALESCE(MAX(id), 0) FROM dataset_properties);
INSERT INTO `dataset_properties` (`pool_id`, `name`, `value`, `confirmed`, `created_at`, `updated_at`)
  SELECT id, 'referenced', '--- 0\n...\n', 1, @now, @now FROM pools ORDER BY id;
CREATE TEMPORARY TABLE `lab_referenced_parent` (`dip_id` int NOT NULL PRIMARY KEY, `dataset_id` int NOT NULL,
  `parent_id` int NOT NULL, `parent_ancestry` varchar(255), `parent_depth` int NOT NULL)
  SELECT dip.id AS dip_id, dip.dataset_id,
         COALESCE(pp.id, poolp.id) AS parent_id,
         IF(pp.id IS NOT NULL, pp.ancestry, poolp.ancestry) AS parent_ancestry,
         IF(pp.id IS NOT NULL, pp.ancestry_depth, poolp.ancestry_depth) AS parent_depth
  FROM dataset_in_pools dip
  JOIN pools p ON p.id = dip.pool_id AND p.role IN (0, 1)
  JOIN datasets d ON d.id = dip.dataset_id
  LEFT JOIN dataset_in_pools parent_dip
    ON parent_dip.pool_id = dip.pool_id AND parent_dip.dataset_id = CAST(SUBSTRING_INDEX(d.ancestry, '/', -1) AS UNSIGNED)
  LEFT JOIN (SELECT dataset_in_pool_id, MIN(id) AS id FROM dataset_properties
             WHERE name = 'referenced' AND dataset_in_pool_id IS NOT NULL GROUP BY dataset_in_pool_id) first_ref
    ON first_ref.dataset_in_pool_id = parent_dip.id
  LEFT JOIN dataset_properties pp ON pp.id = first_ref.id
  JOIN dataset_properties poolp ON poolp.id > @before AND poolp.pool_id = dip.pool_id;
INSERT INTO `dataset_properties` (`dataset_id`, `dataset_in_pool_id`, `ancestry`, `ancestry_depth`, `name`, `value`, `confirmed`, `created_at`, `updated_at`)
  SELECT dataset_id, dip_id, IF(parent_ancestry IS NULL, parent_id, CONCAT(parent_ancestry, '/', parent_id)),
         parent_depth + 1, 'referenced', '--- 0\n...\n', 1, @now, @now
  FROM lab_referenced_parent ORDER BY dip_id;
