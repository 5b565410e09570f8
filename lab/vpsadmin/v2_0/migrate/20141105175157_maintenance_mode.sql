-- API 5d85ee934 db/migrate/20141105175157_maintenance_mode.rb
ALTER TABLE `servers` DROP `server_maintenance`;
CREATE TABLE `maintenance_locks` (
  `id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `class_name` varchar(100) NOT NULL,
  `row_id` int(11) DEFAULT NULL,
  `user_id` int(11) DEFAULT NULL,
  `reason` varchar(255) NOT NULL,
  `active` tinyint(1) NOT NULL DEFAULT 1,
  `created_at` datetime DEFAULT NULL,
  `updated_at` datetime DEFAULT NULL
) ENGINE=InnoDB;
CREATE INDEX `index_maintenance_locks_on_class_name_and_row_id` ON `maintenance_locks` (`class_name`, `row_id`);
ALTER TABLE `environments` ADD `maintenance_lock` int(11) NOT NULL DEFAULT 0;
ALTER TABLE `environments` ADD `maintenance_lock_reason` varchar(255) DEFAULT NULL;
ALTER TABLE `locations` ADD `maintenance_lock` int(11) NOT NULL DEFAULT 0;
ALTER TABLE `locations` ADD `maintenance_lock_reason` varchar(255) DEFAULT NULL;
ALTER TABLE `servers` ADD `maintenance_lock` int(11) NOT NULL DEFAULT 0;
ALTER TABLE `servers` ADD `maintenance_lock_reason` varchar(255) DEFAULT NULL;
ALTER TABLE `vps` ADD `maintenance_lock` int(11) NOT NULL DEFAULT 0;
ALTER TABLE `vps` ADD `maintenance_lock_reason` varchar(255) DEFAULT NULL;
