-- API 5d85ee934 db/migrate/20141212180955_transaction_rollback.rb
ALTER TABLE `transaction_chains` ADD `urgent_rollback` int(11) NOT NULL DEFAULT 0;
ALTER TABLE `transactions` ADD `reversible` int(11) NOT NULL DEFAULT 1;
