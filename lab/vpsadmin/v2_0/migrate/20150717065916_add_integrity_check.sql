-- API 5d85ee934 db/migrate/20150717065916_add_integrity_check.rb
CREATE TABLE `integrity_checks` (
  `id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `user_id` int(11) DEFAULT NULL,
  `status` int(11) NOT NULL DEFAULT 0,
  `checked_objects` int(11) NOT NULL DEFAULT 0,
  `integral_objects` int(11) NOT NULL DEFAULT 0,
  `broken_objects` int(11) NOT NULL DEFAULT 0,
  `checked_facts` int(11) NOT NULL DEFAULT 0,
  `true_facts` int(11) NOT NULL DEFAULT 0,
  `false_facts` int(11) NOT NULL DEFAULT 0,
  `created_at` datetime DEFAULT NULL,
  `updated_at` datetime DEFAULT NULL,
  `finished_at` datetime DEFAULT NULL
) ENGINE=InnoDB;
CREATE TABLE `integrity_objects` (
  `id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `integrity_check_id` int(11) NOT NULL,
  `node_id` int(11) NOT NULL,
  `class_name` varchar(100) NOT NULL,
  `row_id` int(11) DEFAULT NULL,
  `ancestry` varchar(255) DEFAULT NULL,
  `ancestry_depth` int(11) NOT NULL DEFAULT 0,
  `status` int(11) NOT NULL DEFAULT 0,
  `checked_facts` int(11) NOT NULL DEFAULT 0,
  `true_facts` int(11) NOT NULL DEFAULT 0,
  `false_facts` int(11) NOT NULL DEFAULT 0,
  `created_at` datetime DEFAULT NULL,
  `updated_at` datetime DEFAULT NULL
) ENGINE=InnoDB;
CREATE TABLE `integrity_facts` (
  `id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `integrity_object_id` int(11) NOT NULL,
  `name` varchar(30) NOT NULL,
  `expected_value` varchar(255) NOT NULL,
  `actual_value` varchar(255) NOT NULL,
  `status` int(11) NOT NULL DEFAULT 0,
  `severity` int(11) NOT NULL DEFAULT 1,
  `message` varchar(1000) DEFAULT NULL,
  `created_at` datetime DEFAULT NULL
) ENGINE=InnoDB;
ALTER TABLE `transactions` CHANGE `t_param` `t_param` longtext;
