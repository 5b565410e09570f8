-- API 5d85ee934 db/migrate/20150728160553_voluntary_node_attributes.rb
ALTER TABLE `servers` CHANGE `max_vps` `max_vps` int(11) DEFAULT NULL;
ALTER TABLE `servers` CHANGE `ve_private` `ve_private` varchar(255) DEFAULT '/vz/private/%{veid}/private';
