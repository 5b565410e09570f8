-- API 5d85ee934 db/migrate/20150625145437_user_environment_config_add_default.rb
ALTER TABLE `environment_user_configs` ADD `default` tinyint(1) NOT NULL DEFAULT 1;
