-- API 5d85ee934 db/migrate/20141105130158_change_vps_has_config.rb
-- The index keeps the name Rails gave it on `tmp`.
CREATE TABLE `tmp` (
  `id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `vps_id` int(11) NOT NULL,
  `config_id` int(11) NOT NULL,
  `order` int(11) NOT NULL,
  `confirmed` int(11) NOT NULL
) ENGINE=InnoDB;
CREATE UNIQUE INDEX `index_tmp_on_vps_id_and_config_id_and_confirmed` ON `tmp` (`vps_id`, `config_id`, `confirmed`);
INSERT INTO tmp (vps_id, config_id, `order`, confirmed)
  SELECT vps_id, config_id, `order`, 1 FROM vps_has_config;
DROP TABLE `vps_has_config`;
RENAME TABLE `tmp` TO `vps_has_config`;
