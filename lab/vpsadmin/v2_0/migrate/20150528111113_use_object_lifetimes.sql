-- API 5d85ee934 db/migrate/20150528111113_use_object_lifetimes.rb
-- object_states.state: enum %i(active suspended soft_delete hard_delete deleted) = 0..4.
-- Time.at(x) is stored in UTC: FROM_UNIXTIME under the session's time_zone '+00:00'.
ALTER TABLE `members` ADD `object_state` int(11) NOT NULL;
ALTER TABLE `members` ADD `expiration_date` datetime DEFAULT NULL;
ALTER TABLE `vps` ADD `object_state` int(11) NOT NULL;
ALTER TABLE `vps` ADD `expiration_date` datetime DEFAULT NULL;
ALTER TABLE `datasets` ADD `object_state` int(11) NOT NULL;
ALTER TABLE `datasets` ADD `expiration_date` datetime DEFAULT NULL;
ALTER TABLE `snapshot_downloads` ADD `object_state` int(11) NOT NULL;
ALTER TABLE `snapshot_downloads` ADD `expiration_date` datetime DEFAULT NULL;
SET @now = UTC_TIMESTAMP();
-- Users: a state-0 row from m_created, then a suspended/soft_delete row if not active.
INSERT INTO `object_states` (`class_name`, `row_id`, `state`, `user_id`, `reason`, `expiration_date`, `created_at`, `updated_at`)
  SELECT 'User', row_id, state, NULL, reason, NULL, created_at, @now FROM (
    SELECT m_id AS row_id, 0 AS seq, 0 AS state, NULL AS reason,
           FROM_UNIXTIME(COALESCE(m_created, 0)) AS created_at
    FROM members
    UNION ALL
    SELECT m_id, 1, IF(m_state = 'suspended', 1, 2), m_suspend_reason, @now
    FROM members WHERE m_state <> 'active'
  ) s ORDER BY row_id, seq;
UPDATE `members` SET `object_state` = CASE m_state WHEN 'suspended' THEN 1 WHEN 'deleted' THEN 2 ELSE 0 END,
  `updated_at` = @now;
-- VPSes: a state-0 row (expiration from vps_expiration), a soft_delete row if vps_deleted.
INSERT INTO `object_states` (`class_name`, `row_id`, `state`, `user_id`, `reason`, `expiration_date`, `created_at`, `updated_at`)
  SELECT 'Vps', row_id, state, NULL, NULL, expiration_date, created_at, @now FROM (
    SELECT vps_id AS row_id, 0 AS seq, 0 AS state, FROM_UNIXTIME(vps_expiration) AS expiration_date,
           FROM_UNIXTIME(COALESCE(vps_created, 0)) AS created_at
    FROM vps
    UNION ALL
    SELECT vps_id, 1, 2, NULL, FROM_UNIXTIME(vps_deleted) FROM vps WHERE vps_deleted IS NOT NULL
  ) s ORDER BY row_id, seq;
UPDATE `vps` SET `object_state` = IF(vps_deleted IS NULL, 0, 2),
  `expiration_date` = FROM_UNIXTIME(vps_expiration);
INSERT INTO `object_states` (`class_name`, `row_id`, `state`, `user_id`, `reason`, `expiration_date`, `created_at`, `updated_at`)
  SELECT 'Dataset', id, 0, NULL, NULL, NULL, @now, @now FROM datasets ORDER BY id;
INSERT INTO `object_states` (`class_name`, `row_id`, `state`, `user_id`, `reason`, `expiration_date`, `created_at`, `updated_at`)
  SELECT 'SnapshotDownload', id, 0, NULL, NULL, NULL, created_at, @now FROM snapshot_downloads ORDER BY id;
ALTER TABLE `members` DROP `m_deleted`;
ALTER TABLE `members` DROP `m_state`;
ALTER TABLE `members` DROP `m_suspend_reason`;
ALTER TABLE `vps` DROP `vps_expiration`;
ALTER TABLE `vps` DROP `vps_deleted`;
