-- API 5d85ee934 db/migrate/20150801090150_admin_user_session.rb
ALTER TABLE `user_sessions` ADD `admin_id` int(11) DEFAULT NULL;
