-- API 5d85ee934 db/migrate/20140927161625_add_transaction_chains.rb
CREATE TABLE `transaction_chains` (
  `id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `name` varchar(30) NOT NULL,
  `type` varchar(100) NOT NULL,
  `state` int(11) NOT NULL,
  `size` int(11) NOT NULL,
  `progress` int(11) NOT NULL DEFAULT 0,
  `user_id` int(11) DEFAULT NULL,
  `created_at` datetime DEFAULT NULL,
  `updated_at` datetime DEFAULT NULL
) ENGINE=InnoDB;
ALTER TABLE `transactions` ADD `transaction_chain_id` int(11) NOT NULL;
CREATE TABLE `transaction_confirmations` (
  `id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `transaction_id` int(11) NOT NULL,
  `class_name` varchar(255) NOT NULL,
  `table_name` varchar(255) NOT NULL,
  `row_pks` varchar(255) NOT NULL,
  `attr_changes` varchar(255) DEFAULT NULL,
  `confirm_type` int(11) NOT NULL,
  `done` int(11) NOT NULL DEFAULT 0,
  `created_at` datetime DEFAULT NULL,
  `updated_at` datetime DEFAULT NULL
) ENGINE=InnoDB;
CREATE TABLE `resource_locks` (
  `id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `resource` varchar(100) NOT NULL,
  `row_id` int(11) NOT NULL,
  `transaction_chain_id` int(11) DEFAULT NULL,
  `created_at` datetime DEFAULT NULL,
  `updated_at` datetime DEFAULT NULL
) ENGINE=InnoDB;
CREATE UNIQUE INDEX `index_resource_locks_on_resource_and_row_id` ON `resource_locks` (`resource`, `row_id`);
ALTER TABLE `vps` DROP `vps_backup_lock`;
ALTER TABLE `vps` ADD `confirmed` int(11) NOT NULL DEFAULT 0;
ALTER TABLE `vps_has_config` ADD `confirmed` int(11) NOT NULL DEFAULT 0;
ALTER TABLE transactions ENGINE = innodb;
