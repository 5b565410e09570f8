"""The quotaholder of Synnefo 0.13 (snf-quotaholder-app, app `quotaholder_app`) for the lab: the
calls its HTTP API answers, acting on its tables in snf_apps. snf_lab_astakos.py serves them to
the other hosts (over SSH); the Astakos commands (snf_astakos.py) call `call` directly, as the
Astakos host's own client would reach the quotaholder beside it.

Facts: shared research synnefo.md §1 "Quotaholder" (tables, the token, ReturnButFail rolling
back the whole call, `reset_holding` rejecting unknown entities or holdings, users as entities
with owner `system` and key '1'); the call semantics follow 0.13's quotaholder_app/callpoint.py
(read in grnet/synnefo at tag 0.13):
- create_entity [entity, owner, key, ownerkey]: rejected (index) when the owner with that key
  does not exist or the entity already does;
- get_entity [entity, key] -> [entity, owner] of those with that key;
- list_entities {entity, key} -> the entities it owns (a missing one: NoEntityError);
- set_quota [entity, resource, key, quantity, capacity, import_limit, export_limit, flags]:
  each holding gets a new policy (created if missing); rejected [entity, resource] when the
  entity does not exist with that key;
- get_quota [entity, resource, key] -> [entity, resource, quantity, capacity, import_limit,
  export_limit, imported, exported, returned, released, flags];
- get_holding [entity, resource, key] -> [entity, resource, policy, imported, exported,
  returned, released, flags];
- reset_holding [entity, resource, key, imported, exported, returned, released]: the counters
  set (and their -ing twins); rejected (index) when the entity with that key or the holding
  does not exist.
A call with rejects changes nothing and answers 200 with them (ReturnButFail); one without
answers 200 with [] (or its data). Numbers are exact integers (numeric(38,0) columns).

Standard library only (it runs inside a node sandbox).
"""

import uuid

if __package__:
    from lab.synnefo.tools import snf_common
else:
    import snf_common

lit = snf_common.lit
ENTITY_KEY = "1"  # astakos' ENTITY_KEY: the key of every user and service entity
QH_PRACTICALLY_INFINITE = 10 ** 32
COUNTERS = ("imported", "exported", "returned", "released")


class CallError(Exception):
    """A quotaholder CallError: HTTP 450 with its class name and message."""

    def __init__(self, name, message):
        super().__init__(message)
        self.name = name


def call(settings, call_name, token, body):
    """One quotaholder call as the HTTP view answers it: (status, data). The token must be the
    host's QUOTAHOLDER_TOKEN (else 403 "invalid token", as views.py compares X-Auth-Token).
    `body` is the call's list of rows, or a dict holding it under the call's name (the
    client's keyword arguments); list_entities takes {"entity", "key"}."""
    expected = settings.get("QUOTAHOLDER_TOKEN")
    if not expected or token != expected:  # none configured: nobody gets in
        return 403, "invalid token"
    function = CALLS.get(call_name)
    if function is None:
        return 450, {"call_error": "CorruptedError", "error_message": f"cannot find call '{call_name}'"}
    if call_name == "list_entities":
        body = body if isinstance(body, dict) else {}
    elif isinstance(body, dict):
        body = body.get(call_name, [])
    try:
        return 200, function(snf_common.apps_db(settings), body or ([] if call_name != "list_entities" else {}))
    except CallError as exc:
        return 450, {"call_error": exc.name, "error_message": str(exc)}
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
        # rows of the wrong shape: the API spec's canonicalization refuses them (InvalidDataError)
        return 400, {"call_error": "InvalidDataError", "error_message": f"{type(exc).__name__}: {exc}"}


# -- reading -------------------------------------------------------------------------------
def entities(db):
    """{entity: (owner, key)} of every quotaholder entity."""
    return {e: (owner, key) for e, owner, key in db.rows(
        "SELECT entity, owner_id, key FROM quotaholder_app_entity")}


def holdings(db, entity=None):
    """{(entity, resource): {policy, quantity, capacity, import_limit, export_limit, imported,
    exported, returned, released, flags}} of every holding (of one entity if given), numbers
    as ints: what tests and the other simulators read the quotaholder's state with."""
    where = f"WHERE h.entity_id = {lit(entity)}" if entity is not None else ""
    found = {}
    for row in db.rows(
            "SELECT h.entity_id, h.resource, h.policy_id, p.quantity, p.capacity, p.import_limit, "
            "p.export_limit, h.imported, h.exported, h.returned, h.released, h.flags "
            "FROM quotaholder_app_holding h JOIN quotaholder_app_policy p ON p.policy = h.policy_id "
            f"{where} ORDER BY h.entity_id, h.resource"):
        names = ("quantity", "capacity", "import_limit", "export_limit", *COUNTERS, "flags")
        found[(row[0], row[1])] = {"policy": row[2], **{n: int(v) for n, v in zip(names, row[3:], strict=True)}}
    return found


def _keys_of(db, names):
    """{entity: key} of the named entities that exist."""
    names = sorted({str(n) for n in names})
    if not names:
        return {}
    return dict(db.rows("SELECT entity, key FROM quotaholder_app_entity WHERE entity IN ("
                        + ", ".join(lit(n) for n in names) + ")"))


def _holdings_of(db, names):
    """{(entity, resource): policy} of the named entities' holdings."""
    names = sorted({str(n) for n in names})
    if not names:
        return {}
    return {(e, r): p for e, r, p in db.rows(
        "SELECT entity_id, resource, policy_id FROM quotaholder_app_holding WHERE entity_id IN ("
        + ", ".join(lit(n) for n in names) + ")")}


