-- API 5d85ee934 db/migrate/20150811075054_mail_logs_longtext.rb
ALTER TABLE `mail_logs` CHANGE `text_plain` `text_plain` longtext;
ALTER TABLE `mail_logs` CHANGE `text_html` `text_html` longtext;
