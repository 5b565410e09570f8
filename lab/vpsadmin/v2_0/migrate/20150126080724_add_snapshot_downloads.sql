-- API 5d85ee934 db/migrate/20150126080724_add_snapshot_downloads.rb
CREATE TABLE `snapshot_downloads` (
  `id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `user_id` int(11) NOT NULL,
  `snapshot_id` int(11) DEFAULT NULL,
  `pool_id` int(11) NOT NULL,
  `secret_key` varchar(100) NOT NULL,
  `file_name` varchar(255) NOT NULL,
  `confirmed` int(11) NOT NULL DEFAULT 0,
  `created_at` datetime DEFAULT NULL,
  `updated_at` datetime DEFAULT NULL
) ENGINE=InnoDB;
CREATE UNIQUE INDEX `index_snapshot_downloads_on_secret_key` ON `snapshot_downloads` (`secret_key`);
ALTER TABLE `snapshots` ADD `snapshot_download_id` int(11) DEFAULT NULL;