def _number(value):
    """An exact integer of a JSON number or numeric string (the client sends either)."""
    return int(value)


# -- the calls -----------------------------------------------------------------------------
def create_entity(db, rows):
    keys = _keys_of(db, [r[0] for r in rows] + [r[1] for r in rows])
    rejected, statements = [], []
    for index, (entity, owner, key, ownerkey) in enumerate(rows):
        if keys.get(owner) != ownerkey or entity in keys:
            rejected.append(index)
            continue
        keys[entity] = key  # created: a second row for it in this call is rejected
        statements.append("INSERT INTO quotaholder_app_entity (entity, owner_id, key) VALUES "
                          f"({lit(entity)}, {lit(owner)}, {lit(key)})")
    if rejected:
        return rejected  # ReturnButFail: the whole call rolled back
    if statements:
        db.run(";\n".join(statements))
    return []


def get_entity(db, rows):
    wanted = [(str(e), str(k)) for e, k in rows]
    if not wanted:
        return []
    found = {e: (owner, key) for e, owner, key in db.rows(
        "SELECT entity, owner_id, key FROM quotaholder_app_entity WHERE entity IN ("
        + ", ".join(lit(e) for e, _ in wanted) + ")")}
    return [[e, found[e][0]] for e, k in wanted if e in found and found[e][1] == k]


def list_entities(db, body):
    entity, key = body.get("entity"), body.get("key")
    if db.value(f"SELECT 1 FROM quotaholder_app_entity WHERE entity = {lit(entity)} AND key = {lit(key)}") is None:
        raise CallError("NoEntityError", f"Entity '{entity}' does not exist")
    return [e for (e,) in db.rows(
        f"SELECT entity FROM quotaholder_app_entity WHERE owner_id = {lit(entity)} AND entity <> owner_id "
        "ORDER BY entity")]


def set_quota(db, rows):
    keys = _keys_of(db, [r[0] for r in rows])
    current = _holdings_of(db, [r[0] for r in rows])
    rejected, statements, replaced = [], [], set()
    for entity, resource, key, quantity, capacity, import_limit, export_limit, flags in rows:
        if keys.get(entity) != key:
            rejected.append([entity, resource])
            continue
        policy = f"policy_{uuid.uuid4().hex}"  # newname('policy_'): a fresh one per holding
        statements.append(
            "INSERT INTO quotaholder_app_policy (policy, quantity, capacity, import_limit, export_limit) VALUES "
            f"({lit(policy)}, {_number(quantity)}, {_number(capacity)}, {_number(import_limit)}, "
            f"{_number(export_limit)})")
        statements.append(
            "INSERT INTO quotaholder_app_holding (entity_id, resource, policy_id, flags, imported, importing, "
            'exported, exporting, returned, "returning", released, releasing) VALUES '
            f"({lit(entity)}, {lit(resource)}, {lit(policy)}, {_number(flags)}, 0, 0, 0, 0, 0, 0, 0, 0) "
            "ON CONFLICT (entity_id, resource) DO UPDATE SET policy_id = EXCLUDED.policy_id, flags = EXCLUDED.flags")
        if (entity, resource) in current:
            replaced.add(current[(entity, resource)])
    if rejected:
        return rejected
    if replaced:  # the old policies no holding refers to any more
        statements.append("DELETE FROM quotaholder_app_policy p WHERE p.policy IN ("
                          + ", ".join(lit(p) for p in sorted(replaced)) + ") AND NOT EXISTS "
                          "(SELECT 1 FROM quotaholder_app_holding h WHERE h.policy_id = p.policy)")
    if statements:
        db.run(";\n".join(statements))
    return []


def _asked(db, rows, fields):
    """The asked holdings (entity, resource, key) that exist, with `fields` of each."""
    found = holdings(db) if rows else {}
    keys = _keys_of(db, [r[0] for r in rows])
    return [[entity, resource, *(found[entity, resource][f] for f in fields)] for entity, resource, key in rows
            if (entity, resource) in found and keys.get(entity) == key]


def get_quota(db, rows):
    return _asked(db, rows, ("quantity", "capacity", "import_limit", "export_limit", "imported", "exported",
                             "returned", "released", "flags"))


def get_holding(db, rows):
    return _asked(db, rows, ("policy", "imported", "exported", "returned", "released", "flags"))


def reset_holding(db, rows):
    keys = _keys_of(db, [r[0] for r in rows])
    current = _holdings_of(db, [r[0] for r in rows])
    rejected, statements = [], []
    for index, row in enumerate(rows):
        entity, resource, key, imported, exported, returned, released = row
        if keys.get(entity) != key or (entity, resource) not in current:
            rejected.append(index)
            continue
        values = dict(zip(COUNTERS, (_number(imported), _number(exported), _number(returned), _number(released)),
                          strict=True))
        # The counter and its -ing twin both take the value (callpoint.py reset_holding).
        sets = ", ".join(f'{name} = {v}, "{name[:-2]}ing" = {v}' for name, v in values.items())
        statements.append(f"UPDATE quotaholder_app_holding SET {sets} "
                          f"WHERE entity_id = {lit(entity)} AND resource = {lit(resource)}")
    if rejected:
        return rejected
    if statements:
        db.run(";\n".join(statements))
    return []


CALLS = {
    "create_entity": create_entity, "get_entity": get_entity, "list_entities": list_entities,
    "set_quota": set_quota, "get_quota": get_quota, "get_holding": get_holding, "reset_holding": reset_holding,
}
