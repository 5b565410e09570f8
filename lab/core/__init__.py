"""The lab's core, with no product knowledge: where a lab keeps its state (config), its
MariaDB server (mysql), the hosts (topology), the node sandboxes and their tools (nodes,
tools/), SSH for every node (sshd), the lab process (server) and the settings of the
Airflow the project starts (airflow_env).

What a cluster runs (vpsAdmin today; OpenVZ and Synnefo later) lives in one package per
product beside this one (lab/vpsadmin/), listed in lab/core/products.py.
"""
