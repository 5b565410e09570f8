-- API 5d85ee934 db/migrate/20150312171845_cluster_resources_admin_override.rb
ALTER TABLE `cluster_resource_uses` ADD `admin_lock_type` int(11) NOT NULL DEFAULT 0;
ALTER TABLE `cluster_resource_uses` ADD `admin_limit` int(11) DEFAULT NULL;
