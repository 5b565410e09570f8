-- API 5d85ee934 db/migrate/20151124085559_add_kvm_vps_feature.rb
-- A disabled `kvm` feature for every VPS not yet hard-deleted (object_state < 3).
INSERT INTO `vps_features` (`vps_id`, `name`, `enabled`, `updated_at`)
  SELECT vps_id, 'kvm', 0, UTC_TIMESTAMP() FROM vps WHERE (object_state < 3) ORDER BY vps_id;
