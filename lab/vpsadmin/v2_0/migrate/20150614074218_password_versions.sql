-- API 5d85ee934 db/migrate/20150614074218_password_versions.rb
-- Existing members get 0 (their md5 passwords), new ones 1.
ALTER TABLE `members` ADD `password_version` int(11) NOT NULL DEFAULT 0;
ALTER TABLE `members` CHANGE `password_version` `password_version` int(11) NOT NULL DEFAULT 1;
