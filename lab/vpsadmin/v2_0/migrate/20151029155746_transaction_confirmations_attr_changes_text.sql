-- API 5d85ee934 db/migrate/20151029155746_transaction_confirmations_attr_changes_text.rb
ALTER TABLE `transaction_confirmations` CHANGE `attr_changes` `attr_changes` text;
