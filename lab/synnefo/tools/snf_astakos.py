"""snf-manage's Astakos commands (0.13) and Django's syncdb/migrate on snf_apps, for the lab
(shared research synnefo.md §1, §4, §5, §7). Standard library only. Each function takes
(argv, settings), prints what the real command prints and returns its exit status, raising
snf_common.CommandError for `Error: ...`.

syncdb and migrate apply what the node's installed apps need: Astakos's `im` (im 0015-0024)
where snf-astakos-app is installed, Cyclades's `db` (0059-0061) where snf-cyclades-app is,
the quotaholder's tables (syncdb: no South migrations) where snf-quotaholder-app is. A migrate
run is one transaction: a failure (the im 0016 prompt unanswered, for one) leaves the 0.12
database as it was.
"""

import optparse
import sys
import uuid

if __package__:
    from lab.core.tools import toolbox
    from lab.synnefo.tools import snf_common
else:
    import snf_common
    import toolbox

CommandError = snf_common.CommandError
lit = snf_common.lit
QH_PRACTICALLY_INFINITE = 10**32
ENTITY_KEY = "1"

# -- schema: what 0.13's migrations and syncdb add ---------------------------------------------
IM_MIGRATIONS = (
    ("0015_auto__add_field_astakosuser_uuid", """
        ALTER TABLE auth_user ALTER COLUMN username TYPE varchar(75);
        ALTER TABLE im_astakosuser ADD COLUMN uuid varchar(255) NULL UNIQUE;
        ALTER TABLE im_astakosuser ADD COLUMN disturbed_quota boolean NOT NULL DEFAULT false;
        ALTER TABLE im_service ADD COLUMN "order" integer NOT NULL DEFAULT 0;
        CREATE TABLE im_resource (id serial PRIMARY KEY, name varchar(255) NOT NULL,
            service_id integer NOT NULL REFERENCES im_service (id) DEFERRABLE INITIALLY DEFERRED,
            "desc" text NULL, unit varchar(255) NULL, "group" varchar(255) NULL,
            uplimit numeric(38, 0) NOT NULL DEFAULT 0, UNIQUE (service_id, name));
        CREATE TABLE im_astakosuserquota (id serial PRIMARY KEY,
            user_id integer NOT NULL REFERENCES im_astakosuser (user_ptr_id) DEFERRABLE INITIALLY DEFERRED,
            resource_id integer NOT NULL REFERENCES im_resource (id) DEFERRABLE INITIALLY DEFERRED,
            capacity numeric(38, 0) NOT NULL, quantity numeric(38, 0) NOT NULL DEFAULT 0,
            import_limit numeric(38, 0) NOT NULL DEFAULT 0, export_limit numeric(38, 0) NOT NULL DEFAULT 0,
            UNIQUE (resource_id, user_id));
        CREATE TABLE im_astakosuserauthprovider (id serial PRIMARY KEY,
            user_id integer NOT NULL REFERENCES im_astakosuser (user_ptr_id) DEFERRABLE INITIALLY DEFERRED,
            module varchar(255) NOT NULL, auth_backend varchar(255) NOT NULL,
            identifier varchar(255) NULL, active boolean NOT NULL DEFAULT true, created timestamp with time zone
            NOT NULL DEFAULT now());"""),
    ("0016_auth_providers_and_projects", None),  # data migration: see _im_0016
    ("0017_auto__add_chain__add_serial", """
        CREATE TABLE im_chain (chain serial PRIMARY KEY);
        CREATE TABLE im_serial (serial serial PRIMARY KEY);"""),
    ("0018_auto__add_projectapplication__add_project", """
        CREATE TABLE im_projectapplication (id serial PRIMARY KEY,
            applicant_id integer NULL REFERENCES im_astakosuser (user_ptr_id) DEFERRABLE INITIALLY DEFERRED,
            owner_id integer NULL REFERENCES im_astakosuser (user_ptr_id) DEFERRABLE INITIALLY DEFERRED,
            chain integer NOT NULL, name varchar(80) NOT NULL, state varchar(80) NOT NULL DEFAULT 'Pending',
            issue_date timestamp with time zone NOT NULL DEFAULT now(),
            start_date timestamp with time zone NULL, end_date timestamp with time zone NOT NULL);
        CREATE TABLE im_project (id serial PRIMARY KEY,
            application_id integer NOT NULL UNIQUE REFERENCES im_projectapplication (id) DEFERRABLE INITIALLY DEFERRED,
            name varchar(80) NULL UNIQUE, state integer NOT NULL DEFAULT 1,
            creation_date timestamp with time zone NOT NULL DEFAULT now(),
            deactivation_date timestamp with time zone NULL);"""),
    ("0019_auto__add_projectmembership", """
        CREATE TABLE im_projectmembership (id serial PRIMARY KEY,
            person_id integer NOT NULL REFERENCES im_astakosuser (user_ptr_id) DEFERRABLE INITIALLY DEFERRED,
            project_id integer NOT NULL REFERENCES im_project (id) DEFERRABLE INITIALLY DEFERRED,
            state integer NOT NULL DEFAULT 0, acceptance_date timestamp with time zone NULL,
            UNIQUE (person_id, project_id));"""),
    ("0020_auto__add_resourcemetadata", """
        CREATE TABLE im_resourcemetadata (id serial PRIMARY KEY, key varchar(255) NOT NULL UNIQUE,
            value varchar(255) NOT NULL);"""),
    ("0021_auto__add_usersetting", """
        CREATE TABLE im_usersetting (id serial PRIMARY KEY,
            user_id integer NOT NULL REFERENCES im_astakosuser (user_ptr_id) DEFERRABLE INITIALLY DEFERRED,
            setting varchar(255) NOT NULL, value integer NOT NULL, UNIQUE (user_id, setting));"""),
    ("0022_auto__add_index_astakosuser_uuid", "CREATE INDEX im_astakosuser_disturbed ON im_astakosuser "
                                             "(disturbed_quota);"),
    ("0023_auto__add_field_projectapplication_limit_on_members_number", """
        ALTER TABLE im_projectapplication ADD COLUMN limit_on_members_number integer NULL;"""),
    ("0024_auto__chg_field_astakosuser_uuid", "SELECT 1;"),
)
DB_MIGRATIONS = (
    ("0059_auto__add_quotaholderserial__add_field_virtualmachine_serial", """
        CREATE TABLE db_quotaholderserial (serial bigserial PRIMARY KEY, pending boolean NOT NULL DEFAULT true,
            accepted boolean NOT NULL DEFAULT false, rejected boolean NOT NULL DEFAULT false);
        ALTER TABLE db_virtualmachine ADD COLUMN serial_id bigint NULL
            REFERENCES db_quotaholderserial (serial) DEFERRABLE INITIALLY DEFERRED;
        ALTER TABLE db_network ADD COLUMN serial_id bigint NULL
            REFERENCES db_quotaholderserial (serial) DEFERRABLE INITIALLY DEFERRED;"""),
    ("0060_auto__add_field_network_flavor", """
        ALTER TABLE db_network ADD COLUMN flavor varchar(32) NOT NULL DEFAULT 'MAC_FILTERED';"""),
    ("0061_network_flavors", "UPDATE db_network SET flavor = 'CUSTOM' WHERE public;"),
)
QUOTAHOLDER_TABLES = """
    CREATE TABLE quotaholder_app_entity (entity varchar(4096) PRIMARY KEY, owner varchar(4096) NOT NULL,
        key varchar(4096) NOT NULL);
    CREATE TABLE quotaholder_app_policy (policy varchar(4096) PRIMARY KEY, quantity numeric(38, 0) NOT NULL,
        capacity numeric(38, 0) NOT NULL, import_limit numeric(38, 0) NOT NULL,
        export_limit numeric(38, 0) NOT NULL);
    CREATE TABLE quotaholder_app_holding (id serial PRIMARY KEY,
        entity varchar(4096) NOT NULL REFERENCES quotaholder_app_entity (entity) DEFERRABLE INITIALLY DEFERRED,
        resource varchar(4096) NOT NULL,
        policy varchar(4096) NOT NULL REFERENCES quotaholder_app_policy (policy) DEFERRABLE INITIALLY DEFERRED,
        flags bigint NOT NULL DEFAULT 0, imported numeric(38, 0) NOT NULL DEFAULT 0,
        importing numeric(38, 0) NOT NULL DEFAULT 0, exported numeric(38, 0) NOT NULL DEFAULT 0,
        exporting numeric(38, 0) NOT NULL DEFAULT 0, returned numeric(38, 0) NOT NULL DEFAULT 0,
        returning numeric(38, 0) NOT NULL DEFAULT 0, released numeric(38, 0) NOT NULL DEFAULT 0,
        releasing numeric(38, 0) NOT NULL DEFAULT 0, UNIQUE (entity, resource));
    CREATE TABLE quotaholder_app_commission (serial serial PRIMARY KEY, entity varchar(4096) NOT NULL,
        name varchar(4096) NULL, clientkey varchar(4096) NOT NULL, issue_time varchar(24) NOT NULL);
    CREATE TABLE quotaholder_app_provision (id serial PRIMARY KEY, serial integer NOT NULL,
        entity varchar(4096) NOT NULL, resource varchar(4096) NOT NULL, quantity numeric(38, 0) NOT NULL);
    INSERT INTO quotaholder_app_entity (entity, owner, key) VALUES ('system', 'system', '');"""
