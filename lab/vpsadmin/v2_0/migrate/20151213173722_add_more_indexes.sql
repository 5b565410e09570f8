-- API 5d85ee934 db/migrate/20151213173722_add_more_indexes.rb
CREATE INDEX `index_transactions_on_t_success` ON `transactions` (`t_success`);
CREATE INDEX `index_dataset_properties_on_pool_id` ON `dataset_properties` (`pool_id`);
CREATE INDEX `index_dataset_properties_on_dataset_in_pool_id` ON `dataset_properties` (`dataset_in_pool_id`);
CREATE INDEX `index_dataset_properties_on_dataset_in_pool_id_and_name` ON `dataset_properties` (`dataset_in_pool_id`, `name`);
