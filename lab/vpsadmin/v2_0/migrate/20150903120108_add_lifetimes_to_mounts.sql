-- API 5d85ee934 db/migrate/20150903120108_add_lifetimes_to_mounts.rb
-- All mounts active; snapshot mounts expire in 3 days.
ALTER TABLE `mounts` ADD `object_state` int(11) DEFAULT NULL;
ALTER TABLE `mounts` ADD `expiration_date` datetime DEFAULT NULL;
UPDATE `mounts` SET `object_state` = 0;
UPDATE `mounts` SET `expiration_date` = UTC_TIMESTAMP() + INTERVAL 3 DAY WHERE (`mounts`.`snapshot_in_pool_id` IS NOT NULL);
ALTER TABLE `mounts` CHANGE `object_state` `object_state` int(11) NOT NULL;
ALTER TABLE `mounts` ADD `created_at` datetime, ADD `updated_at` datetime;
