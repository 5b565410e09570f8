<?php
include '/etc/vpsadmin/config.php';
include WWW_ROOT.'vendor/autoload.php';
// lab stand-in
