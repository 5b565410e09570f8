-- API 5d85ee934 db/migrate/20151004115901_add_mount_toggle.rb
ALTER TABLE `mounts` ADD `enabled` tinyint(1) NOT NULL DEFAULT 1;
ALTER TABLE `mounts` ADD `master_enabled` tinyint(1) NOT NULL DEFAULT 1;
