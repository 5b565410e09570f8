#!/usr/bin/python3
"""`pithos-migrate` of Synnefo 0.13 (snf-pithos-backend's pithos/backends/migrate.py: alembic
0.3.6 with the backend's alembic.ini) for a lab node. Standard library only.

    pithos-migrate current | stamp REV | upgrade REV | history | initdb

Facts: shared research synnefo.md §3 (the wrapper, the revision chain, what 165ba3fbfe53 does,
the output formats), §7 (the revisions import snf-pithos-app), read against alembic rel_0_3_6
(command.py, migration.py, script.py, config.py) and the 0.13 revision files:
- the database is PITHOS_BACKEND_DB_CONNECTION (Plankton's BACKEND_DB_CONNECTION otherwise) of
  the node's settings, which are read first: a file that does not run fails every command;
- every command but initdb logs `Context impl PostgresqlImpl.` and `Will assume transactional
  DDL.` on stderr (alembic.ini's console handler); reading the current revision creates
  alembic_version when missing (so `current` leaves one, empty: "None");
- on PostgreSQL an upgrade is ONE transaction (transactional DDL): the revisions' statements,
  then the version row; whatever fails (a statement, an Astakos lookup) rolls it all back and
  Python prints the traceback (exit 1). alembic's own errors (`No such revision`) are printed
  as `  <message>` on stdout with exit 255 (util.err: sys.exit(-1));
- `upgrade head` on tables that exist without a revision ("current" None) runs the chain from
  its base: 8320b1c62d9 creates idx_nodes_parent, which 0.12.5 already has, so it fails there
  and nothing changes. That is why the runbook stamps 3dd56e750a3 first.
- 165ba3fbfe53 maps every name through Astakos's user catalog (PITHOS_SERVICE_TOKEN, at
  PITHOS_USER_CATALOG_URL with user_catalogs -> service/api/user_catalogs), row by row as the
  revision does: names Astakos does not know stay; two spellings of one email get one uuid and
  the second account path breaks unique idx_nodes_path. Lab deviation, for speed over SSH: one
  catalog request for all the names instead of one per name (same answers; an error surfaces
  at the first lookup, as it would).
"""

import re
import sys
from urllib.parse import urlsplit, urlunsplit

if __package__:  # imported on the host (lab.synnefo.tools.pithos_migrate)
    from lab.core.tools import toolbox
    from lab.synnefo.tools import snf_common
else:  # run as a program: toolbox.py and snf_common.py are next to it
    import snf_common
    import toolbox

lit = snf_common.lit
INFO = "INFO  [alembic.migration]"
PROG = "pithos-migrate"
# The 0.13 chain: (revision, down revision, the first paragraph of its docstring).
REVISIONS = (
    ("8320b1c62d9", None, "create index nodes.parent"),
    ("230f8ce9c90f", "8320b1c62d9", "alter nodes add column latest version"),
    ("3dd56e750a3", "230f8ce9c90f", "Fix latest_version"),
    ("165ba3fbfe53", "3dd56e750a3", "update account in paths"),
    ("2a309a9a3438", "165ba3fbfe53", "fix statistics negative population"),
    ("27381099d477", "2a309a9a3438", "alter public add column url"),
)
DOWN = {rev: down for rev, down, _ in REVISIONS}
DOC = {rev: doc for rev, _, doc in REVISIONS}
HEAD = REVISIONS[-1][0]
COMMANDS = ("branches", "current", "downgrade", "history", "init", "list_templates", "revision", "splice",
            "stamp", "upgrade")
USAGE = (f"usage: {PROG} [-h] [-c CONFIG] [-n NAME]\n"
         f"                      {{{','.join(COMMANDS)}}}\n                      ...")
VERSION_TABLE = "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"


class AlembicError(Exception):
    """alembic's util.CommandError."""


class Failed(Exception):
    """A statement PostgreSQL refused: the traceback's last line."""


