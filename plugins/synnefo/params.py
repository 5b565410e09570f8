"""The trigger parameters of `synnefo_upgrade_v013`, checked before anything changes.

Every problem is collected and raised at once (airlift.params.raise_if). What comes out is
the run's settings, a plain dict (it travels through XCom to every task) whose values are
safe to quote into a shell: host names match HOSTNAME, service names and paths strict
patterns. The databases are not params: they are the connections' (`synnefo_apps_db`,
`synnefo_pithos_db`), read by the first task and checked here too.
"""

from __future__ import annotations

import re

from airlift.params import check_hostname, raise_if

ROLES = ("astakos", "cyclades", "pithos")
# What the runbook's first step brings down on each host (the web services; the database
# servers keep running) and its last step starts again. Ganeti nodes run none of them.
DEFAULT_SERVICES = {
    "astakos": ["gunicorn", "apache2"],
    "cyclades": ["gunicorn", "snf-dispatcher", "apache2"],
    "pithos": ["gunicorn", "apache2"],
}
SERVICE = re.compile(r"^[a-z0-9][a-z0-9@._+-]{0,63}$")
ABS_PATH = re.compile(r"^/[A-Za-z0-9._+/-]{1,255}$")
DB_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
# A service's public base URL (written into settings files, as a Python literal).
BASE_URL = re.compile(r"^https?://[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]{0,200})?$")
EMAIL = re.compile(r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,253}$")
ADMIN_NAME = re.compile(r"^[^\x00-\x1f\x7f]{1,100}$")


def check_database(label: str, db: dict) -> list[str]:
    """A database as the DAG reaches it: server, port, user and name, each plain."""
    errors = check_hostname(f"{label} server", db.get("server"))
    port = db.get("port")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        errors.append(f"{label} port {port!r} is not a TCP port")
    for key in ("user", "database"):
        if not isinstance(db.get(key), str) or not DB_NAME.fullmatch(db[key]):
            errors.append(f"{label} {key} {db.get(key)!r} is not a plain PostgreSQL name")
    return errors


def check(params: dict, databases: dict[str, dict]) -> dict:
    """The settings of a run from its params and its databases ({"snf_apps": {...},
    "snf_pithos": {...}}, see check_database); ParamError listing every problem."""
    errors: list[str] = []
    hosts = {}
    for role in ROLES:
        hosts[role] = params.get(f"{role}_host")
        errors += check_hostname(f"{role}_host", hosts[role])
    ganeti = params.get("ganeti_nodes") or []
    if not isinstance(ganeti, list):
        errors.append(f"ganeti_nodes {ganeti!r} is not a list of host names")
        ganeti = []
    for i, node in enumerate(ganeti):
        errors += check_hostname(f"ganeti_nodes[{i}]", node)
    db_host = params.get("db_host") or hosts["astakos"]
    errors += check_hostname("db_host", db_host)
    backup_dir = params.get("backup_dir")
    if not isinstance(backup_dir, str) or not ABS_PATH.fullmatch(backup_dir) or "/../" in f"{backup_dir}/" \
            or "/./" in f"{backup_dir}/":
        errors.append(f"backup_dir {backup_dir!r} is not an absolute path of letters, digits and ._+-")
    services = params.get("services", DEFAULT_SERVICES)
    if not isinstance(services, dict) or set(services) - set(ROLES):
        errors.append(f"services {services!r} is not {{role: [service, ...]}} for roles {', '.join(ROLES)}")
        services = {}
    for role, names in services.items():
        if not isinstance(names, list) or not all(isinstance(n, str) and SERVICE.fullmatch(n) for n in names):
            errors.append(f"services of {role} {names!r} is not a list of service names")
    urls = {}
    for role in ("astakos", "cyclades"):
        url = params.get(f"{role}_url") or (f"https://{hosts[role]}" if isinstance(hosts[role], str) else "")
        if not isinstance(url, str) or not BASE_URL.fullmatch(url):
            errors.append(f"{role}_url {url!r} is not an http(s) base URL (host, port, path of letters, digits, ._~-)")
        urls[role] = str(url).rstrip("/")
    server_email = params.get("server_email") or ""
    if server_email and (not isinstance(server_email, str) or not EMAIL.fullmatch(server_email)):
        errors.append(f"server_email {server_email!r} is not an email address")
    admins = params.get("admins") or []
    if not isinstance(admins, list) or not all(
            isinstance(a, list) and len(a) == 2 and isinstance(a[0], str) and ADMIN_NAME.fullmatch(a[0])
            and isinstance(a[1], str) and EMAIL.fullmatch(a[1]) for a in admins):
        errors.append(f"admins {admins!r} is not a list of [name, email] pairs")
        admins = []
    for key in ("snf_apps", "snf_pithos"):
        if key not in databases:
            errors.append(f"no {key} database")
        else:
            errors += check_database(key, databases[key])
    raise_if(errors)
    return {
        "hosts": hosts, "ganeti_nodes": list(ganeti), "db_host": db_host, "backup_dir": backup_dir.rstrip("/"),
        "services": {role: list(services.get(role, [])) for role in ROLES}, "databases": databases,
        "astakos_url": urls["astakos"], "cyclades_url": urls["cyclades"], "server_email": server_email,
        "admins": [list(a) for a in admins],
    }


def service_hosts(settings: dict) -> list[dict]:
    """The hosts whose services the upgrade stops and starts, as a mapped task's items:
    {"server_name": role, "address", "services"}; hosts without services are left out."""
    return [{"server_name": role, "address": settings["hosts"][role], "services": settings["services"][role]}
            for role in ROLES if settings["services"][role]]


def package_hosts(settings: dict) -> list[dict]:
    """Every host the new packages go to, as a mapped task's items: {"server_name", "address",
    "role"} (include/scripts/synnefo/s3/install-packages.sh knows each role's packages)."""
    hosts = [{"server_name": role, "address": settings["hosts"][role], "role": role} for role in ROLES]
    return hosts + [{"server_name": f"ganeti{i}", "address": node, "role": "ganeti"}
                    for i, node in enumerate(settings["ganeti_nodes"], 1)]
