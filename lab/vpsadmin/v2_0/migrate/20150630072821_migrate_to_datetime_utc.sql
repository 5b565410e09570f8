-- API 5d85ee934 db/migrate/20150630072821_migrate_to_datetime_utc.rb
-- CONVERT_TZ with named zones needs the mysql.time_zone* tables; without them it gives
-- NULL and making vps_status.created_at NOT NULL fails (why the runbook loads them first).
-- Lab: MariaDB keeps a zone it once loaded in a server-wide cache until it restarts, so a
-- shared lab server answers CONVERT_TZ even after its tables were emptied. @lab_tz says
-- whether the tables have both zones now; without them every conversion is NULL, as on a
-- fresh server.
SET @lab_tz = (SELECT COUNT(DISTINCT Name) FROM mysql.time_zone_name WHERE Name IN ('Europe/Prague', 'UTC')) = 2;
ALTER TABLE `vps` ADD `created_at` datetime, ADD `updated_at` datetime;
ALTER TABLE `members` ADD `paid_until` datetime DEFAULT NULL;
ALTER TABLE `members` ADD `last_activity_at` datetime DEFAULT NULL;
ALTER TABLE `transactions` ADD `created_at` datetime DEFAULT NULL;
ALTER TABLE `transactions` ADD `started_at` datetime DEFAULT NULL;
ALTER TABLE `transactions` ADD `finished_at` datetime DEFAULT NULL;
ALTER TABLE `vps_status` ADD `created_at` datetime DEFAULT NULL;
ALTER TABLE `servers_status` ADD `created_at` datetime DEFAULT NULL;
UPDATE `vps` SET created_at = IF(@lab_tz, CONVERT_TZ(FROM_UNIXTIME(vps_created), 'Europe/Prague', 'UTC'), NULL) WHERE (`vps`.`vps_created` IS NOT NULL);
UPDATE `members` SET created_at = IF(@lab_tz, CONVERT_TZ(FROM_UNIXTIME(m_created), 'Europe/Prague', 'UTC'), NULL) WHERE (`members`.`m_created` IS NOT NULL);
UPDATE `members` SET paid_until = IF(@lab_tz, CONVERT_TZ(FROM_UNIXTIME(m_paid_until), 'Europe/Prague', 'UTC'), NULL) WHERE (m_paid_until IS NOT NULL AND m_paid_until != '');
UPDATE `members` SET last_activity_at = IF(@lab_tz, CONVERT_TZ(FROM_UNIXTIME(m_last_activity), 'Europe/Prague', 'UTC'), NULL) WHERE (`members`.`m_last_activity` IS NOT NULL);
UPDATE `transactions` SET created_at = IF(@lab_tz, CONVERT_TZ(FROM_UNIXTIME(t_time), 'Europe/Prague', 'UTC'), NULL) WHERE (`transactions`.`t_time` IS NOT NULL);
UPDATE `transactions` SET started_at = IF(@lab_tz, CONVERT_TZ(FROM_UNIXTIME(t_real_start), 'Europe/Prague', 'UTC'), NULL) WHERE (`transactions`.`t_real_start` IS NOT NULL);
UPDATE `transactions` SET finished_at = IF(@lab_tz, CONVERT_TZ(FROM_UNIXTIME(t_end), 'Europe/Prague', 'UTC'), NULL) WHERE (`transactions`.`t_end` IS NOT NULL);
UPDATE `vps_console` SET expiration = IF(@lab_tz, CONVERT_TZ(expiration, 'Europe/Prague', 'UTC'), NULL);
UPDATE `vps_status` SET created_at = IF(@lab_tz, CONVERT_TZ(FROM_UNIXTIME(`timestamp`), 'Europe/Prague', 'UTC'), NULL);
ALTER TABLE `vps_status` CHANGE `created_at` `created_at` datetime NOT NULL;
UPDATE `servers_status` SET created_at = IF(@lab_tz, CONVERT_TZ(FROM_UNIXTIME(`timestamp`), 'Europe/Prague', 'UTC'), NULL);
ALTER TABLE `servers_status` CHANGE `created_at` `created_at` datetime NOT NULL;
ALTER TABLE `vps` DROP `vps_created`;
ALTER TABLE `members` DROP `m_created`;
ALTER TABLE `members` DROP `m_paid_until`;
ALTER TABLE `members` DROP `m_last_activity`;
ALTER TABLE `transactions` DROP `t_time`;
ALTER TABLE `transactions` DROP `t_real_start`;
ALTER TABLE `transactions` DROP `t_end`;
ALTER TABLE `vps_status` DROP `timestamp`;
ALTER TABLE `servers_status` DROP `timestamp`;
