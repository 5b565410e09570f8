-- API 5d85ee934 db/migrate/20151029160857_add_dns_resolver_ip_version.rb
ALTER TABLE `cfg_dns` ADD `ip_version` int(11) DEFAULT 4;
