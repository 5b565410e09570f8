"""Environments, the nodes in them and the default cluster resources of new objects, as the
DAG's `environments` and `default_resources` params describe them (pure; no Airflow, no I/O).

`environments` param: a list of
    {"label": "Production", "domain": "vpsfree.cz", "user_ip_ownership": true,
     "can_create_vps": false, "can_destroy_vps": false, "vps_lifetime": 0, "max_vps_count": 1,
     "server_types": ["node", "mailer"], "nodes": ["node9"], "default_resources": {"Vps": {"cpu": 4}}}
Environments are matched by label with the rows the add_storage migration left (one
'Production'). A server goes where `nodes` names it (short `node1` or full
`node1.prg.vpsfree.cz` name), else where its v1.22 `server_type` (node, storage, mailer) is
listed in `server_types`. `default_resources` param: {"Vps": {resource: value, ...},
"User": {...}}; an environment's own `default_resources` overrides single values.
The defaults below are the trigger form's: hypervisors and the API/mail host in Production,
storage servers (NAS and backup) in Storage, as on vpsFree.cz.
"""

from __future__ import annotations

import re

from airlift.params import raise_if
from vpsadmin.params import NODE_NAME

RESOURCES = ("memory", "swap", "cpu", "diskspace", "ipv4", "ipv6")
CLASSES = ("Vps", "User")
LABEL = re.compile(r"^[\w .-]{1,100}$")
DOMAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,98}[A-Za-z0-9])?$")
ENV_DEFAULTS = {"can_create_vps": False, "can_destroy_vps": False, "vps_lifetime": 0,
                "max_vps_count": 1, "user_ip_ownership": False}
ENV_COLUMNS = ("domain", *ENV_DEFAULTS)
SERVER_TYPES = ("node", "storage", "mailer")  # v1.22 servers.server_type

# The least resources every user gets per environment (the runbook script's MINIMUM[nil]), and
# the default resources of new VPSes and users: the same amounts.
DEFAULT_MINIMUMS = {"memory": 4096, "swap": 0, "cpu": 8, "diskspace": 60 * 1024, "ipv4": 1, "ipv6": 32}
DEFAULT_RESOURCES = {cls: dict(DEFAULT_MINIMUMS) for cls in CLASSES}
DEFAULT_ENVIRONMENTS = [
    {"label": "Production", "domain": "vpsfree.cz", "user_ip_ownership": True, "can_create_vps": False,
     "can_destroy_vps": False, "vps_lifetime": 0, "max_vps_count": 1, "server_types": ["node", "mailer"]},
    {"label": "Storage", "domain": "storage.vpsfree.cz", "server_types": ["storage"],
     "default_resources": {"Vps": {"cpu": 1, "memory": 1024}}},
]


def short_name(server_name: str) -> str:
    """2.0 builds a node's FQDN from its location and environment domains, so the name keeps
    only its first label (the runbook's SUBSTRING_INDEX(server_name, '.', 1))."""
    return server_name.split(".", 1)[0]


def _check_resources(label: str, values) -> list[str]:
    if not isinstance(values, dict):
        return [f"{label} must be an object of class name -> resources"]
    errors = []
    for cls, resources in values.items():
        if cls not in CLASSES:
            errors.append(f"{label}: unknown class {cls!r} (expected {', '.join(CLASSES)})")
            continue
        if not isinstance(resources, dict):
            errors.append(f"{label}.{cls} must be an object of resource -> value")
            continue
        for name, value in resources.items():
            if name not in RESOURCES:
                errors.append(f"{label}.{cls}: unknown resource {name!r}")
            elif not isinstance(value, int) or isinstance(value, bool) or value < 0:
                errors.append(f"{label}.{cls}.{name} must be a non-negative integer, got {value!r}")
    return errors


def check(environments, default_resources, servers: list[dict]) -> list[str]:
    """Every problem with the two params, given the servers table's rows (server_name,
    server_type)."""
    if not isinstance(environments, list) or not environments:
        return ["environments must be a non-empty list of environments"]
    errors, labels = [], set()
    for i, env in enumerate(environments):
        where = f"environments[{i}]"
        if not isinstance(env, dict):
            errors.append(f"{where} must be an object")
            continue
        label = env.get("label")
        if not isinstance(label, str) or not LABEL.match(label):
            errors.append(f"{where}.label {label!r} must be 1-100 letters, digits, spaces, '.-_'")
        elif label in labels:
            errors.append(f"{where}: label {label!r} given twice")
        labels.add(label)
        if not isinstance(env.get("domain"), str) or not DOMAIN.match(env["domain"]):
            errors.append(f"{where}.domain {env.get('domain')!r} is not a domain name")
        for key, default in ENV_DEFAULTS.items():
            value = env.get(key, default)
            if type(value) is not type(default) or (isinstance(value, int) and value < 0):
                errors.append(f"{where}.{key} must be a {type(default).__name__} >= 0, got {value!r}")
        unknown = set(env) - {"label", "nodes", "server_types", "default_resources", *ENV_COLUMNS}
        if unknown:
            errors.append(f"{where}: unknown keys {sorted(unknown)}")
        for node in env.get("nodes", []):
            if not isinstance(node, str) or not NODE_NAME.match(node):
                errors.append(f"{where}.nodes: {node!r} is not a node name")
        for server_type in env.get("server_types", []):
            if server_type not in SERVER_TYPES:
                errors.append(f"{where}.server_types: {server_type!r} is not one of {', '.join(SERVER_TYPES)}")
        errors += _check_resources(f"{where}.default_resources", env.get("default_resources", {}))
    errors += _check_resources("default_resources", default_resources)
    for cls in CLASSES:
        missing = [r for r in RESOURCES if r not in (default_resources or {}).get(cls, {})]
        if isinstance(default_resources, dict) and missing:
            errors.append(f"default_resources.{cls} lacks {', '.join(missing)}")
    if not errors:
        errors += placement(environments, servers)[1]
    return errors


