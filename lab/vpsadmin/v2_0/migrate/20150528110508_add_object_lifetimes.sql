-- API 5d85ee934 db/migrate/20150528110508_add_object_lifetimes.rb
CREATE TABLE `object_states` (
  `id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `class_name` varchar(255) NOT NULL,
  `row_id` int(11) NOT NULL,
  `state` int(11) NOT NULL,
  `user_id` int(11) DEFAULT NULL,
  `reason` varchar(255) DEFAULT NULL,
  `expiration_date` datetime DEFAULT NULL,
  `created_at` datetime DEFAULT NULL,
  `updated_at` datetime DEFAULT NULL
) ENGINE=InnoDB;
