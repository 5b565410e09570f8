-- API 5d85ee934 db/migrate/20151002090440_add_mount_on_start_fail.rb
ALTER TABLE `mounts` ADD `on_start_fail` int(11) NOT NULL DEFAULT 1;
