"""The Synnefo node-tool simulators (0.13, as the upgrade runs them): `snf-manage` (its
commands split by component: snf_astakos.py, snf_cyclades.py, snf_pithos.py), `pithos-migrate`
(alembic over snf_pithos), and `snf-lab-astakos`, the lab's stand-in for Astakos's HTTP API
(user catalogs, quotaholder calls) that the other hosts' commands reach over SSH; `apt-get`
and `dpkg-query` (apt.py) for the 0.13 packages, and the runbook's step-2 scripts on the
Astakos host (astakos_scripts.py).

Like the core simulators they are standard-library Python, import lab/core/tools/toolbox.py and
reach PostgreSQL through the host's `psql` (snf_common.py), with the database named in the
node's /etc/synnefo/*.conf, which they read as Synnefo does (Python, executed in order).
"""

from pathlib import Path

TOOLS_DIR = Path(__file__).resolve().parent
# Tool name on the node's PATH -> the simulator here that answers to it.
TOOLS = {
    "snf-manage": "snf_manage.py",
    "pithos-migrate": "pithos_migrate.py",
    "snf-lab-astakos": "snf_lab_astakos.py",
    "apt-get": "apt.py", "dpkg-query": "apt.py",
    "find_astakos_users_with_conflicting_emails.py": "astakos_scripts.py",
    "delete_astakos_users.py": "astakos_scripts.py",
}
