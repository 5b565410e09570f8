-- API 5d85ee934 db/migrate/20151017130111_remove_mount_scripts.rb
ALTER TABLE `mounts` DROP `cmd_premount`;
ALTER TABLE `mounts` DROP `cmd_postmount`;
ALTER TABLE `mounts` DROP `cmd_preumount`;
ALTER TABLE `mounts` DROP `cmd_postumount`;