# -- revisions (alembic/script.py) ----------------------------------------------------------------
def get_revision(rev_id):
    """The revision `rev_id` names (head, base, an id or a unique prefix of one); None: base."""
    if rev_id == "head":
        return HEAD
    if rev_id in (None, "base"):
        return None
    if rev_id in DOWN:
        return rev_id
    found = [rev for rev in DOWN if rev.startswith(rev_id)]
    if not found:
        raise AlembicError(f"No such revision '{rev_id}'")
    if len(found) > 1:
        raise AlembicError(f"Multiple revisions start with '{rev_id}', "
                           + ", ".join(f"'{r}'" for r in found[:3]) + "...")
    return found[0]


def describe(rev):
    """str(Script): `<down> -> <rev>[ (head)], <doc>`; None for no revision."""
    if rev is None:
        return "None"
    return f"{DOWN[rev]} -> {rev}{' (head)' if rev == HEAD else ''}, {DOC[rev]}"


def walk_down(upper, lower):
    """_iterate_revisions(upper, lower): upper first, down to (not including) lower."""
    lower, upper = get_revision(lower), get_revision(upper)
    revs, rev = [], upper
    while rev != lower:
        if rev is None:
            raise AlembicError(f"Revision {lower} is not an ancestor of {upper or 'base'}")
        revs.append(rev)
        rev = DOWN[rev]
    return revs


def upgrade_revs(destination, current):
    """[(down, rev)] to run, oldest first; `+N` runs the next N."""
    if re.fullmatch(r"[+-]\d+", destination):
        relative = int(destination)
        revs = walk_down("head", current)[-relative:] if relative else []
        if len(revs) != abs(relative):
            raise AlembicError(f"Relative revision {destination} didn't produce {abs(relative)} migrations")
    else:
        revs = walk_down(destination, current)
    return [(DOWN[rev], rev) for rev in reversed(revs)]


# -- short_url.encode_url (pithos/api/short_url.py), what 27381099d477 gives old public rows -----
URL_ALPHABET = "mn6j2c4rv8bpygw95z7hsdaetxuk3fq"
URL_BLOCK_SIZE = 24
ULTIMATE_ANSWER = 42  # pithos.backends.modular


def encode_url(n, min_length=5):
    mask = (1 << URL_BLOCK_SIZE) - 1
    shuffled = 0
    for bit in range(URL_BLOCK_SIZE):  # the low bits reversed
        if n & mask & (1 << bit):
            shuffled |= 1 << (URL_BLOCK_SIZE - 1 - bit)
    x, digits = (n & ~mask) | shuffled, ""
    while True:
        x, digit = divmod(x, len(URL_ALPHABET))
        digits = URL_ALPHABET[digit] + digits
        if not x:
            break
    return URL_ALPHABET[0] * (min_length - len(digits)) + digits


