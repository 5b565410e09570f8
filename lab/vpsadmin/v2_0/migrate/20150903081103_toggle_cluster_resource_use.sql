-- API 5d85ee934 db/migrate/20150903081103_toggle_cluster_resource_use.rb
ALTER TABLE `cluster_resource_uses` ADD `enabled` tinyint(1) NOT NULL DEFAULT 1;
UPDATE `cluster_resource_uses` SET `confirmed` = 1, `enabled` = 0 WHERE `cluster_resource_uses`.`confirmed` = 2;
