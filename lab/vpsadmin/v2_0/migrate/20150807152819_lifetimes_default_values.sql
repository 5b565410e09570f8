-- API 5d85ee934 db/migrate/20150807152819_lifetimes_default_values.rb
-- direction: 0 leave, 1 enter.
CREATE TABLE `default_lifetime_values` (
  `id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `environment_id` int(11) DEFAULT NULL,
  `class_name` varchar(50) NOT NULL,
  `direction` int(11) NOT NULL,
  `state` int(11) NOT NULL,
  `add_expiration` int(11) DEFAULT NULL,
  `reason` varchar(255) NOT NULL
) ENGINE=InnoDB;
