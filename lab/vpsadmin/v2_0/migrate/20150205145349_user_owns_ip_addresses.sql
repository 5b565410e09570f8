-- API 5d85ee934 db/migrate/20150205145349_user_owns_ip_addresses.rb
-- environments.user_ip_ownership is NOT NULL without a default: existing rows get 0.
ALTER TABLE `vps_ip` ADD `user_id` int(11) DEFAULT NULL;
ALTER TABLE `environments` ADD `user_ip_ownership` tinyint(1) NOT NULL;
