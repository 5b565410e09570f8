"""Default Airflow connection ids (plain strings, so DAG files can name them without
importing the hooks and their drivers at parse time)."""

VPSADMIN_DB = "vpsadmin_db"    # the vpsAdmin MySQL database; `schema` names it
VPSADMIN_SSH = "vpsadmin_ssh"  # SSH credentials; host = the API/web host, extra `known_hosts`
VPSADMIN_API = "vpsadmin_api"  # the vpsAdmin 2.0 API over https: host, port, admin login/password
OPENVZ_SSH = "openvz_ssh"      # SSH (root, key, port, known_hosts) to the OpenVZ and vpsAdminOS nodes
SYNNEFO_SSH = "synnefo_ssh"    # SSH (root, key, port, known_hosts) to the Synnefo hosts and Ganeti nodes
SYNNEFO_APPS_DB = "synnefo_apps_db"      # PostgreSQL: snf_apps (Astakos, quotaholder, Cyclades); `schema` names it
SYNNEFO_PITHOS_DB = "synnefo_pithos_db"  # PostgreSQL: snf_pithos (the Pithos backend); `schema` names it
