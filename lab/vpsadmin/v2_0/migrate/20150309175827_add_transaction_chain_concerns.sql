-- API 5d85ee934 db/migrate/20150309175827_add_transaction_chain_concerns.rb
ALTER TABLE `transaction_chains` ADD `concern_type` int(11) NOT NULL DEFAULT 0;
CREATE TABLE `transaction_chain_concerns` (
  `id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `transaction_chain_id` int(11) NOT NULL,
  `class_name` varchar(255) NOT NULL,
  `row_id` int(11) NOT NULL
) ENGINE=InnoDB;