def placement(environments: list[dict], servers: list[dict]) -> tuple[dict[str, str], list[str]]:
    """({server_name: environment label}, problems): by name where `nodes` names a server,
    else by its type; every server must land in exactly one environment."""
    by_name = {}
    for s in servers:
        by_name[s["server_name"]] = by_name[short_name(s["server_name"])] = s["server_name"]
    named, errors = {}, []
    for env in environments:
        for node in env.get("nodes", []):
            server = by_name.get(node) or by_name.get(short_name(node))
            if server is None:
                errors.append(f"environment {env['label']!r}: no server named {node!r}")
            elif server in named:
                errors.append(f"environment {env['label']!r}: {node!r} is already in {named[server]!r}")
            else:
                named[server] = env["label"]
    placed = {}
    for s in servers:
        name = s["server_name"]
        if name in named:
            placed[name] = named[name]
            continue
        by_type = [env["label"] for env in environments if s.get("server_type") in env.get("server_types", [])]
        if len(by_type) > 1:
            errors.append(f"{name}: server type {s.get('server_type')!r} is in {' and '.join(map(repr, by_type))}; "
                          "name the server in `nodes` of one of them")
        elif by_type:
            placed[name] = by_type[0]
    unplaced = [s["server_name"] for s in servers if s["server_name"] not in placed]
    if unplaced:
        errors.append("every node must be in an environment; not placed: " + ", ".join(unplaced))
    return placed, errors


def validate(environments, default_resources, servers: list[dict]) -> None:
    raise_if(check(environments, default_resources, servers))


def environment_rows(environments: list[dict]) -> list[dict]:
    """The environments table rows the param asks for (label + columns)."""
    return [{"label": e["label"], "domain": e["domain"],
             **{k: int(e.get(k, default)) for k, default in ENV_DEFAULTS.items()}}
            for e in environments]


def plan_environments(wanted: list[dict], existing: list[dict]) -> tuple[list[dict], list[dict], list[str]]:
    """(rows to insert, rows to update (with id), labels in the database the param omits)."""
    by_label = {e["label"]: e for e in existing}
    inserts, updates = [], []
    for row in wanted:
        current = by_label.get(row["label"])
        if current is None:
            inserts.append(row)
        elif any(int(current[c]) != row[c] if c != "domain" else current[c] != row[c] for c in ENV_COLUMNS):
            updates.append({**row, "id": current["id"]})
    names = {r["label"] for r in wanted}
    return inserts, updates, [e["label"] for e in existing if e["label"] not in names]


def plan_servers(environments: list[dict], env_ids: dict[str, int], servers: list[dict]) -> list[dict]:
    """UPDATE parameters for the servers whose environment or name must change (a full name in
    the param also matches once the server has been shortened)."""
    placed, errors = placement(environments, servers)
    raise_if(errors)
    changes = []
    for s in servers:
        name = s["server_name"]
        environment_id = env_ids[placed[name]]
        ve_private = v2_ve_private(s.get("ve_private"))
        if s["environment_id"] != environment_id or name != short_name(name) or ve_private != s.get("ve_private"):
            changes.append({"server_id": s["server_id"], "server_name": short_name(name),
                            "environment_id": environment_id, "ve_private": ve_private, "was": name,
                            "was_environment_id": s["environment_id"], "was_ve_private": s.get("ve_private")})
    return changes


def v2_ve_private(value: str | None) -> str | None:
    """servers.ve_private in 2.0's placeholder syntax: 1.22 wrote `%veid%`, vpsAdmind 2.0
    substitutes `%{veid}` (Utils::Vps#ve_private), so an unchanged value points every VPS at
    a path that does not exist (the integrity check reports it as a false high-severity fact).
    The runbook does not mention it."""
    return value.replace("%veid%", "%{veid}") if value else value


def plan_default_resources(environments: list[dict], default_resources: dict, env_ids: dict[str, int],
                           resource_ids: dict[str, int], existing: list[dict]) -> tuple[list[dict], list[dict]]:
    """(rows to insert, rows to update): one row per environment x class x resource."""
    have = {(r["environment_id"], r["class_name"], r["cluster_resource_id"]): r for r in existing}
    inserts, updates = [], []
    for env in environments:
        overrides = env.get("default_resources", {})
        for cls in CLASSES:
            values = {**default_resources[cls], **overrides.get(cls, {})}
            for resource in RESOURCES:
                key = (env_ids[env["label"]], cls, resource_ids[resource])
                row = {"environment_id": key[0], "class_name": cls, "cluster_resource_id": key[2],
                       "value": values[resource], "environment": env["label"], "resource": resource}
                if key not in have:
                    inserts.append(row)
                elif int(have[key]["value"]) != values[resource]:
                    updates.append({**row, "id": have[key]["id"]})
    return inserts, updates
