-- API 5d85ee934 db/migrate/20150730133630_add_user_sessions.rb
CREATE TABLE `user_session_agents` (
  `id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `agent` text NOT NULL,
  `agent_hash` varchar(40) NOT NULL,
  `created_at` datetime NOT NULL
) ENGINE=InnoDB;
CREATE UNIQUE INDEX `user_session_agents_hash` ON `user_session_agents` (`agent_hash`);
CREATE TABLE `user_sessions` (
  `id` int(11) NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `user_id` int(11) NOT NULL,
  `auth_type` varchar(30) NOT NULL,
  `ip_addr` varchar(46) NOT NULL,
  `user_session_agent_id` int(11) DEFAULT NULL,
  `client_version` varchar(255) NOT NULL,
  `api_token_id` int(11) DEFAULT NULL,
  `api_token_str` varchar(100) DEFAULT NULL,
  `created_at` datetime NOT NULL,
  `last_request_at` datetime DEFAULT NULL,
  `closed_at` datetime DEFAULT NULL
) ENGINE=InnoDB;
ALTER TABLE `transaction_chains` ADD `user_session_id` int(11) DEFAULT NULL;
