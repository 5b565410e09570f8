-- API 5d85ee934 db/migrate/20150730152316_add_api_tokens_created_at.rb
ALTER TABLE `api_tokens` ADD `created_at` datetime DEFAULT NULL;
