#!/usr/bin/python3
"""`pithos-migrate` (snf-pithos-backend 0.13: alembic 0.3 over snf_pithos) for a lab node
(shared research synnefo.md §3). Standard library only.

    pithos-migrate current | stamp REV | upgrade head | initdb

The database is PITHOS_BACKEND_DB_CONNECTION of the node's settings (a settings file that does
not run fails every command). On PostgreSQL alembic runs an upgrade in one transaction, so a
revision that fails leaves the database as it was, version row included.

165ba3fbfe53 turns account names into uuids: every name found in the tables (account paths,
modifying users, public and permission paths, permission holders, group owners and members) is
looked up in Astakos's user catalog with PITHOS_SERVICE_TOKEN; names Astakos does not know stay
as they are; an HTTP error aborts the upgrade. Two spellings of one email get one uuid and break
the unique account path: the upgrade aborts. Lab deviation, for speed over SSH: one catalog
request for all names instead of one per name.
"""

import sys
from urllib.parse import urlsplit

if __package__:
    from lab.core.tools import toolbox
    from lab.synnefo.tools import snf_common
else:
    import snf_common
    import toolbox

lit = snf_common.lit
# (revision, down revision, doc): the chain at 0.13.
REVISIONS = (
    ("8320b1c62d9", None, "create index nodes.parent"),
    ("230f8ce9c90f", "8320b1c62d9", "add nodes.latest_version"),
    ("3dd56e750a3", "230f8ce9c90f", "Fix latest_version"),
    ("165ba3fbfe53", "3dd56e750a3", "update account in paths"),
    ("2a309a9a3438", "165ba3fbfe53", "fix statistics negative population"),
    ("27381099d477", "2a309a9a3438", "alter public add column url"),
)
HEAD = REVISIONS[-1][0]
INFO = "INFO  [alembic.migration]"


def _shown_url(url):
    parts = urlsplit(url)
    if parts.password:
        url = url.replace(f":{parts.password}@", ":XXXXX@", 1)
    return url


def _current(db):
    if not db.value("SELECT to_regclass('alembic_version')"):
        db.run("CREATE TABLE alembic_version (version_num varchar(32) NOT NULL)")
    return db.value("SELECT version_num FROM alembic_version")


def _describe(rev):
    if rev is None:
        return "None"
    for name, down, doc in REVISIONS:
        if name == rev:
            return f"{down} -> {name}{' (head)' if name == HEAD else ''}, {doc}"
    return rev


def _names(db):
    """Every account name the tables hold, in the order 165ba3fbfe53 meets them."""
    return [r[0] for r in db.rows("""
        SELECT DISTINCT name FROM (
            SELECT split_part(path, '/', 1) AS name FROM nodes WHERE node != 0 AND path != ''
            UNION SELECT muser FROM versions WHERE muser != ''
            UNION SELECT split_part(path, '/', 1) FROM public
            UNION SELECT split_part(path, '/', 1) FROM xfeatures
            UNION SELECT split_part(value, ':', 1) FROM xfeaturevals WHERE value != '*'
            UNION SELECT owner FROM groups UNION SELECT member FROM groups) n
        WHERE name IS NOT NULL AND name != '' ORDER BY 1""")]


def _accounts_to_uuids(db, settings):
    """165ba3fbfe53's statements, after printing each name's uuid."""
    names = _names(db)
    if settings.get("PITHOS_AUTHENTICATION_USERS"):
        catalog = {n: n for n in names}
    else:
        url = (settings.get("PITHOS_USER_CATALOG_URL") or "").replace("user_catalogs", "service/api/user_catalogs")
        catalog = snf_common.user_catalogs(url, settings.get("PITHOS_SERVICE_TOKEN"), names) if names else {}
    for name in names:
        sys.stdout.write(f"\n{name} --> {catalog.get(name)}")
    sys.stdout.write("\n")
    for label in ("node paths", "version modification users", "public paths", "permission paths",
                  "permission holders", "group owners & members"):
        sys.stdout.write(f"Migrating {label}...\n")
    mapping = {n: u for n, u in catalog.items() if u and u != n}
    values = ", ".join(f"({lit(n)}, {lit(u)})" for n, u in sorted(mapping.items())) or "(NULL, NULL)"
    first = "split_part({0}, '/', 1)"
    return [
        "CREATE TEMP TABLE account_uuids (name varchar(256), uuid varchar(256)) ON COMMIT DROP",
        f"INSERT INTO account_uuids VALUES {values}",
        f"UPDATE nodes SET path = m.uuid || substr(path, length(m.name) + 1) FROM account_uuids m "
        f"WHERE {first.format('path')} = m.name AND node != 0",
        "UPDATE versions SET muser = m.uuid FROM account_uuids m WHERE versions.muser = m.name",
        f"UPDATE public SET path = m.uuid || substr(path, length(m.name) + 1) FROM account_uuids m "
        f"WHERE {first.format('path')} = m.name",
        f"UPDATE xfeatures SET path = m.uuid || substr(path, length(m.name) + 1) FROM account_uuids m "
        f"WHERE {first.format('path')} = m.name",
        "UPDATE xfeaturevals SET value = m.uuid || substr(value, length(m.name) + 1) FROM account_uuids m "
        "WHERE split_part(value, ':', 1) = m.name AND value != '*'",
        "UPDATE groups SET owner = m.uuid FROM account_uuids m WHERE groups.owner = m.name",
        "UPDATE groups SET member = m.uuid FROM account_uuids m WHERE groups.member = m.name",
    ]


