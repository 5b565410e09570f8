-- API 5d85ee934 db/migrate/20150307174728_add_mailing.rb
CREATE TABLE `mail_recipients` (
  `id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `label` varchar(100) NOT NULL,
  `to` varchar(500) NOT NULL,
  `cc` varchar(500) DEFAULT NULL,
  `bcc` varchar(500) DEFAULT NULL
) ENGINE=InnoDB;
CREATE TABLE `mail_templates` (
  `id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `name` varchar(100) NOT NULL,
  `label` varchar(100) NOT NULL,
  `from` varchar(255) NOT NULL,
  `reply_to` varchar(255) DEFAULT NULL,
  `return_path` varchar(255) DEFAULT NULL,
  `subject` varchar(255) NOT NULL,
  `text_plain` text,
  `text_html` text,
  `created_at` datetime DEFAULT NULL,
  `updated_at` datetime DEFAULT NULL
) ENGINE=InnoDB;
CREATE UNIQUE INDEX `index_mail_templates_on_name` ON `mail_templates` (`name`);
CREATE TABLE `mail_template_recipients` (
  `id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `mail_template_id` int(11) NOT NULL,
  `mail_recipient_id` int(11) NOT NULL
) ENGINE=InnoDB;
CREATE UNIQUE INDEX `mail_template_recipients_unique` ON `mail_template_recipients` (`mail_template_id`, `mail_recipient_id`);
CREATE TABLE `mail_logs` (
  `id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `user_id` int(11) DEFAULT NULL,
  `to` varchar(500) NOT NULL,
  `cc` varchar(500) NOT NULL,
  `bcc` varchar(500) NOT NULL,
  `from` varchar(255) NOT NULL,
  `reply_to` varchar(255) DEFAULT NULL,
  `return_path` varchar(255) DEFAULT NULL,
  `message_id` varchar(255) DEFAULT NULL,
  `in_reply_to` varchar(255) DEFAULT NULL,
  `references` varchar(255) DEFAULT NULL,
  `subject` varchar(255) NOT NULL,
  `text_plain` text,
  `text_html` text,
  `mail_template_id` int(11) DEFAULT NULL,
  `transaction_id` int(11) DEFAULT NULL,
  `created_at` datetime DEFAULT NULL,
  `updated_at` datetime DEFAULT NULL
) ENGINE=InnoDB;
