-- API 5d85ee934 db/migrate/20140913164605_token_auth_lifetime.rb
ALTER TABLE `api_tokens` ADD `lifetime` int(11) NOT NULL;
ALTER TABLE `api_tokens` ADD `interval` int(11) DEFAULT NULL;
UPDATE `api_tokens` SET `lifetime` = 0;
