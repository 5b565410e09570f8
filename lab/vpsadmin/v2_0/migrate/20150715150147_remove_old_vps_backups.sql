-- API 5d85ee934 db/migrate/20150715150147_remove_old_vps_backups.rb
DROP TABLE `vps_backups`;