# Content types of 0.12 models 0.13 no longer has (inference: research names no list; the
# additional mails and the old email changes went with the auth providers of 0.13).
STALE_CONTENT_TYPES = (("im", "additionalmail"),)
APPS = {"im": ("snf-astakos-app", IM_MIGRATIONS), "db": ("snf-cyclades-app", DB_MIGRATIONS)}
PROJECT_STATES = {1: "ACTIVE", 10: "SUSPENDED", 100: "TERMINATED"}
TERMINATED = 100


def _installed(package):
    return snf_common.release_of(snf_common.installed_version(package)) == "0.13"


def _parse(prog, argv, options, usage=""):
    parser = optparse.OptionParser(prog=f"snf-manage {prog}", usage=f"%prog {usage}", add_help_option=False)
    for args, kwargs in options:
        parser.add_option(*args, **kwargs)
    try:
        return parser.parse_args(argv)
    except SystemExit:
        raise CommandError("invalid options") from None


def _prompt(text):
    """Print a prompt and read the answer; end of input is Python 2's input() failing."""
    sys.stdout.write(text)
    sys.stdout.flush()
    line = sys.stdin.readline()
    if not line:
        raise EOFError("EOF when reading a line")
    return line.rstrip("\n")


def _traceback(exc_name, message):
    toolbox.err(f"Traceback (most recent call last):\n  File \"/usr/bin/snf-manage\", line 8, in <module>\n"
                f"    ...\n{exc_name}: {message}")


