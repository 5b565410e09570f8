-- API 5d85ee934 db/migrate/20150206154652_vps_features.rb
-- Every VPS gets the six features, all as its old vps_features_enabled said.
CREATE TABLE `vps_features` (
  `id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `vps_id` int(11) NOT NULL,
  `name` varchar(255) NOT NULL,
  `enabled` tinyint(1) NOT NULL,
  `updated_at` datetime DEFAULT NULL
) ENGINE=InnoDB;
CREATE UNIQUE INDEX `index_vps_features_on_vps_id_and_name` ON `vps_features` (`vps_id`, `name`);
INSERT INTO `vps_features` (`vps_id`, `name`, `enabled`, `updated_at`)
  SELECT v.vps_id, f.name, v.vps_features_enabled, UTC_TIMESTAMP()
  FROM vps v
  CROSS JOIN (SELECT 1 AS ord, 'iptables' AS name UNION ALL SELECT 2, 'tun' UNION ALL SELECT 3, 'fuse'
              UNION ALL SELECT 4, 'nfs' UNION ALL SELECT 5, 'ppp' UNION ALL SELECT 6, 'bridge') f
  ORDER BY v.vps_id, f.ord;
ALTER TABLE `vps` DROP `vps_features_enabled`;
