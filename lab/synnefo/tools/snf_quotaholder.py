"""The quotaholder's calls (snf-quotaholder-app 0.13) on its tables in snf_apps, as
snf_lab_astakos.py serves them to the other hosts (shared research synnefo.md §1
"Quotaholder"). Standard library only.

Entities are users (entity = uuid, owner `system`, key `1`) and services; a holding is an
entity's resource with its policy (capacity and limits) and its usage counters. A call whose
token is not this host's QUOTAHOLDER_TOKEN is refused (403 "invalid token"). A call some items
of which are rejected is rolled back whole and answers the rejected indexes (ReturnButFail).

`call(settings, name, token, body) -> (status, data)`; `holdings(db)` reads them for tests.
"""

if __package__:
    from lab.synnefo.tools import snf_common
else:
    import snf_common

lit = snf_common.lit
ENTITY_KEY = "1"
COUNTERS = ("imported", "exported", "returned", "released")


def _entities(db, names):
    if not names:
        return set()
    return {r[0] for r in db.rows("SELECT entity FROM quotaholder_app_entity WHERE entity IN ("
                                  + ", ".join(lit(n) for n in names) + ")")}


def create_entity(db, body):
    """[[entity, owner, key, owner_key], ...]: the ones that exist already are rejected."""
    existing = _entities(db, [item[0] for item in body])
    rejected = [i for i, item in enumerate(body) if item[0] in existing]
    if rejected:
        return rejected
    if body:
        db.run(";\n".join(f"INSERT INTO quotaholder_app_entity (entity, owner, key) VALUES "
                          f"({lit(e)}, {lit(owner)}, {lit(key)})" for e, owner, key, *_ in body))
    return []


def set_quota(db, body):
    """[[entity, resource, key, quantity, capacity, import_limit, export_limit, flags], ...]:
    unknown entities are rejected; a holding is created with its policy, or its policy set."""
    existing = _entities(db, [item[0] for item in body])
    rejected = [i for i, item in enumerate(body) if item[0] not in existing]
    if rejected:
        return rejected
    statements = []
    for entity, resource, _key, quantity, capacity, import_limit, export_limit, flags in body:
        policy = f"{entity}:{resource}"
        statements.append(
            "INSERT INTO quotaholder_app_policy (policy, quantity, capacity, import_limit, export_limit) VALUES "
            f"({lit(policy)}, {int(quantity)}, {int(capacity)}, {int(import_limit)}, {int(export_limit)}) "
            "ON CONFLICT (policy) DO UPDATE SET quantity = EXCLUDED.quantity, capacity = EXCLUDED.capacity, "
            "import_limit = EXCLUDED.import_limit, export_limit = EXCLUDED.export_limit")
        statements.append(
            "INSERT INTO quotaholder_app_holding (entity, resource, policy, flags) VALUES "
            f"({lit(entity)}, {lit(resource)}, {lit(policy)}, {int(flags)}) "
            "ON CONFLICT (entity, resource) DO UPDATE SET policy = EXCLUDED.policy, flags = EXCLUDED.flags")
    if statements:
        db.run(";\n".join(statements))
    return []


def reset_holding(db, body):
    """[[entity, resource, key, imported, exported, returned, released], ...]: the usage of
    existing holdings set; an item whose entity or holding does not exist is rejected."""
    pairs = {(item[0], item[1]) for item in body}
    held = set()
    if pairs:
        held = {(e, r) for e, r in db.rows(
            "SELECT entity, resource FROM quotaholder_app_holding WHERE (entity, resource) IN ("
            + ", ".join(f"({lit(e)}, {lit(r)})" for e, r in pairs) + ")")}
    rejected = [i for i, item in enumerate(body) if (item[0], item[1]) not in held]
    if rejected:
        return rejected
    statements = [
        "UPDATE quotaholder_app_holding SET "
        + ", ".join(f"{name} = {int(value)}" for name, value in zip(COUNTERS, item[3:7], strict=True))
        + f" WHERE entity = {lit(item[0])} AND resource = {lit(item[1])}"
        + " AND (" + " OR ".join(f"{name} IS DISTINCT FROM {int(value)}"
                                 for name, value in zip(COUNTERS, item[3:7], strict=True)) + ")"
        for item in body]
    if statements:
        db.run(";\n".join(statements))
    return []


def get_quota(db, body):
    """[[entity, resource, key], ...] -> [[entity, resource, quantity, capacity, import_limit,
    export_limit, imported, exported, returned, released, flags], ...] of those that exist."""
    wanted = {(item[0], item[1]) for item in body}
    return [row for row in holdings(db) if (row[0], row[1]) in wanted]


def list_entities(db, body):
    return [r[0] for r in db.rows("SELECT entity FROM quotaholder_app_entity ORDER BY entity")]


def holdings(db, entities=None):
    """Every holding: [entity, resource, quantity, capacity, import_limit, export_limit,
    imported, exported, returned, released, flags] (numbers as ints)."""
    where = ""
    if entities is not None:
        if not entities:
            return []
        where = " WHERE h.entity IN (" + ", ".join(lit(e) for e in entities) + ")"
    rows = db.rows("SELECT h.entity, h.resource, p.quantity, p.capacity, p.import_limit, p.export_limit, "
                   "h.imported, h.exported, h.returned, h.released, h.flags FROM quotaholder_app_holding h "
                   "JOIN quotaholder_app_policy p ON p.policy = h.policy" + where + " ORDER BY 1, 2")
    return [[row[0], row[1], *(int(v) for v in row[2:])] for row in rows]


CALLS = {"create_entity": create_entity, "set_quota": set_quota, "reset_holding": reset_holding,
         "get_quota": get_quota, "list_entities": list_entities}


def call(settings, name, token, body):
    """(status, answer) of a quotaholder call on this host (the Astakos host)."""
    expected = settings.get("QUOTAHOLDER_TOKEN") or ""
    if not expected or token != expected:
        return 403, "invalid token"
    function = CALLS.get(name)
    if function is None:
        return 404, f"no call {name!r}"
    db = snf_common.apps_db(settings)
    if not db.value("SELECT to_regclass('quotaholder_app_holding')"):
        return 500, 'relation "quotaholder_app_holding" does not exist'
    return 200, function(db, body or [])