# -- syncdb and migrate -------------------------------------------------------------------------
def _tables(db):
    return {r[0] for r in db.rows("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")}


def syncdb(argv, settings):
    options, _ = _parse("syncdb", argv, [(("--noinput",), {"action": "store_false", "dest": "interactive",
                                                            "default": True})])
    db = snf_common.apps_db(settings)
    toolbox.out("Syncing...")
    script = []
    if _installed("snf-quotaholder-app") and "quotaholder_app_holding" not in _tables(db):
        for table in ("entity", "policy", "holding", "commission", "provision"):
            toolbox.out(f"Creating table quotaholder_app_{table}")
        script.append(QUOTAHOLDER_TABLES)
        toolbox.out("Installing json fixture 'initial_data' from '/usr/lib/python2.6/dist-packages/quotaholder_app/"
                    "fixtures'.\nInstalled 1 object(s) from 1 fixture(s)")
    stale = [(app, model) for app, model in STALE_CONTENT_TYPES if db.value(
        f"SELECT 1 FROM django_content_type WHERE app_label = {lit(app)} AND model = {lit(model)}")]
    if stale:
        toolbox.out("The following content types are stale and need to be deleted:\n")
        for app, model in stale:
            toolbox.out(f"    {app} | {model}")
        toolbox.out("\nAny objects related to these content types by a foreign key will also\nbe deleted. "
                    "Are you sure you want to delete these content types?\nIf you're unsure, answer 'no'.\n")
        if options.interactive:
            try:
                answer = _prompt("    Type 'yes' to continue, or 'no' to cancel: ")
            except EOFError as exc:
                _traceback("EOFError", exc)
                return 1
        else:
            answer = "no"
        if answer == "yes":
            script += [f"DELETE FROM django_content_type WHERE app_label = {lit(a)} AND model = {lit(m)}"
                       for a, m in stale]
        else:
            toolbox.out("Stale content types remain.")
    if script:
        db.run(";\n".join(script))
    toolbox.out("\nSynced:\n > django.contrib.auth\n > django.contrib.contenttypes\n > south")
    toolbox.out("\nNot synced (use migrations):\n - im\n - db\n(use ./manage.py migrate to migrate these)")
    return 0


def _applied(db, app):
    return {r[0] for r in db.rows(f"SELECT migration FROM south_migrationhistory WHERE app_name = {lit(app)}")}


