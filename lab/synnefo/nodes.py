"""The Synnefo hosts as 0.12.5 left them (written after the databases are seeded): each host's
/etc/synnefo/*.conf (Python, read in name order: shared research synnefo.md §6), dpkg's status
with its role's packages, and its services (init scripts, all running); on the Astakos host
also its Apache site with the /login redirection the runbook's 3.4 removes.

Facts: research §1 (the databases the settings name), §6 (which file holds which setting and
the 0.12 defaults), the runbook's package lists (seed 004, 3.1; the same lists as
include/scripts/synnefo/s3/install-packages.sh, which checks them).
"""

from __future__ import annotations

import os
from urllib.parse import unquote, urlsplit

from lab.core.config import LabConfig
from lab.core.nodes import write_file
from lab.core.topology import HOSTS

# The packages each role has (0.12.5 had no snf-quotaholder-app: 0.13 brings it).
PACKAGES_0_12 = {
    "astakos": ("snf-common", "snf-webproject", "snf-astakos-app"),
    "cyclades": ("snf-common", "snf-webproject", "snf-pithos-backend", "snf-cyclades-app"),
    "pithos": ("snf-common", "snf-webproject", "snf-pithos-backend", "snf-pithos-app", "snf-pithos-webclient"),
    "ganeti": ("snf-common", "snf-cyclades-gtools", "snf-pithos-backend"),
}
VERSION_0_12 = "0.12.5-1"
SERVICES = {
    "astakos": ("gunicorn", "apache2"),
    "cyclades": ("gunicorn", "snf-dispatcher", "apache2", "memcached"),
    "pithos": ("gunicorn", "apache2"),
    "ganeti": ("ganeti", "snf-ganeti-eventd"),
}


def dpkg_stanza(package: str, version: str) -> str:
    return (f"Package: {package}\nStatus: install ok installed\nPriority: optional\nSection: python\n"
            f"Installed-Size: 512\nMaintainer: GRNET <synnefo@grnet.gr>\nArchitecture: all\nVersion: {version}\n"
            f"Description: Synnefo component {package}\n")


def _database_url(server: str) -> dict:
    parts = urlsplit(server)
    return {"host": parts.hostname or "127.0.0.1", "port": parts.port or 5432,
            "user": unquote(parts.username or "postgres"), "password": unquote(parts.password or "")}


