-- API 5d85ee934 db/migrate/20150131162852_add_cluster_resources.rb
-- servers.environment_id is NOT NULL without a default: existing servers get 0.
ALTER TABLE `locations` DROP `environment_id`;
ALTER TABLE `servers` ADD `environment_id` int(11) NOT NULL;
CREATE TABLE `cluster_resources` (
  `id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `name` varchar(100) NOT NULL,
  `label` varchar(100) NOT NULL,
  `min` int(11) NOT NULL,
  `max` int(11) NOT NULL,
  `stepsize` int(11) NOT NULL,
  `resource_type` int(11) NOT NULL,
  `allocate_chain` varchar(255) DEFAULT NULL,
  `free_chain` varchar(255) DEFAULT NULL
) ENGINE=InnoDB;
CREATE UNIQUE INDEX `index_cluster_resources_on_name` ON `cluster_resources` (`name`);
CREATE TABLE `user_cluster_resources` (
  `id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `user_id` int(11) DEFAULT NULL,
  `environment_id` int(11) NOT NULL,
  `cluster_resource_id` int(11) NOT NULL,
  `value` int(11) NOT NULL
) ENGINE=InnoDB;
CREATE UNIQUE INDEX `user_cluster_resource_unique` ON `user_cluster_resources` (`user_id`, `environment_id`, `cluster_resource_id`);
CREATE TABLE `cluster_resource_uses` (
  `id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `user_cluster_resource_id` int(11) NOT NULL,
  `class_name` varchar(255) NOT NULL,
  `table_name` varchar(255) NOT NULL,
  `row_id` int(11) NOT NULL,
  `value` int(11) NOT NULL,
  `confirmed` int(11) NOT NULL DEFAULT 0
) ENGINE=InnoDB;
CREATE TABLE `default_object_cluster_resources` (
  `id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `environment_id` int(11) NOT NULL,
  `cluster_resource_id` int(11) NOT NULL,
  `class_name` varchar(255) NOT NULL,
  `value` int(11) NOT NULL
) ENGINE=InnoDB;
-- resource_type: enum %i(numeric object) = 0/1
INSERT INTO `cluster_resources` (`name`, `label`, `min`, `max`, `stepsize`, `resource_type`, `allocate_chain`, `free_chain`) VALUES
  ('memory', 'Memory', 1024, 12288, 1024, 0, NULL, NULL),
  ('swap', 'Swap', 0, 12288, 1024, 0, NULL, NULL),
  ('cpu', 'CPU', 1, 8, 1, 0, NULL, NULL),
  ('diskspace', 'Disk space', 10240, 2048000, 10240, 0, NULL, NULL),
  ('ipv4', 'IPv4 address', 0, 4, 1, 1, 'Ip::Allocate', 'Ip::Free'),
  ('ipv6', 'IPv6 address', 0, 32, 1, 1, 'Ip::Allocate', 'Ip::Free');
