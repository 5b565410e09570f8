-- vpsAdmin v1.22 database as it stood in production, before the v2.0 upgrade.
--
-- Effective end state of: v1.22.5 scripts/scheme.sql (DB revision 13)
--   + scripts/upgrade/db/14.sql ("API requirements")
--   + scripts/upgrade/db/15.sql (members NULLables, schema_migrations)
--   + API migrations 20140615185520_add_api_tokens and 20140815161745_add_shaper.
-- Written as plain CREATE TABLEs (no ALTERs); column order is the one the ALTERs leave.
-- Engines are the production ones: log, node_pubkey, transactions and storage_export are
-- MyISAM (the runbook converts the first three to InnoDB); servers_status and
-- transfered_recent are MEMORY; everything else is InnoDB.
-- Load with: mysql <db> < schema.sql   (the database is created by the seed, not here)

CREATE TABLE `cfg_dns` (
  `dns_id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `dns_ip` varchar(63) NOT NULL,
  `dns_label` varchar(63) NOT NULL,
  `dns_is_universal` tinyint(1) unsigned DEFAULT '0',
  `dns_location` int(10) unsigned DEFAULT NULL,
  PRIMARY KEY (`dns_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

-- 14.sql dropped `special`.
CREATE TABLE `cfg_templates` (
  `templ_id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `templ_name` varchar(64) NOT NULL,
  `templ_label` varchar(64) NOT NULL,
  `templ_info` text,
  `templ_enabled` tinyint(4) NOT NULL DEFAULT '1',
  `templ_supported` tinyint(4) NOT NULL DEFAULT '1',
  `templ_order` tinyint(4) NOT NULL DEFAULT '1',
  PRIMARY KEY (`templ_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

CREATE TABLE `config` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `name` varchar(50) CHARACTER SET utf8 COLLATE utf8_czech_ci NOT NULL,
  `label` varchar(50) NOT NULL,
  `config` text NOT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

CREATE TABLE `helpbox` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `page` varchar(50) NOT NULL,
  `action` varchar(50) NOT NULL,
  `content` text NOT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

-- 14.sql dropped the ospf/rdiff/tpl_sync/backup_server columns and added
-- environment_id, domain, created_at, updated_at.
CREATE TABLE `locations` (
  `location_id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `location_label` varchar(63) NOT NULL,
  `location_type` enum('production','playground') NOT NULL DEFAULT 'production',
  `location_has_ipv6` tinyint(1) NOT NULL,
  `location_vps_onboot` tinyint(1) unsigned NOT NULL DEFAULT '1',
  `location_remote_console_server` varchar(255) NOT NULL,
  `environment_id` int(11) DEFAULT NULL,
  `domain` varchar(100) COLLATE utf8_unicode_ci NOT NULL,
  `created_at` datetime DEFAULT NULL,
  `updated_at` datetime DEFAULT NULL,
  PRIMARY KEY (`location_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

-- MyISAM in production (scheme.sql says InnoDB; the runbook converts it).
CREATE TABLE `log` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `timestamp` int(11) NOT NULL,
  `msg` text NOT NULL,
  PRIMARY KEY (`id`)
) ENGINE=MyISAM DEFAULT CHARSET=utf8;

CREATE TABLE `mailer` (
  `id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `sentTime` int(11) unsigned NOT NULL,
  `member_id` int(10) unsigned DEFAULT NULL,
  `type` varchar(255) NOT NULL,
  `details` text NOT NULL,
  PRIMARY KEY (`id`),
  KEY `member_id` (`member_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

-- 14.sql added login_count .. updated_at; 15.sql made m_name, m_mail, m_address and
-- m_suspend_reason NULLable.
CREATE TABLE `members` (
  `m_info` text,
  `m_id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `m_created` int(11) unsigned DEFAULT NULL,
  `m_deleted` int(11) DEFAULT NULL,
  `m_level` int(10) unsigned NOT NULL,
  `m_nick` varchar(63) NOT NULL,
  `m_name` varchar(255) DEFAULT NULL,
  `m_pass` varchar(255) NOT NULL,
  `m_mail` varchar(127) DEFAULT NULL,
  `m_address` text,
  `m_lang` varchar(16) DEFAULT NULL,
  `m_paid_until` varchar(32) DEFAULT NULL,
  `m_last_activity` int(10) unsigned DEFAULT NULL,
  `m_monthly_payment` int(10) unsigned NOT NULL DEFAULT '300',
  `m_mailer_enable` tinyint(1) unsigned NOT NULL DEFAULT '1',
  `m_playground_enable` tinyint(1) NOT NULL DEFAULT '1',
  `m_state` enum('active','suspended','deleted') NOT NULL DEFAULT 'active',
  `m_suspend_reason` varchar(100) DEFAULT NULL,
  `login_count` int(11) NOT NULL DEFAULT '0',
  `failed_login_count` int(11) NOT NULL DEFAULT '0',
  `last_request_at` datetime DEFAULT NULL,
  `current_login_at` datetime DEFAULT NULL,
  `last_login_at` datetime DEFAULT NULL,
  `current_login_ip` varchar(255) COLLATE utf8_unicode_ci DEFAULT NULL,
  `last_login_ip` varchar(255) COLLATE utf8_unicode_ci DEFAULT NULL,
  `created_at` datetime DEFAULT NULL,
  `updated_at` datetime DEFAULT NULL,
  PRIMARY KEY (`m_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

CREATE TABLE `members_changes` (
  `m_id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `m_created` int(11) NOT NULL,
  `m_type` enum('add','change') NOT NULL,
  `m_state` enum('awaiting','approved','denied','invalid','ignored') NOT NULL,
  `m_applicant` int(11) DEFAULT NULL,
  `m_changed_by` int(11) DEFAULT NULL,
  `m_changed_at` int(11) DEFAULT NULL,
  `m_nick` varchar(63) DEFAULT NULL,
  `m_name` varchar(255) DEFAULT NULL,
  `m_mail` varchar(127) DEFAULT NULL,
  `m_address` text,
  `m_year` int(11) DEFAULT NULL,
  `m_jabber` varchar(255) DEFAULT NULL,
  `m_how` varchar(500) DEFAULT NULL,
  `m_note` varchar(500) DEFAULT NULL,
  `m_distribution` int(11) DEFAULT NULL,
  `m_location` int(11) DEFAULT NULL,
  `m_currency` varchar(10) DEFAULT NULL,
  `m_addr` varchar(127) NOT NULL,
  `m_addr_reverse` varchar(255) NOT NULL,
  `m_reason` varchar(500) NOT NULL,
  `m_admin_response` varchar(500) DEFAULT NULL,
  `m_last_mail_id` int(11) NOT NULL DEFAULT '0',
  PRIMARY KEY (`m_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

CREATE TABLE `members_payments` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `m_id` int(11) NOT NULL,
  `acct_m_id` int(11) NOT NULL,
  `timestamp` bigint(20) NOT NULL,
  `change_from` bigint(20) NOT NULL,
  `change_to` bigint(20) NOT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

-- 14.sql folded node_node into servers (max_vps, ve_private, fstype); the shaper
-- migration added net_interface, max_tx, max_rx (235929600 B/s = 1800 Mbps).
CREATE TABLE `servers` (
  `server_id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `server_name` varchar(64) NOT NULL,
  `server_type` enum('node','storage','mailer') NOT NULL,
  `server_location` int(10) unsigned NOT NULL,
  `server_availstat` text,
  `server_ip4` varchar(127) NOT NULL,
  `server_maintenance` tinyint(1) NOT NULL DEFAULT '0',
  `max_vps` int(11) NOT NULL,
  `ve_private` varchar(255) CHARACTER SET utf8 COLLATE utf8_czech_ci NOT NULL DEFAULT '/vz/private/%veid%',
  `fstype` enum('ext4','zfs','zfs_compat') NOT NULL DEFAULT 'zfs',
  `net_interface` varchar(50) DEFAULT NULL,
  `max_tx` bigint(20) unsigned NOT NULL DEFAULT '235929600',
  `max_rx` bigint(20) unsigned NOT NULL DEFAULT '235929600',
  PRIMARY KEY (`server_id`),
  KEY `server_location` (`server_location`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

CREATE TABLE `servers_status` (
  `server_id` int(10) unsigned NOT NULL,
  `timestamp` int(10) unsigned NOT NULL,
  `ram_free_mb` int(10) unsigned DEFAULT NULL,
  `disk_vz_free_gb` float unsigned DEFAULT NULL,
  `cpu_load` float unsigned DEFAULT NULL,
  `daemon` tinyint(1) NOT NULL,
  `vpsadmin_version` varchar(63) DEFAULT NULL,
  `kernel` varchar(50) NOT NULL,
  PRIMARY KEY (`server_id`)
) ENGINE=MEMORY DEFAULT CHARSET=utf8;

-- Values are JSON text (PHP json_encode).
CREATE TABLE `sysconfig` (
  `cfg_name` varchar(127) NOT NULL,
  `cfg_value` text,
  PRIMARY KEY (`cfg_name`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

-- MyISAM: vpsAdmind 1.22 polls information_schema.tables.UPDATE_TIME of this table.
CREATE TABLE `transactions` (
  `t_id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `t_group` int(10) unsigned DEFAULT NULL,
  `t_time` int(10) unsigned DEFAULT NULL,
  `t_real_start` int(11) DEFAULT NULL,
  `t_end` int(11) DEFAULT NULL,
  `t_m_id` int(10) unsigned DEFAULT NULL,
  `t_server` int(10) unsigned DEFAULT NULL,
  `t_vps` int(10) unsigned DEFAULT NULL,
  `t_type` int(10) unsigned NOT NULL,
  `t_depends_on` int(11) DEFAULT NULL,
  `t_fallback` text,
  `t_urgent` tinyint(1) NOT NULL DEFAULT '0',
  `t_priority` int(11) NOT NULL DEFAULT '0',
  `t_success` int(10) unsigned NOT NULL,
  `t_done` tinyint(1) unsigned NOT NULL,
  `t_param` text,
  `t_output` text,
  PRIMARY KEY (`t_id`),
  KEY `t_server` (`t_server`)
) ENGINE=MyISAM DEFAULT CHARSET=utf8;

CREATE TABLE `transaction_groups` (
  `id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `is_clusterwide` tinyint(1) unsigned DEFAULT '0',
  `is_locationwide` tinyint(1) unsigned DEFAULT '0',
  `location_id` int(10) unsigned DEFAULT '0',
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

CREATE TABLE `transfered` (
  `tr_ip` varchar(127) NOT NULL,
  `tr_proto` varchar(4) NOT NULL,
  `tr_packets_in` bigint(63) unsigned NOT NULL DEFAULT '0',
  `tr_packets_out` bigint(63) unsigned NOT NULL DEFAULT '0',
  `tr_bytes_in` bigint(63) unsigned NOT NULL DEFAULT '0',
  `tr_bytes_out` bigint(63) unsigned NOT NULL DEFAULT '0',
  `tr_date` datetime NOT NULL,
  PRIMARY KEY (`tr_ip`,`tr_proto`,`tr_date`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

CREATE TABLE `transfered_recent` (
  `tr_ip` varchar(127) NOT NULL,
  `tr_proto` varchar(5) NOT NULL,
  `tr_packets_in` bigint(63) unsigned NOT NULL DEFAULT '0',
  `tr_packets_out` bigint(63) unsigned NOT NULL DEFAULT '0',
  `tr_bytes_in` bigint(63) unsigned NOT NULL DEFAULT '0',
  `tr_bytes_out` bigint(63) unsigned NOT NULL DEFAULT '0',
  `tr_date` datetime NOT NULL,
  PRIMARY KEY (`tr_ip`,`tr_proto`,`tr_date`)
) ENGINE=MEMORY DEFAULT CHARSET=utf8;

-- 14.sql dropped vps_specials_installed and replaced vps_nameserver with dns_resolver_id.
CREATE TABLE `vps` (
  `vps_id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `vps_created` int(11) unsigned DEFAULT NULL,
  `vps_expiration` int(11) DEFAULT NULL,
  `vps_deleted` int(11) DEFAULT NULL,
  `m_id` int(63) unsigned NOT NULL,
  `vps_hostname` varchar(255) DEFAULT 'vps',
  `vps_template` int(10) unsigned NOT NULL DEFAULT '1',
  `vps_info` mediumtext,
  `dns_resolver_id` int(11) DEFAULT NULL,
  `vps_server` int(11) unsigned NOT NULL,
  `vps_onboot` tinyint(1) unsigned NOT NULL DEFAULT '1',
  `vps_onstartall` tinyint(1) unsigned NOT NULL DEFAULT '1',
  `vps_backup_enabled` tinyint(1) unsigned NOT NULL DEFAULT '1',
  `vps_features_enabled` tinyint(1) NOT NULL DEFAULT '0',
  `vps_backup_export` int(11) NOT NULL,
  `vps_backup_lock` tinyint(4) NOT NULL DEFAULT '0',
  `vps_backup_exclude` text NOT NULL,
  `vps_config` text CHARACTER SET utf8 COLLATE utf8_czech_ci NOT NULL,
  PRIMARY KEY (`vps_id`),
  KEY `m_id` (`m_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

CREATE TABLE `vps_backups` (
  `vps_id` int(10) unsigned NOT NULL,
  `timestamp` int(10) unsigned NOT NULL,
  `size` bigint(20) unsigned NOT NULL,
  KEY `vps_id` (`vps_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

CREATE TABLE `vps_console` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `vps_id` int(11) NOT NULL,
  `key` varchar(64) NOT NULL,
  `expiration` datetime NOT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

CREATE TABLE `vps_has_config` (
  `vps_id` int(11) NOT NULL,
  `config_id` int(11) NOT NULL,
  `order` int(11) NOT NULL,
  PRIMARY KEY (`vps_id`,`config_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

-- 14.sql made vps_id NULLable (the legacy UI still wrote 0 for "free"); the shaper
-- migration added max_tx, max_rx (39321600 B/s = 300 Mbps) and class_id, numbered from 10.
CREATE TABLE `vps_ip` (
  `ip_id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `vps_id` int(10) unsigned DEFAULT NULL,
  `ip_v` int(10) unsigned NOT NULL DEFAULT '4',
  `ip_location` int(10) unsigned NOT NULL,
  `ip_addr` varchar(40) NOT NULL,
  `max_tx` bigint(20) unsigned NOT NULL DEFAULT '39321600',
  `max_rx` bigint(20) unsigned NOT NULL DEFAULT '39321600',
  `class_id` int(11) NOT NULL,
  PRIMARY KEY (`ip_id`),
  UNIQUE KEY `index_vps_ip_on_class_id` (`class_id`),
  KEY `vps_id` (`vps_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

CREATE TABLE `vps_status` (
  `id` int(10) unsigned NOT NULL AUTO_INCREMENT,
  `vps_id` int(10) unsigned NOT NULL,
  `timestamp` int(10) unsigned NOT NULL,
  `vps_up` tinyint(1) unsigned DEFAULT NULL,
  `vps_nproc` int(10) unsigned DEFAULT NULL,
  `vps_vm_used_mb` int(10) unsigned DEFAULT NULL,
  `vps_disk_used_mb` int(10) unsigned DEFAULT NULL,
  `vps_admin_ver` varchar(63) DEFAULT 'not set',
  PRIMARY KEY (`id`),
  UNIQUE KEY `vps_id_2` (`vps_id`),
  KEY `vps_id` (`vps_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

-- MyISAM as in scheme.sql. 14.sql renamed type -> data_type and made used/avail
-- signed with default 0.
CREATE TABLE `storage_export` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `member_id` int(11) NOT NULL,
  `root_id` int(11) NOT NULL,
  `dataset` varchar(500) COLLATE utf8_czech_ci NOT NULL,
  `path` varchar(500) COLLATE utf8_czech_ci NOT NULL,
  `quota` bigint(20) unsigned NOT NULL,
  `used` bigint(20) NOT NULL DEFAULT '0',
  `avail` bigint(20) NOT NULL DEFAULT '0',
  `user_editable` tinyint(4) NOT NULL DEFAULT '0',
  `default` enum('no','member','vps') COLLATE utf8_czech_ci NOT NULL DEFAULT 'no',
  `data_type` enum('data','backup') COLLATE utf8_czech_ci NOT NULL,
  PRIMARY KEY (`id`)
) ENGINE=MyISAM DEFAULT CHARSET=utf8 COLLATE=utf8_czech_ci;

-- 14.sql renamed type -> storage_layout and made used/avail signed with default 0.
CREATE TABLE `storage_root` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `node_id` int(11) NOT NULL,
  `label` varchar(255) COLLATE utf8_czech_ci NOT NULL,
  `root_dataset` varchar(500) COLLATE utf8_czech_ci NOT NULL,
  `root_path` varchar(500) COLLATE utf8_czech_ci NOT NULL,
  `storage_layout` enum('per_member','per_vps') COLLATE utf8_czech_ci NOT NULL,
  `user_export` tinyint(4) NOT NULL DEFAULT '0',
  `user_mount` enum('none','ro','rw') COLLATE utf8_czech_ci NOT NULL DEFAULT 'none',
  `quota` bigint(20) unsigned NOT NULL,
  `used` bigint(20) NOT NULL DEFAULT '0',
  `avail` bigint(20) NOT NULL DEFAULT '0',
  `share_options` varchar(500) COLLATE utf8_czech_ci NOT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8 COLLATE=utf8_czech_ci;

-- 14.sql renamed type -> mount_type. Rows with `default` = 1 are templates.
CREATE TABLE `vps_mount` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `vps_id` int(11) NOT NULL,
  `src` varchar(500) COLLATE utf8_czech_ci NOT NULL,
  `dst` varchar(500) COLLATE utf8_czech_ci NOT NULL,
  `mount_opts` varchar(255) COLLATE utf8_czech_ci NOT NULL,
  `umount_opts` varchar(255) COLLATE utf8_czech_ci NOT NULL,
  `mount_type` enum('bind','nfs') COLLATE utf8_czech_ci NOT NULL,
  `server_id` int(11) DEFAULT NULL,
  `storage_export_id` int(11) DEFAULT NULL,
  `mode` enum('ro','rw') COLLATE utf8_czech_ci NOT NULL,
  `cmd_premount` varchar(500) COLLATE utf8_czech_ci NOT NULL,
  `cmd_postmount` varchar(500) COLLATE utf8_czech_ci NOT NULL,
  `cmd_preumount` varchar(500) COLLATE utf8_czech_ci NOT NULL,
  `cmd_postumount` varchar(500) COLLATE utf8_czech_ci NOT NULL,
  `default` tinyint(4) NOT NULL DEFAULT '0',
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8 COLLATE=utf8_czech_ci;

-- MyISAM in production (scheme.sql says InnoDB; the runbook converts it).
CREATE TABLE `node_pubkey` (
  `node_id` int(11) NOT NULL,
  `type` enum('rsa','dsa') COLLATE utf8_czech_ci NOT NULL,
  `key` text COLLATE utf8_czech_ci NOT NULL,
  PRIMARY KEY (`node_id`,`type`)
) ENGINE=MyISAM DEFAULT CHARSET=utf8 COLLATE=utf8_czech_ci;

-- 14.sql
CREATE TABLE `environments` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `label` varchar(100) COLLATE utf8_unicode_ci NOT NULL,
  `domain` varchar(100) COLLATE utf8_unicode_ci NOT NULL,
  `created_at` datetime DEFAULT NULL,
  `updated_at` datetime DEFAULT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

-- 14.sql: PaperTrail
CREATE TABLE `versions` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `item_type` varchar(255) COLLATE utf8_unicode_ci NOT NULL,
  `item_id` int(11) NOT NULL,
  `event` varchar(255) COLLATE utf8_unicode_ci NOT NULL,
  `whodunnit` varchar(255) COLLATE utf8_unicode_ci DEFAULT NULL,
  `object` text COLLATE utf8_unicode_ci,
  `created_at` datetime DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `index_versions_on_item_type_and_item_id` (`item_type`,`item_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;

-- 15.sql
CREATE TABLE `schema_migrations` (
  `version` varchar(255) COLLATE utf8_unicode_ci NOT NULL,
  UNIQUE KEY `unique_schema_migrations` (`version`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8 COLLATE=utf8_unicode_ci;

-- API migration 20140615185520_add_api_tokens, exactly as it creates the table: no
-- index on token and no created_at (api_tokens.created_at is added later, by
-- 20150730152316, one of the migrations the runbook's final `rake db:migrate` runs).
CREATE TABLE `api_tokens` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `user_id` int(11) NOT NULL,
  `token` varchar(100) NOT NULL,
  `valid_to` datetime DEFAULT NULL,
  `label` varchar(255) DEFAULT NULL,
  `use_count` int(11) NOT NULL DEFAULT '0',
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;