def _im_0016(db, settings):
    """im 0016's data part (research §1): the ids of ASTAKOS_MIGRATION_0045_DELETE_DUPLICATE_
    USER_IDS deleted, the case duplicates left resolved by asking which user to keep, a uuid
    for every user, username = lower(email), an auth provider row per user. Returns the
    statements; raises on an unresolved duplicate (nothing written)."""
    users = {int(i): (email, active) for i, email, active in db.rows("SELECT id, email, is_active FROM auth_user")}
    gone = []
    for user_id in settings.get("ASTAKOS_MIGRATION_0045_DELETE_DUPLICATE_USER_IDS", []) or []:
        if int(user_id) not in users:
            raise MigrationFailed("DoesNotExist", "AstakosUser matching query does not exist.")
        email = users[int(user_id)][0].lower()
        if sum(1 for e, _ in users.values() if e.lower() == email) < 2:
            raise MigrationFailed("Exception", f"Email {email} is not duplicated: user {user_id} not deleted")
        gone.append(int(user_id))
        del users[int(user_id)]
    groups = {}
    for user_id, (email, active) in sorted(users.items()):
        groups.setdefault(email.lower(), []).append((user_id, active))
    for email, group in sorted(groups.items()):
        if len(group) < 2:
            continue
        toolbox.out("Duplicate email found in database")
        for user_id, active in group:
            toolbox.out(f"{user_id}: {users[user_id][0]} (is_active: {'True' if active == 't' else 'False'})")
        try:
            answer = _prompt("Select which user id you want to BE PRESERVED in the database: ")
        except EOFError as exc:
            raise MigrationFailed("EOFError", str(exc)) from None
        if not answer.strip():
            raise MigrationFailed("SyntaxError", "unexpected EOF while parsing")
        keep = int(answer) if answer.strip().isdigit() else 0
        if not keep:
            raise MigrationFailed("Exception", f"Email {email} is not unique {[u for u, _ in group]!r}. Please "
                                               "resolve conflicts and run migrate again.")
        gone += [user_id for user_id, _ in group if user_id != keep]
    statements = []
    for user_id in gone:
        statements += [f"DELETE FROM im_astakosuser WHERE user_ptr_id = {user_id}",
                       f"DELETE FROM auth_user WHERE id = {user_id}"]
    statements += [
        "UPDATE im_astakosuser SET uuid = gen_random_uuid()::text WHERE uuid IS NULL",
        "UPDATE auth_user SET username = lower(email) WHERE username NOT LIKE '%@%'",
        "INSERT INTO im_astakosuserauthprovider (user_id, module, auth_backend) SELECT user_ptr_id, 'local', "
        "'astakos' FROM im_astakosuser a WHERE NOT EXISTS (SELECT 1 FROM im_astakosuserauthprovider p "
        "WHERE p.user_id = a.user_ptr_id)"]
    return statements


class MigrationFailed(Exception):
    def __init__(self, name, message):
        super().__init__(message)
        self.name = name


def migrate(argv, settings):
    _parse("migrate", argv, [(("--noinput",), {"action": "store_true"}), (("--fake",), {"action": "store_true"})])
    db = snf_common.apps_db(settings)
    script = []
    for app, (package, migrations) in APPS.items():
        if not _installed(package):
            continue
        applied = _applied(db, app)
        todo = [(name, sql) for name, sql in migrations if name not in applied]
        toolbox.out(f"Running migrations for {app}:")
        if not todo:
            toolbox.out(f"- Nothing to migrate.\n - Loading initial data for {app}.\nNo fixtures found.")
            continue
        toolbox.out(f" - Migrating forwards to {todo[-1][0]}.")
        for name, sql in todo:
            toolbox.out(f" > {app}:{name}")
            if sql is None:
                try:
                    script += _im_0016(db, settings)
                except MigrationFailed as exc:
                    toolbox.out(f"Error in migration: {app}:{name}")
                    _traceback(exc.name, exc)
                    return 1  # nothing was written: the migration's transaction never ran
            else:
                script.append(sql)
            script.append("INSERT INTO south_migrationhistory (app_name, migration, applied) VALUES "
                          f"({lit(app)}, {lit(name)}, now())")
        toolbox.out(f" - Loading initial data for {app}.\nNo fixtures found.")
    if script:
        db.run(";\n".join(script))
    return 0


# -- services and resources ---------------------------------------------------------------------
def _require(db, table):
    if not db.value(f"SELECT to_regclass({lit(table)})"):
        raise CommandError(f'relation "{table}" does not exist (run snf-manage migrate)')


