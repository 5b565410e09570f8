-- API 5d85ee934 db/migrate/20150618124817_change_vps_console.rb
ALTER TABLE `vps_console` CHANGE `key` `token` varchar(64) NOT NULL;
ALTER TABLE `vps_console` CHANGE `token` `token` varchar(100) DEFAULT NULL;
UPDATE `vps_console` SET `token` = NULL;
ALTER TABLE `vps_console` ADD `user_id` int(11) DEFAULT NULL;
ALTER TABLE `vps_console` ADD `created_at` datetime, ADD `updated_at` datetime;
CREATE UNIQUE INDEX `index_vps_console_on_token` ON `vps_console` (`token`);