def settings_files(role: str, info: dict) -> dict[str, tuple[str, int]]:
    """{path: (text, mode)} of a role's /etc/synnefo (0640 where a password could be)."""
    db = _database_url(info["server"])
    auth = db["user"] + (f":{db['password']}" if db["password"] else "")
    pithos_url = f"postgresql://{auth}@{db['host']}:{db['port']}/{info['snf_pithos']}"
    database = (
        "## Django's database (snf-webproject)\n"
        "DATABASES = {\n"
        "    'default': {\n"
        "        'ENGINE': 'django.db.backends.postgresql_psycopg2',\n"
        f"        'NAME': {info['snf_apps']!r},\n"
        f"        'USER': {db['user']!r},\n"
        f"        'PASSWORD': {db['password']!r},\n"
        f"        'HOST': {db['host']!r},\n"
        f"        'PORT': {str(db['port'])!r},\n"
        "    }\n"
        "}\n")
    files = {"/etc/synnefo/10-snf-webproject-database.conf": (database, 0o640)}
    if role == "astakos":
        files["/etc/synnefo/20-snf-astakos-app-settings.conf"] = (
            "## Astakos settings (0.12)\n"
            "ASTAKOS_DEFAULT_FROM_EMAIL = 'noreply@synnefo.lab'\n"
            "ASTAKOS_DEFAULT_ADMIN_EMAIL = 'admin@synnefo.lab'\n"
            "ASTAKOS_COOKIE_DOMAIN = '.synnefo.lab'\n"
            "ASTAKOS_BASEURL = 'https://astakos'\n"
            "ASTAKOS_SITENAME = 'Synnefo lab'\n"
            "#ASTAKOS_EMAILCHANGE_ENABLED = False\n"
            "#QUOTAHOLDER_URL = ''\n"
            "#QUOTAHOLDER_TOKEN = ''\n", 0o644)
    elif role == "cyclades":
        quota = info["cyclades_user_quota"]
        files["/etc/synnefo/20-snf-cyclades-app-api.conf"] = (
            "## Cyclades API settings (0.12)\n"
            "ASTAKOS_URL = 'https://astakos/im/authenticate'\n"
            "MAX_VMS_PER_USER = 3\n"
            f"VMS_USER_QUOTA = {quota['VMS_USER_QUOTA']!r}\n"
            "MAX_NETWORKS_PER_USER = 5\n"
            f"NETWORKS_USER_QUOTA = {quota['NETWORKS_USER_QUOTA']!r}\n", 0o644)
        files["/etc/synnefo/20-snf-cyclades-app-plankton.conf"] = (
            "## Plankton (images in Pithos)\n"
            f"BACKEND_DB_CONNECTION = {pithos_url!r}\n", 0o640)
    elif role == "pithos":
        files["/etc/synnefo/20-snf-pithos-app-settings.conf"] = (
            "## Pithos settings (0.12)\n"
            f"PITHOS_BACKEND_DB_CONNECTION = {pithos_url!r}\n"
            "PITHOS_BACKEND_BLOCK_PATH = '/srv/pithos/data'\n"
            "PITHOS_BACKEND_QUOTA = 50*1024**3\n"
            "PITHOS_AUTHENTICATION_URL = 'https://astakos/im/authenticate'\n"
            "PITHOS_AUTHENTICATION_USERS = {}\n"
            "#PITHOS_USER_CATALOG_URL = 'https://accounts.example.synnefo.org/user_catalogs/'\n", 0o640)
    elif role == "ganeti":
        files["/etc/synnefo/20-snf-cyclades-gtools-backend.conf"] = (
            "## snf-ganeti-eventd\nAMQP_HOSTS = ['amqp://synnefo:lab@cyclades:5672']\n", 0o640)
    if role == "ganeti":
        del files["/etc/synnefo/10-snf-webproject-database.conf"]  # no Django on a Ganeti node
    return files


# Astakos's Apache site at 0.12: /login went to Astakos's redirect view, a redirection 0.13
# no longer wants (runbook 3.4 removes it; quick-install-admin-guide's apache2 setup).
ASTAKOS_SITE = """<VirtualHost _default_:443>
    ServerName astakos
    SSLEngine on
    SSLCertificateFile    /etc/ssl/certs/ssl-cert-snakeoil.pem
    SSLCertificateKeyFile /etc/ssl/private/ssl-cert-snakeoil.key

    RewriteEngine On
    RewriteRule ^/login(.*) /im/login/redirect$1 [PT,NE]

    ProxyPass        / http://localhost:8080/ retry=0
    ProxyPassReverse / http://localhost:8080/
    RequestHeader set X-Forwarded-Protocol "https"
</VirtualHost>
"""


def install(cfg: LabConfig, info: dict) -> None:
    """Write every Synnefo host's files (their nodes are built already)."""
    for host in HOSTS:
        roles = host.roles & set(PACKAGES_0_12)
        if not roles:
            continue
        (role,) = roles
        root = cfg.node_root(host.name)
        for path, (text, mode) in settings_files(role, info).items():
            write_file(root / path.lstrip("/"), text, mode)
        write_file(root / "var/lib/dpkg/status",
                   "\n".join(dpkg_stanza(p, VERSION_0_12) for p in PACKAGES_0_12[role]))
        if role == "astakos":
            write_file(root / "etc/apache2/sites-available/synnefo-ssl", ASTAKOS_SITE)
            enabled = root / "etc/apache2/sites-enabled/synnefo-ssl"
            enabled.parent.mkdir(parents=True, exist_ok=True)
            if not enabled.is_symlink():
                os.symlink("../sites-available/synnefo-ssl", enabled)
        for service in SERVICES[role]:
            write_file(root / f"etc/init.d/{service}", "#!/bin/sh\n# lab: service state is kept by `service`\n",
                       0o755)
            write_file(root / f"var/lib/lab/services/{service}", "running\n")
