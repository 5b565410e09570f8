-- API 5d85ee934 db/migrate/20150802162711_add_transaction_queues.rb
ALTER TABLE `transactions` ADD `queue` varchar(30) NOT NULL DEFAULT 'general';
