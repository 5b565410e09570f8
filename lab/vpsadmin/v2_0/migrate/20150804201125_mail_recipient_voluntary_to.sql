-- API 5d85ee934 db/migrate/20150804201125_mail_recipient_voluntary_to.rb
ALTER TABLE `mail_recipients` CHANGE `to` `to` varchar(500) DEFAULT NULL;