STEPS = {
    "2a309a9a3438": lambda db, settings: ["UPDATE statistics SET population = 0 WHERE population < 0"],
    "27381099d477": lambda db, settings: ["ALTER TABLE public ADD COLUMN url varchar(2048) NULL",
                                          "CREATE UNIQUE INDEX idx_public_url ON public (url)"],
    "165ba3fbfe53": _accounts_to_uuids,
    # Older revisions create what 0.12.5 has already: run on an unstamped database they fail,
    # as alembic does when the tables exist but no revision says so.
    "8320b1c62d9": lambda db, settings: ["CREATE INDEX idx_nodes_parent ON nodes (parent)"],
    "230f8ce9c90f": lambda db, settings: ["ALTER TABLE nodes ADD COLUMN latest_version integer"],
    "3dd56e750a3": lambda db, settings: ["SELECT 1"],
}


def main(args):
    try:
        settings = snf_common.load_settings()
    except snf_common.SettingsError as exc:
        toolbox.err(str(exc))
        return 1
    url = settings.get("PITHOS_BACKEND_DB_CONNECTION") or settings.get("BACKEND_DB_CONNECTION", "")
    try:
        db = snf_common.url_db(url)
    except snf_common.CommandError as exc:
        toolbox.err(str(exc))
        return 1
    command = args[0] if args else ""
    toolbox.err(f"{INFO} Context impl PostgresqlImpl.\n{INFO} Will assume transactional DDL.")
    try:
        if command == "current":
            toolbox.out(f"Current revision for {_shown_url(url)}: {_describe(_current(db))}")
            return 0
        if command == "stamp" and len(args) == 2:
            if args[1] not in [r[0] for r in REVISIONS] + ["head"]:
                toolbox.err(f"FAILED: No such revision '{args[1]}'")
                return 1
            _current(db)
            rev = HEAD if args[1] == "head" else args[1]
            db.run(f"DELETE FROM alembic_version; INSERT INTO alembic_version VALUES ({lit(rev)})")
            return 0
        if command == "upgrade" and len(args) == 2 and args[1] == "head":
            return _upgrade(db, settings)
        if command == "initdb":
            toolbox.out("DB initialized.")
            return 1
    except snf_common.DatabaseError as exc:
        toolbox.err(f"sqlalchemy.exc.ProgrammingError: {exc}")
        return 1
    toolbox.err("usage: pithos-migrate [-h] {current,stamp,upgrade,downgrade,initdb} ...")
    return 2


def _upgrade(db, settings):
    current = _current(db)
    names = [r[0] for r in REVISIONS]
    start = 0 if current is None else names.index(current) + 1
    script = []
    for name, down, _doc in REVISIONS[start:]:
        toolbox.err(f"{INFO} Running upgrade {down} -> {name}")
        try:
            script += STEPS[name](db, settings)
        except snf_common.ApiError as exc:
            toolbox.err(f"Traceback (most recent call last):\n  ...\nException: ({exc.data!r}, {exc.status})")
            return 1
    if not script:
        return 0
    script.append(f"DELETE FROM alembic_version; INSERT INTO alembic_version VALUES ({lit(HEAD)})")
    db.run(";\n".join(script))
    return 0


if __name__ == "__main__":
    toolbox.main({"pithos-migrate": main, "pithos_migrate": main})
