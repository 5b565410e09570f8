-- API 5d85ee934 db/migrate/20150820174810_datasets_confirmed_integer.rb
ALTER TABLE `datasets` CHANGE `confirmed` `confirmed` int(11) NOT NULL DEFAULT 0;
