-- API 5d85ee934 db/migrate/20151124085214_add_transaction_indexes.rb
CREATE INDEX `index_transactions_on_t_done` ON `transactions` (`t_done`);
CREATE INDEX `index_transaction_chains_on_state` ON `transaction_chains` (`state`);
