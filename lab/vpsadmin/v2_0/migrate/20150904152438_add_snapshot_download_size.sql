-- API 5d85ee934 db/migrate/20150904152438_add_snapshot_download_size.rb
ALTER TABLE `snapshot_downloads` ADD `size` int(11) DEFAULT NULL;