# -- the upgrade, as events: text to print and statements to run -------------------------------------
class Upgrade:
    """The events of one `upgrade`: ("out", text) for stdout, ("err", line) for stderr,
    ("sql", statement) for the transaction; printed in order once the transaction has run (up
    to the statement that failed, when one does)."""

    def __init__(self, db, settings):
        self.db, self.settings, self.events = db, settings, []
        self.catalog, self.looked_up = {}, None

    def print(self, text):
        self.events.append(("out", text))

    def sql(self, statement):
        self.events.append(("sql", statement))

    # 8320b1c62d9, 230f8ce9c90f, 3dd56e750a3: what 0.12.5's tables already have
    def rev_8320b1c62d9(self):
        self.sql("CREATE INDEX idx_nodes_parent ON nodes (parent)")

    def rev_230f8ce9c90f(self):
        self.sql("ALTER TABLE nodes ADD COLUMN latest_version INTEGER")
        self.sql("UPDATE nodes SET latest_version=(SELECT versions.serial FROM versions "
                 "WHERE nodes.node = versions.node ORDER BY versions.mtime LIMIT 1)")

    def rev_3dd56e750a3(self):
        self.sql("UPDATE nodes SET latest_version=(SELECT versions.serial FROM versions "
                 "WHERE nodes.node = versions.node ORDER BY versions.mtime DESC LIMIT 1)")

    # 165ba3fbfe53: account names to uuids
    def uuid_of(self, name):
        """get_uuid(): cached; the first lookup of each name printed (`print '\\n', name,
        '-->', uuid`). An empty name is no lookup (get_user_uuid returns None at once)."""
        if name in self.catalog:
            return self.catalog[name]
        if not name:
            uuid = None
        elif self.settings.get("PITHOS_AUTHENTICATION_USERS"):  # override_users: the name itself
            uuid = name
        else:
            uuid = self.lookup(name)
        self.catalog[name] = uuid
        self.print(f"\n{name} --> {uuid}\n")
        return uuid

    def lookup(self, name):
        if self.looked_up is None:  # the first real lookup asks for every name at once
            url = self.settings.get("PITHOS_USER_CATALOG_URL", "https://accounts.example.synnefo.org/user_catalogs/")
            url = url.replace("user_catalogs", "service/api/user_catalogs")
            self.looked_up = snf_common.user_catalogs(url, self.settings.get("PITHOS_SERVICE_TOKEN", ""),
                                                      sorted(n for n in self.names if n))
        return self.looked_up.get(name)

    def rev_165ba3fbfe53(self):
        db = self.db
        nodes = db.rows("SELECT node, path FROM nodes ORDER BY node")
        musers = [r[0] for r in db.rows("SELECT DISTINCT muser FROM versions ORDER BY muser")]
        public = db.rows("SELECT public_id, path FROM public ORDER BY public_id")
        xfeatures = db.rows("SELECT feature_id, path FROM xfeatures ORDER BY feature_id")
        xvals = db.rows("SELECT feature_id, key, value FROM xfeaturevals WHERE value != '*' "
                        "ORDER BY feature_id, key, value")
        groups = db.rows("SELECT owner, name, member FROM groups ORDER BY owner, name, member")
        self.names = ({p.partition("/")[0] for _, p in nodes + public + xfeatures} | set(musers)
                      | {v.partition(":")[0] for _, _, v in xvals} | {g[0] for g in groups} | {g[2] for g in groups})

        self.print("Migrating node paths...\n")
        for node, path in nodes:
            account, sep, rest = path.partition("/")
            match = self.uuid_of(account)
            if match:
                self.sql(f"UPDATE nodes SET path={lit(sep.join([match, rest]))} WHERE nodes.node = {node}")
        self.print("Migrating version modification users...\n")
        for muser in musers:
            match = self.uuid_of(muser)
            if match:
                self.sql(f"UPDATE versions SET muser={lit(match)} WHERE versions.muser = {lit(muser)}")
        self.print("Migrating public paths...\n")
        for public_id, path in public:
            account, sep, rest = path.partition("/")
            match = self.uuid_of(account)
            if match:
                self.sql(f"UPDATE public SET path={lit(sep.join([match, rest]))} WHERE public.public_id = {public_id}")
        self.print("Migrating permission paths...\n")
        for feature_id, path in xfeatures:
            account, sep, rest = path.partition("/")
            match = self.uuid_of(account)
            if match:
                self.sql(f"UPDATE xfeatures SET path={lit(sep.join([match, rest]))} "
                         f"WHERE xfeatures.feature_id = {feature_id}")
        self.print("Migrating permission holders...\n")
        for feature_id, key, value in xvals:
            account, sep, group = value.partition(":")
            match = self.uuid_of(account)
            if match:
                self.sql(f"UPDATE xfeaturevals SET value={lit(sep.join([match, group]))} WHERE "
                         f"xfeaturevals.feature_id = {feature_id} AND xfeaturevals.key = {key} "
                         f"AND xfeaturevals.value = {lit(value)}")
        self.print("Migrating group owners & members...\n")
        for owner, name, member in groups:
            owner_match, member_match = self.uuid_of(owner), self.uuid_of(member)
            if owner_match or member_match:
                values = ", ".join(f"{column}={lit(match)}" for column, match in
                                   (("owner", owner_match), ("member", member_match)) if match)
                self.sql(f"UPDATE groups SET {values} WHERE groups.owner = {lit(owner)} "
                         f"AND groups.name = {lit(name)} AND groups.member = {lit(member)}")

    def rev_2a309a9a3438(self):
        self.sql("UPDATE statistics SET population=0 WHERE statistics.population < 0")

    def rev_27381099d477(self):
        ids = [int(r[0]) for r in self.db.rows("SELECT public_id FROM public ORDER BY public_id")]
        self.sql("ALTER TABLE public ADD COLUMN url VARCHAR(2048)")
        self.sql("ALTER TABLE public ADD CONSTRAINT idx_public_url UNIQUE (url)")
        for public_id in ids:
            self.sql(f"UPDATE public SET url={lit(encode_url(public_id + ULTIMATE_ANSWER))} "
                     f"WHERE public.public_id = {public_id}")

    def run(self, commit=True):
        """Run the statements in one transaction: (index of the event that failed, PostgreSQL's
        error) or None. With commit=False the transaction is rolled back at the end on purpose
        (an upgrade that failed outside the database, to learn whether a statement before
        would have failed first)."""
        script = []
        for index, (kind, text) in enumerate(self.events):
            if kind == "sql":
                script.append(f"\\warn @@event {index}\n{text};")
        if not commit:
            script.append("\\warn @@event rollback\nDO $$ BEGIN RAISE EXCEPTION 'lab: roll back'; END $$;")
        if not script:
            return None
        try:
            self.db.run("\n".join(script))
        except snf_common.DatabaseError as exc:
            markers = re.findall(r"^@@event (\S+)$", str(exc), re.M)
            error = str(exc).split(f"@@event {markers[-1]}", 1)[-1].strip() if markers else str(exc)
            if markers and markers[-1] == "rollback":
                return None
            return (int(markers[-1]) if markers else len(self.events)), error
        return None

    def show(self, until=None):
        for kind, text in self.events[:until]:
            if kind == "out":
                sys.stdout.write(text)
                sys.stdout.flush()
            elif kind == "err":
                toolbox.err(text)


