"""OpenVZ Legacy -> vpsAdminOS: the pure logic of the migration DAGs (no Airflow, no I/O):
trigger parameters, OpenVZ container configs and what can be converted, the converter's
report, interconnect networks, the maintenance window."""

# The converter's migration state files on the OpenVZ node (root's home: ~/.vpsadminos-converter).
STATE_DIR = "/root/.vpsadminos-converter"
# Where the DAG records, on the OpenVZ node, the containers it moved (the source is kept,
# stopped, unless deleted): a rerun finds them done.
MIGRATED_DIR = "/var/lib/airlift/openvz/migrated"
