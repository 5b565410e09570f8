-- API 5d85ee934 db/migrate/20141112075438_add_environment_config.rb
ALTER TABLE `environments` ADD `can_create_vps` tinyint(1) NOT NULL DEFAULT 0;
ALTER TABLE `environments` ADD `can_destroy_vps` tinyint(1) NOT NULL DEFAULT 0;
ALTER TABLE `environments` ADD `vps_lifetime` int(11) NOT NULL DEFAULT 0;
ALTER TABLE `environments` ADD `max_vps_count` int(11) NOT NULL DEFAULT 1;
CREATE TABLE `environment_config_chains` (
  `id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `environment_id` int(11) NOT NULL,
  `vps_config_id` int(11) NOT NULL,
  `cfg_order` int(11) NOT NULL
) ENGINE=InnoDB;
CREATE UNIQUE INDEX `environment_config_chains_unique` ON `environment_config_chains` (`environment_id`, `vps_config_id`);
ALTER TABLE `locations` DROP `location_type`;
CREATE TABLE `environment_user_configs` (
  `id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `environment_id` int(11) NOT NULL,
  `user_id` int(11) NOT NULL,
  `can_create_vps` tinyint(1) NOT NULL DEFAULT 0,
  `can_destroy_vps` tinyint(1) NOT NULL DEFAULT 0,
  `vps_lifetime` int(11) NOT NULL DEFAULT 0,
  `max_vps_count` int(11) NOT NULL DEFAULT 1
) ENGINE=InnoDB;
CREATE UNIQUE INDEX `environment_user_configs_unique` ON `environment_user_configs` (`environment_id`, `user_id`);
