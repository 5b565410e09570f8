-- API 5d85ee934 db/migrate/20151015085656_mount_state_tracking.rb
ALTER TABLE `mounts` ADD `current_state` int(11) NOT NULL DEFAULT 0;