def service_list(argv, settings):
    options, _ = _parse("service-list", argv, [(("-c",), {"action": "store_true", "dest": "csv"})])
    db = snf_common.apps_db(settings)
    rows = db.rows('SELECT id, "order", name, url, coalesce(auth_token, \'\'), icon FROM im_service ORDER BY id')
    if options.csv:
        for row in rows:
            toolbox.out("|".join(row))
        return 0
    widths = (3, 3, 12, 40, 20, 20)
    header = ("id", "order", "name", "url", "auth_token", "icon")
    toolbox.out(" ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
    toolbox.out("-" * (sum(widths) + len(widths) - 1))
    for row in rows:
        toolbox.out(" ".join(str(v).rjust(w) for v, w in zip(row, widths, strict=True)))
    return 0


def service_update(argv, settings):
    options, args = _parse("service-update", argv, [
        (("--name",), {}), (("--url",), {}), (("--order",), {}), (("--icon",), {}), (("--auth-token",), {}),
        (("--renew-auth-token",), {"action": "store_true"})], "<service id> [options]")
    if len(args) != 1:
        raise CommandError("Please provide a service ID")
    db = snf_common.apps_db(settings)
    if not args[0].isdigit() or not db.value(f"SELECT 1 FROM im_service WHERE id = {int(args[0])}"):
        raise CommandError("Service does not exist. You may run snf-mange service-list for available service IDs.")
    sets = []
    for column, value in (("name", options.name), ("url", options.url), ("icon", options.icon),
                          ("auth_token", options.auth_token)):
        if value is not None:
            sets.append(f"{column} = {lit(value)}")
    if options.order is not None:
        sets.append(f'"order" = {int(options.order)}')
    if options.renew_auth_token:
        sets.append(f"auth_token = {lit(uuid.uuid4().hex)}, auth_token_created = now()")
    if sets:
        db.run(f"UPDATE im_service SET {', '.join(sets)} WHERE id = {int(args[0])}")
    return 0


def _quotaholder(settings, call, body):
    """A call to the quotaholder at ASTAKOS_QUOTAHOLDER_URL; raises CommandError on failure."""
    url = settings.get("ASTAKOS_QUOTAHOLDER_URL") or None
    try:
        return snf_common.astakos_call(url, settings.get("ASTAKOS_QUOTAHOLDER_TOKEN"), call, body)
    except snf_common.ApiError as exc:
        raise CommandError(f"quotaholder call {call} failed: ({exc.data!r}, {exc.status})") from None


def astakos_init(argv, settings):
    options, _ = _parse("astakos-init", argv, [(("--load-service-resources",), {"action": "store_true",
                                                                                 "dest": "load"})])
    if not options.load:
        return 0
    db = snf_common.apps_db(settings)
    _require(db, "im_resource")
    services = settings.get("ASTAKOS_SERVICES") or {}
    if not settings.get("ASTAKOS_QUOTAHOLDER_URL"):
        _traceback("TypeError", "object of type 'NoneType' has no len()")
        return 1
    statements, quotas = [], []
    for order, (name, spec) in enumerate(sorted(services.items()), 1):
        statements.append(
            'INSERT INTO im_service (name, url, icon, auth_token, auth_token_created, "order") VALUES '
            f"({lit(name)}, {lit(spec.get('url', ''))}, '', {lit(uuid.uuid4().hex)}, now(), "
            f"{int(spec.get('order', order))}) ON CONFLICT (name) DO UPDATE SET \"order\" = EXCLUDED.\"order\""
            + (", url = EXCLUDED.url" if "url" in spec else ""))
        for resource in spec.get("resources", []):
            missing = [k for k in ("name", "desc", "group", "uplimit") if k not in resource]
            if missing:
                toolbox.out(f"Cannot create resource {name}.{resource.get('name')}")
                _traceback("KeyError", repr(missing[0]))
                continue
            statements.append(
                'INSERT INTO im_resource (name, service_id, "desc", unit, "group", uplimit) SELECT '
                f"{lit(resource['name'])}, id, {lit(resource['desc'])}, {lit(resource.get('unit'))}, "
                f"{lit(resource['group'])}, {int(resource['uplimit'])} FROM im_service WHERE name = {lit(name)} "
                'ON CONFLICT (service_id, name) DO UPDATE SET "desc" = EXCLUDED."desc", unit = EXCLUDED.unit, '
                '"group" = EXCLUDED."group", uplimit = EXCLUDED.uplimit')
            quotas.append([name, f"{name}.{resource['name']}", ENTITY_KEY, 0, QH_PRACTICALLY_INFINITE,
                           QH_PRACTICALLY_INFINITE, QH_PRACTICALLY_INFINITE, 0])
    if statements:
        db.run(";\n".join(statements))
    entities = set(_quotaholder(settings, "list_entities", []))
    new = [[name, "system", ENTITY_KEY, ""] for name in sorted(services) if name not in entities]
    if new:
        _quotaholder(settings, "create_entity", new)
    if quotas:
        _quotaholder(settings, "set_quota", quotas)
    return 0


# -- users -------------------------------------------------------------------------------------
def user_list(argv, settings):
    options, _ = _parse("user-list", argv, [(("-c",), {"action": "store_true", "dest": "csv"}),
                                            (("--displayname",), {"action": "store_true"})])
    db = snf_common.apps_db(settings)
    rows = db.rows("SELECT u.id, u.username, trim(u.first_name || ' ' || u.last_name), u.is_active, u.is_superuser, "
                   "coalesce(a.uuid, ''), a.provider FROM auth_user u JOIN im_astakosuser a ON a.user_ptr_id = u.id "
                   "ORDER BY u.id")
    for user_id, username, name, active, admin, user_uuid, provider in rows:
        fields = [user_id] + ([username] if options.displayname else []) + [
            name, "YES" if active == "t" else "NO", "YES" if admin == "t" else "NO", user_uuid, f"{provider}:astakos"]
        toolbox.out(("|" if options.csv else " ").join(fields))
    return 0


def user_show(argv, settings):
    _, args = _parse("user-show", argv, [], "<email|id|uuid>")
    if len(args) != 1:
        raise CommandError("Please provide a user ID or email")
    db = snf_common.apps_db(settings)
    key = args[0]
    where = f"u.id = {int(key)}" if key.isdigit() else (f"u.email = {lit(key)}" if "@" in key else
                                                         f"a.uuid = {lit(key)}")
    rows = db.rows("SELECT u.id, coalesce(a.uuid, ''), u.email, u.username, u.is_active, a.email_verified "
                   f"FROM auth_user u JOIN im_astakosuser a ON a.user_ptr_id = u.id WHERE {where}")
    if not rows:
        raise CommandError(f"Unknown user with email '{key}'" if "@" in key else f"Unknown user {key}")
    for name, value in zip(("id", "uuid", "email", "username", "is_active", "email_verified"), rows[0], strict=True):
        toolbox.out(f"{name:<16}: {value}")
    return 0


def user_set_initial_quota(argv, settings):
    options, args = _parse("user-set-initial-quota", argv, [
        (("--from-file",), {"dest": "from_file"}), (("--set-capacity",), {"dest": "set_capacity", "nargs": 3}),
        (("-f", "--no-confirm"), {"action": "store_true", "dest": "force"})])
    if options.from_file and options.set_capacity:
        raise CommandError("Cannot combine option `--from-file' with `--set-capacity'.")
    if not options.from_file and not options.set_capacity:
        raise CommandError("Please use either `--from-file' or `--set-capacity' options")
    db = snf_common.apps_db(settings)
    _require(db, "im_resource")
    resources = {f"{s}.{r}": rid for rid, s, r in db.rows(
        "SELECT r.id, s.name, r.name FROM im_resource r JOIN im_service s ON s.id = r.service_id")}
    if options.set_capacity:
        return _set_capacity(db, resources, options.set_capacity, options.force)
    try:
        with open(options.from_file) as f:
            lines = f.readlines()
    except OSError as exc:
        raise CommandError(str(exc)) from None
    by_uuid = dict(db.rows("SELECT uuid, user_ptr_id FROM im_astakosuser WHERE uuid IS NOT NULL"))
    statements = []
    for line in lines:
        fields = line.rstrip("\n").split(" ")
        if len(fields) != 6:
            toolbox.out(f"Invalid line format: {fields!r}:")
            continue
        user, resource, capacity, quantity, import_limit, export_limit = fields
        if user not in by_uuid:
            toolbox.out(f"Not found user having uuid: {user}")
            continue
        if resource not in resources:
            toolbox.out("Failed to policy: Resource matching query does not exist.")
            continue
        try:
            numbers = [int(v) for v in (capacity, quantity, import_limit, export_limit)]
        except ValueError as exc:
            toolbox.out(f"Failed to policy: {exc}")
            continue
        statements.append(
            "INSERT INTO im_astakosuserquota (user_id, resource_id, capacity, quantity, import_limit, export_limit) "
            f"VALUES ({by_uuid[user]}, {resources[resource]}, {numbers[0]}, {numbers[1]}, {numbers[2]}, "
            f"{numbers[3]}) ON CONFLICT (resource_id, user_id) DO UPDATE SET capacity = EXCLUDED.capacity, "
            "quantity = EXCLUDED.quantity, import_limit = EXCLUDED.import_limit, export_limit = EXCLUDED.export_limit")
    if statements:
        db.run(";\n".join(statements))
    return 0


def _set_capacity(db, resources, spec, force):
    user, resource, capacity = spec
    if "@" in user:
        rows = db.rows(f"SELECT a.user_ptr_id, a.uuid, u.username FROM im_astakosuser a JOIN auth_user u "
                       f"ON u.id = a.user_ptr_id WHERE u.username = {lit(user)}")
        missing = f"Not found user having email: {user}"
    else:
        rows = db.rows(f"SELECT a.user_ptr_id, a.uuid, u.username FROM im_astakosuser a JOIN auth_user u "
                       f"ON u.id = a.user_ptr_id WHERE a.uuid = {lit(user)}")
        missing = f"Not found user having uuid: {user}"
    if not rows:
        raise CommandError(missing)
    if resource not in resources:
        raise CommandError(f"No such resource: {resource}")
    user_id, user_uuid, username = rows[0]
    current = db.value(f"SELECT capacity FROM im_astakosuserquota WHERE user_id = {user_id} "
                       f"AND resource_id = {resources[resource]}")
    default = db.value(f"SELECT uplimit FROM im_resource WHERE id = {resources[resource]}")
    if not force:
        toolbox.out(f"user: {user_uuid} ({username})\ndefault capacity: {default}\ncurrent capacity: "
                    f"{current or default}\nnew capacity: {capacity}")
        try:
            answer = _prompt("Confirm? (y/n) ")
        except EOFError:
            answer = ""
        if answer != "y":
            toolbox.out("Aborted.")
            return 0
    if capacity == "default":
        db.run(f"DELETE FROM im_astakosuserquota WHERE user_id = {user_id} AND resource_id = {resources[resource]}")
    else:
        db.run("INSERT INTO im_astakosuserquota (user_id, resource_id, capacity, quantity, import_limit, export_limit) "
               f"VALUES ({user_id}, {resources[resource]}, {int(capacity)}, 0, {QH_PRACTICALLY_INFINITE}, "
               f"{QH_PRACTICALLY_INFINITE}) ON CONFLICT (resource_id, user_id) DO UPDATE SET capacity = "
               "EXCLUDED.capacity")
    return 0


# -- astakos-quota ---------------------------------------------------------------------------
def _astakos_quotas(db, only_uuid=None):
    """{uuid: (username, email, real name, {resource: (quantity, capacity, import, export)})} of
    the verified users: each resource's default limit, a user's own quota over it."""
    where = f" AND a.uuid = {lit(only_uuid)}" if only_uuid else ""
    users = {r[0]: (r[1], r[2], r[3], {}) for r in db.rows(
        "SELECT a.uuid, u.username, u.email, trim(u.first_name || ' ' || u.last_name) FROM im_astakosuser a "
        "JOIN auth_user u ON u.id = a.user_ptr_id WHERE a.email_verified AND a.uuid IS NOT NULL" + where)}
    for user_uuid, resource, capacity in db.rows(
            "SELECT a.uuid, s.name || '.' || r.name, coalesce(q.capacity, r.uplimit)::text FROM im_astakosuser a "
            "CROSS JOIN im_resource r JOIN im_service s ON s.id = r.service_id LEFT JOIN im_astakosuserquota q "
            "ON q.user_id = a.user_ptr_id AND q.resource_id = r.id WHERE a.email_verified AND a.uuid IS NOT NULL"
            + where):
        users[user_uuid][3][resource] = (0, int(capacity), QH_PRACTICALLY_INFINITE, QH_PRACTICALLY_INFINITE)
    return users


def _values(quotas):
    """A {resource: QuotaValues(...)} dict as 0.13 prints it (Python 2 longs)."""
    return "{" + ", ".join(f"u'{r}': QuotaValues(quantity={q}L, capacity={c}L, import_limit={i}L, export_limit={e}L)"
                           for r, (q, c, i, e) in sorted(quotas.items())) + "}"


def astakos_quota(argv, settings):
    options, _ = _parse("astakos-quota", argv, [
        (("--list",), {"action": "store_true"}), (("--verify",), {"action": "store_true"}),
        (("--sync",), {"action": "store_true"}), (("--user",), {})])
    db = snf_common.apps_db(settings)
    _require(db, "im_resource")
    only = None
    if options.user:
        row = db.rows("SELECT a.uuid, a.email_verified FROM im_astakosuser a JOIN auth_user u ON u.id = a.user_ptr_id "
                      f"WHERE a.uuid = {lit(options.user)} OR u.username = {lit(options.user.lower())}")
        if not row:
            raise CommandError(f"Unknown user {options.user}")
        if row[0][1] != "t" and options.sync:
            raise CommandError(f"User {options.user} is not verified.")
        only = row[0][0]
    else:
        toolbox.err("Calculating all quotas...")
    astakos = _astakos_quotas(db, only)
    if options.list or not (options.verify or options.sync):
        toolbox.out("uuid email resource initial total usage")
        for user_uuid, (_username, email, _name, quotas) in sorted(astakos.items()):
            for resource, (_q, capacity, _i, _e) in sorted(quotas.items()):
                toolbox.out(f"{user_uuid} {email} {resource} {capacity} {capacity} 0")
        return 0
    entities = set(_quotaholder(settings, "list_entities", []))
    held = {}
    for entity, resource, quantity, capacity, import_limit, export_limit, *_ in _quotaholder(
            settings, "get_quota", [[u, r, ENTITY_KEY] for u, v in astakos.items() for r in v[3]]):
        held.setdefault(entity, {})[resource] = (quantity, capacity, import_limit, export_limit)
    unregistered = [u for u in sorted(astakos) if u not in entities]
    differ = [u for u in sorted(astakos) if u in entities and held.get(u, {}) != astakos[u][3]]
    if options.verify:
        if unregistered:
            toolbox.out("Users not registered in quotaholder:")
            for user_uuid in unregistered:
                _username, email, name, _quotas = astakos[user_uuid]
                toolbox.out(f"{name} ({email})")
            toolbox.out("")
        for user_uuid in differ:
            username, _email, _name, quotas = astakos[user_uuid]
            if not held.get(user_uuid):
                toolbox.out(f"No quotas for {user_uuid} ({username}) in quotaholder.")
                continue
            toolbox.out(f"Quotas differ for {user_uuid} ({username}):")
            toolbox.out("Quotas according to quotaholder:")
            toolbox.out(_values(held[user_uuid]))
            toolbox.out("Quotas according to astakos:")
            toolbox.out(_values(quotas))
            toolbox.out("")
        toolbox.out(f"Quotas differ for {len(differ)} users.")
        return 0
    to_sync = unregistered + differ
    if not to_sync:
        toolbox.out("No sync needed.")
        return 0
    if unregistered:
        _quotaholder(settings, "create_entity", [[u, "system", ENTITY_KEY, ""] for u in unregistered])
    _quotaholder(settings, "set_quota", [[u, r, ENTITY_KEY, q, c, i, e, 0] for u in to_sync
                                         for r, (q, c, i, e) in sorted(astakos[u][3].items())])
    toolbox.out(f"Synced {len(to_sync)} users:")
    for user_uuid in to_sync:
        toolbox.out(f"{user_uuid} ({astakos[user_uuid][0]})")
    return 0


# -- projects ------------------------------------------------------------------------------------
def project_control(argv, settings):
    options, _ = _parse("project-control", argv, [
        (("--check-expired",), {"action": "store_true"}), (("--terminate-expired",), {"action": "store_true"}),
        (("-m", "--message"), {})])
    if not (options.check_expired or options.terminate_expired):
        return 0
    db = snf_common.apps_db(settings)
    _require(db, "im_project")
    rows = db.rows(f"SELECT p.id, p.name, p.state, a.end_date FROM im_project p JOIN im_projectapplication a "
                   f"ON a.id = p.application_id WHERE p.state != {TERMINATED} AND a.end_date < now() ORDER BY p.id")
    if not rows:
        toolbox.out("No expired projects.")
        return 0
    toolbox.out(f"{len(rows)} expired project{'s' if len(rows) > 1 else ''}:")
    toolbox.out(f"{'Project':<10}{'Name':<30}{'Status':<14}{'Expiration date':<30}")
    for project_id, name, state, end in rows:
        toolbox.out(f"{project_id:<10}{name:<30}{PROJECT_STATES.get(int(state), state):<14}{end:<30}")
    if options.terminate_expired:
        ids = ", ".join(r[0] for r in rows)
        db.run(f"UPDATE im_project SET state = {TERMINATED}, deactivation_date = now() WHERE id IN ({ids})")
        toolbox.out(f"{len(rows)} projects have been terminated.")
    return 0

