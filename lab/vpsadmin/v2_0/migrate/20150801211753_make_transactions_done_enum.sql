-- API 5d85ee934 db/migrate/20150801211753_make_transactions_done_enum.rb
-- t_done becomes the enum %i(waiting done staged) = 0/1/2.
ALTER TABLE `transactions` CHANGE `t_done` `t_done` int(11) NOT NULL DEFAULT 0;