def database_error(error, statement=None):
    """SQLAlchemy's DBAPIError as psycopg2's exception class and PostgreSQL's message."""
    message = re.sub(r"^(psql:[^:]*:\d+: )?ERROR:\s+", "", error.strip(), flags=re.M)
    if "duplicate key" in message or "violates" in message:
        kind = "IntegrityError"
    elif "could not connect" in message or "connection to server" in message or "authentication" in message:
        kind = "OperationalError"
    else:
        kind = "ProgrammingError"
    shown = f"\n '{statement}' {{}}" if statement else " None None"
    return f"sqlalchemy.exc.{kind}: ({kind}) {message}{shown}"


# -- the commands -------------------------------------------------------------------------------------
def shown_url(url):
    """util.obfuscate_url_pw: the URL with its password as XXXXX."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:XXXXX@{netloc[1]}"))


def context_log():
    toolbox.err(f"{INFO} Context impl PostgresqlImpl.\n{INFO} Will assume transactional DDL.")


def has_version_table(db):
    return db.value("SELECT to_regclass('alembic_version') IS NOT NULL") == "t"


def current_revision(db):
    """The first row of alembic_version (None: no table, or empty)."""
    return db.value("SELECT version_num FROM alembic_version LIMIT 1") if has_version_table(db) else None


def version_update(old, new):
    """_update_current_rev: the version row from `old` to `new`."""
    if old == new:
        return None
    if new is None:
        return "DELETE FROM alembic_version"
    if old is None:
        return f"INSERT INTO alembic_version (version_num) VALUES ('{new}')"
    return f"UPDATE alembic_version SET version_num='{new}'"


def current(db, url):
    context_log()
    if not has_version_table(db):
        db.run(VERSION_TABLE)
    sys.stdout.write(f"Current revision for {shown_url(url)}: {describe(get_revision(current_revision(db)))}\n")
    return 0


def stamp(db, revision):
    context_log()
    missing = not has_version_table(db)
    old = current_revision(db)
    new = get_revision(revision)  # a bad one: the transaction (the table created) rolled back
    statements = ([VERSION_TABLE] if missing else []) + [s for s in [version_update(old, new)] if s]
    if statements:
        db.run(";\n".join(statements))
    return 0


def upgrade(db, settings, destination):
    context_log()
    missing = not has_version_table(db)
    old = current_revision(db)
    steps = upgrade_revs(destination, old)
    run = Upgrade(db, settings)
    if missing:
        run.sql(VERSION_TABLE)
    api_error = None
    try:
        for down, rev in steps:
            run.events.append(("err", f"{INFO} Running upgrade {down} -> {rev}"))
            getattr(run, f"rev_{rev}")()
        if steps:
            run.sql(version_update(old, steps[-1][1]))
    except snf_common.ApiError as exc:
        api_error = exc
    failed = run.run(commit=api_error is None)
    if failed is not None:
        index, error = failed
        run.show(index)
        statement = run.events[index][1] if index < len(run.events) else None
        return uncaught(database_error(error, statement))
    run.show()
    if api_error is not None:
        # synnefo.lib.astakos raised Exception(body, status); 165ba3fbfe53 re-raises it.
        if api_error.status == 0:
            return uncaught(f"error: {api_error.data}")
        return uncaught(f"Exception: ({api_error.data!r}, {api_error.status})")
    return 0


def history():
    for rev in walk_down("head", None):
        if rev == HEAD:
            sys.stdout.write("\n")
        sys.stdout.write(describe(rev) + "\n")
    return 0


# node.create_tables, groups, public and xfeatures' (0.13): what initdb creates where missing.
TABLES_0_13 = {
    "nodes": """CREATE TABLE nodes (node SERIAL PRIMARY KEY, parent INTEGER REFERENCES nodes (node) ON DELETE CASCADE
                ON UPDATE CASCADE, latest_version INTEGER, path VARCHAR(2048) NOT NULL);
                CREATE UNIQUE INDEX idx_nodes_path ON nodes (path); CREATE INDEX idx_nodes_parent ON nodes (parent)""",
    "policy": """CREATE TABLE policy (node INTEGER REFERENCES nodes (node) ON DELETE CASCADE ON UPDATE CASCADE,
                 key VARCHAR(128), value VARCHAR(256), PRIMARY KEY (node, key))""",
    "statistics": """CREATE TABLE statistics (node INTEGER REFERENCES nodes (node) ON DELETE CASCADE ON UPDATE CASCADE,
                     population INTEGER NOT NULL, size BIGINT NOT NULL, mtime NUMERIC(16, 6),
                     cluster INTEGER NOT NULL, PRIMARY KEY (node, cluster))""",
    "versions": """CREATE TABLE versions (serial SERIAL PRIMARY KEY, node INTEGER REFERENCES nodes (node)
                   ON DELETE CASCADE ON UPDATE CASCADE, hash VARCHAR(256), size BIGINT NOT NULL,
                   type VARCHAR(256) NOT NULL, source INTEGER, mtime NUMERIC(16, 6), muser VARCHAR(256) NOT NULL,
                   uuid VARCHAR(64) NOT NULL, checksum VARCHAR(256) NOT NULL, cluster INTEGER NOT NULL);
                   CREATE INDEX idx_versions_node_mtime ON versions (node, mtime);
                   CREATE INDEX idx_versions_node_uuid ON versions (uuid)""",
    "attributes": """CREATE TABLE attributes (serial INTEGER REFERENCES versions (serial) ON DELETE CASCADE
                     ON UPDATE CASCADE, domain VARCHAR(256), key VARCHAR(128), value VARCHAR(256),
                     PRIMARY KEY (serial, domain, key))""",
    "groups": """CREATE TABLE groups (owner VARCHAR(256), name VARCHAR(256), member VARCHAR(256),
                 PRIMARY KEY (owner, name, member)); CREATE INDEX idx_groups_member ON groups (member)""",
    "public": """CREATE TABLE public (public_id SERIAL PRIMARY KEY, path VARCHAR(2048) NOT NULL,
                 active BOOLEAN NOT NULL, url VARCHAR(2048));
                 CREATE UNIQUE INDEX idx_public_path ON public (path);
                 CREATE UNIQUE INDEX idx_public_url ON public (url)""",
    "xfeatures": """CREATE TABLE xfeatures (feature_id SERIAL PRIMARY KEY, path VARCHAR(2048));
                    CREATE UNIQUE INDEX idx_features_path ON xfeatures (path)""",
    "xfeaturevals": """CREATE TABLE xfeaturevals (feature_id INTEGER REFERENCES xfeatures (feature_id)
                       ON DELETE CASCADE, key INTEGER, value VARCHAR(256), PRIMARY KEY (feature_id, key, value))""",
}


def initdb(db):
    """initialize_db(): the tables created where missing (metadata.create_all leaves existing
    ones as they are), then `stamp head`; migrate.py exits 1 all the same."""
    sys.stdout.write("Initializing db.\n")
    sys.stdout.flush()
    existing = {r[0] for r in db.rows("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}
    script = [ddl for table, ddl in TABLES_0_13.items() if table not in existing]
    if script:
        db.run(";\n".join(script))
    stamp(db, "head")
    sys.stdout.write("DB initialized.\n")
    return 1


def uncaught(last_line):
    sys.stdout.flush()
    toolbox.err("Traceback (most recent call last):\n"
                f"  File \"/usr/bin/{PROG}\", line 9, in <module>\n"
                f"    load_entry_point('snf-pithos-backend==0.13', 'console_scripts', '{PROG}')()\n"
                "  File \"/usr/lib/python2.6/dist-packages/pithos/backends/migrate.py\", line 107, in main\n"
                "    alembic_main(argv, **kwargs)\n"
                f"  [... alembic's and the revision's frames left out by the lab ...]\n{last_line}")
    return 1


def usage_error(message):
    toolbox.err(f"{USAGE}\n{PROG}: error: {message}")
    return 2


def migrate(argv, settings):
    """pithos-migrate's arguments on the database of `settings` (the node's /etc/synnefo)."""
    argv = list(argv)
    if argv[:1] == ["initdb"]:
        db = _database(settings)
        return initdb(db) if isinstance(db, snf_common.Database) else db
    while argv and argv[0] in ("-c", "--config", "-n", "--name"):  # alembic's own options
        argv = argv[2:]
    if not argv:
        return usage_error("too few arguments")
    command, args = argv[0], argv[1:]
    if command not in COMMANDS:
        return usage_error(f"argument {{{','.join(COMMANDS)}}}: invalid choice: {command!r} (choose from "
                           + ", ".join(repr(c) for c in COMMANDS) + ")")
    wanted = {"current": 0, "history": 0, "stamp": 1, "upgrade": 1}.get(command)
    if wanted is None or any(a.startswith("--") for a in args):
        toolbox.err(f"{PROG} (lab): `{' '.join(argv)}` is not simulated")
        return 2
    if len(args) < wanted:
        return usage_error("too few arguments")
    if len(args) > wanted:
        return usage_error(f"unrecognized arguments: {' '.join(args[wanted:])}")
    try:
        if command == "history":
            return history()
        db = _database(settings)
        if not isinstance(db, snf_common.Database):
            return db
        if command == "current":
            return current(db, _url(settings))
        if command == "stamp":
            return stamp(db, args[0])
        return upgrade(db, settings, args[0])
    except AlembicError as exc:  # util.err
        sys.stdout.write(f"  {exc}\n")
        return 255
    except snf_common.DatabaseError as exc:
        return uncaught(database_error(str(exc)))


def _url(settings):
    return (settings.get("PITHOS_BACKEND_DB_CONNECTION") or settings.get("BACKEND_DB_CONNECTION")
            or "sqlite:////tmp/pithos-backend.db")


def _database(settings):
    """The database, connected (engine.connect(): before alembic logs anything), or the exit
    status of the failure."""
    try:
        db = snf_common.url_db(_url(settings))
        db.value("SELECT 1")
    except snf_common.CommandError as exc:
        toolbox.err(f"{PROG} (lab): {exc}")
        return 1
    except snf_common.DatabaseError as exc:
        return uncaught(database_error(str(exc)))
    return db


def pithos_migrate(args):
    """The program: the node's settings first (synnefo.settings is imported before anything).
    Without arguments, argparse's usage comes first (before anything is imported)."""
    if not args:
        return usage_error("too few arguments")
    try:
        settings = snf_common.load_settings()
    except snf_common.SettingsError as exc:
        toolbox.err(str(exc))
        return 1
    # Loading the revisions imports snf-pithos-app (pithos.api.settings in 165ba3fbfe53):
    # on a host without it every command fails (research §7).
    if snf_common.installed_version("snf-pithos-app") is None:
        return uncaught("ImportError: No module named api.settings")
    return migrate(args, settings)


if __name__ == "__main__":
    toolbox.main({PROG: pithos_migrate, "pithos_migrate": pithos_migrate})
