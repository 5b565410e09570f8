"""snf-manage's Astakos side of Synnefo 0.13 for the lab: Django's `syncdb` and South's
`migrate` on snf_apps, and the Astakos commands the upgrade runbook uses (service-list,
service-update, astakos-init, user-list, user-show, user-set-initial-quota, astakos-quota,
project-control), acting on the real tables. Each command is a function of (argv, settings)
(snf_manage.COMMANDS) that prints what the real one prints and returns its exit status;
snf_common.CommandError is Django's `Error: ...` (exit 1); an exception the real command does
not catch prints a Python 2 traceback ending in the real exception line and exits 1.

Facts: shared research synnefo.md §1 (tables, im 0016, the quotaholder), §4
(user-set-initial-quota), §5 (the commands' output), §6 (settings). Where research is silent,
the behaviour follows grnet/synnefo at tag 0.13 (management commands, im/models.py,
im/endpoints/qh.py, the South migrations), read, not copied; the Django 1.2 / South 0.7
messages (syncdb, migrate, the stale content types question) as those releases print them.

What the lab does differently, on purpose:
- A `migrate` run (and `syncdb`) is one psql transaction: everything is decided first (the
  questions asked, the rows read), then applied at once, so a failure leaves the database as
  it was. South commits each migration on its own: a real failure in im 0016 would leave 0015
  applied.
- The stale content types question comes at syncdb, for every installed app (see STALE_0_13).
- The quotaholder is called in-process (snf_quotaholder.call with ASTAKOS_QUOTAHOLDER_TOKEN):
  on the Astakos host it is the quotaholder beside Astakos that the URL names.
- project-control terminates without sending the owners' notification mail.

Standard library only (it runs inside a node sandbox, next to snf_common.py and toolbox.py).
"""

import ast
import base64
import functools
import hashlib
import optparse
import re
import sys
import time

if __package__:  # imported on the host (lab.synnefo.tools.snf_astakos)
    from lab.core.tools import toolbox
    from lab.synnefo.tools import snf_common, snf_quotaholder
else:  # run on a node: the modules are next to snf_manage.py
    import snf_common
    import snf_quotaholder
    import toolbox

CommandError = snf_common.CommandError
lit = snf_common.lit
RELEASE = "0.13"
QH_PRACTICALLY_INFINITE = snf_quotaholder.QH_PRACTICALLY_INFINITE
ENTITY_KEY = snf_quotaholder.ENTITY_KEY
PY2_MAXINT = 2 ** 63 - 1  # a larger Python 2 integer is a long: its repr ends in L


# -- how a management command runs ---------------------------------------------------------
class Crash(Exception):
    """An exception the real command does not catch: manage.py dies with its traceback."""

    def __init__(self, name, message, frames=(), detail=()):
        super().__init__(message)
        self.name, self.message, self.frames, self.detail = name, message, list(frames), list(detail)


class _Exit(Exception):
    """optparse's exit (--help, a bad option): its status and message."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status, self.message = status, message


def traceback(crash):
    """A Python 2 traceback on stderr as snf-manage (Django 1.2's manage.py) prints one; the
    frames are indicative, the last line is the exception as Python 2 prints it."""
    frames = [("/usr/bin/snf-manage", 9, "<module>",
               "load_entry_point('snf-webproject==0.13', 'console_scripts', 'snf-manage')()"),
              ("/usr/lib/pymodules/python2.6/synnefo/webproject/manage.py", 247, "main",
               "execute_manager(settings)"),
              ("/usr/lib/pymodules/python2.6/django/core/management/base.py", 220, "execute",
               "output = self.handle(*args, **options)")] + crash.frames
    lines = ["Traceback (most recent call last):"]
    for path, number, function, code in frames:
        lines += [f'  File "{path}", line {number}, in {function}', f"    {code}"]
    lines += crash.detail
    lines.append(f"{crash.name}: {crash.message}" if crash.message else crash.name)
    toolbox.err("\n".join(lines))


def command(function):
    """The command's failures as snf-manage shows them: optparse's usage errors (exit 2), an
    uncaught exception's traceback (exit 1), a database error as psycopg2 raises it."""
    @functools.wraps(function)
    def run(argv, settings):
        try:
            return function(argv, settings)
        except _Exit as done:
            if done.message:
                sys.stderr.write(done.message)
            return done.status
        except Crash as crash:
            sys.stdout.flush()
            traceback(crash)
            return 1
        except snf_common.DatabaseError as exc:
            sys.stdout.flush()
            traceback(database_crash(exc))
            return 1
    return run


def database_crash(exc):
    """psycopg2's exception for a psql error: IntegrityError for a violated constraint."""
    message = str(exc).split("\n")[0]
    message = re.sub(r"^(psql:[^:]*:\d+: )?ERROR:\s+", "", message)
    return Crash("IntegrityError" if "violates" in message else "DatabaseError", message)


class Parser(optparse.OptionParser):
    """A Django 1.2 BaseCommand's parser: its options after Django's own, long options by
    unique prefix (optparse's), `--help`, and a usage error on stderr with exit 2."""

    def __init__(self, name, args, options, help_text=""):
        django = [optparse.make_option("-v", "--verbosity", default="1", choices=["0", "1", "2"]),
                  optparse.make_option("--settings"), optparse.make_option("--pythonpath"),
                  optparse.make_option("--traceback", action="store_true")]
        super().__init__(prog="snf-manage", usage=f"%prog {name} [options] {args}".rstrip(), description=help_text,
                         option_list=django + list(options), version=None)

    def exit(self, status=0, msg=None):
        raise _Exit(status, msg)

    def error(self, msg):
        raise _Exit(2, f"{self.get_usage()}\n{self.get_prog_name()}: error: {msg}\n")


def option(*names, **kwargs):
    return optparse.make_option(*names, **kwargs)


def ask(prompt, frames):
    """raw_input(prompt): the prompt on stdout (no newline), a line of stdin; end of input is
    Python 2's EOFError."""
    sys.stdout.write(prompt)
    sys.stdout.flush()
    line = sys.stdin.readline()
    if not line:
        raise Crash("EOFError", "EOF when reading a line", frames)
    return line.rstrip("\n").rstrip("\r")


def py2_input(prompt, frames):
    """Python 2's input(prompt): the line evaluated as an expression (leading blanks dropped).
    A number is a number; an empty line, a name or anything else fails as Python 2 fails."""
    source = ask(prompt, frames).lstrip(" \t")
    if not source.strip():
        raise Crash("SyntaxError", "unexpected EOF while parsing", frames,
                    ['  File "<string>", line 0', "    ", "    ^"])
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError:
        raise Crash("SyntaxError", "invalid syntax", frames, ['  File "<string>", line 1', f"    {source}",
                                                              "    ^"]) from None
    try:
        return ast.literal_eval(tree)
    except ValueError:
        names = [node.id for node in ast.walk(tree) if isinstance(node, ast.Name)]
        raise Crash("NameError", f"name '{names[0]}' is not defined" if names else "invalid expression",
                    frames) from None


def py2_int(n):
    """repr() of a Python 2 int or long."""
    return f"{n}L" if abs(n) > PY2_MAXINT else str(n)


def yes_no(value):
    return "YES" if value in (True, "t") else "NO"


def installed(package):
    """Whether dpkg has the package at 0.13 (read at call time: tests point DPKG_STATUS elsewhere)."""
    return snf_common.release_of(snf_common.installed_version(package, snf_common.DPKG_STATUS)) == RELEASE


# -- the Django apps of the installed packages ---------------------------------------------
# INSTALLED_APPS as synnefo.webproject builds it (webproject/settings/__init__.py, then each
# package's `web_apps` entry point; astakos.im goes before django.contrib.admin).
PACKAGE_APPS = {
    "snf-webproject": ("django.contrib.contenttypes", "django.contrib.sessions", "django.contrib.sites",
                       "django.contrib.messages", "django.contrib.admin", "south", "synnefo.webproject"),
    "snf-astakos-app": ("django.contrib.auth", "django_tables2"),
    "snf-quotaholder-app": ("quotaholder_django.quotaholder_app",),
    "snf-cyclades-app": ("synnefo.admin", "synnefo.api", "synnefo.ui", "synnefo.db", "synnefo.logic",
                         "synnefo.plankton", "synnefo.vmapi", "synnefo.helpdesk", "synnefo.ui.userdata",
                         "synnefo.quotas"),
    "snf-pithos-app": ("pithos.api",),
}
# The apps with South migrations (migrate's business), by label.
MIGRATED = {"astakos.im": "im", "synnefo.db": "db", "synnefo.ui.userdata": "userdata"}
LABELS = {**MIGRATED, "quotaholder_django.quotaholder_app": "quotaholder_app"}


def installed_apps():
    apps = []
    for package, modules in PACKAGE_APPS.items():
        if not installed(package):
            continue
        if package == "snf-astakos-app":
            at = apps.index("django.contrib.admin") if "django.contrib.admin" in apps else len(apps)
            apps.insert(at, "astakos.im")
        apps += [m for m in modules if m not in apps]
    return apps


# The models of 0.13 per app label (their content types); auth, sessions and the like keep
# theirs and are left alone. Tag 0.13 still defines every model the seeded 0.12 database has a
# content type for: the stale ones a real 0.12 database holds are those of models dropped
# earlier in 0.12's life (db.bridgepool and db.macprefixpool, replaced by the *pooltable models
# in db 0051-0053; db.networklink, db.image, ...), which the seed does not insert. The lab
# stands in for them with the seed's db.bridgepooltable and db.macprefixpooltable (STALE_0_13):
# the pool tables of Ganeti bridges and MAC prefixes, which nothing the upgrade runs reads, so
# that syncdb on the Cyclades host asks the question the runbook (3.2) says to answer 'no'.
STALE_0_13 = {"db": ("bridgepooltable", "macprefixpooltable")}
MODELS_0_13 = {
    "im": ("astakosuser", "approvalterms", "invitation", "emailchange", "service", "additionalmail",
           "resourcemetadata", "resource", "astakosuserauthprovider", "astakosuserquota", "pendingthirdpartyuser",
           "sessioncatalog", "usersetting", "chain", "projectapplication", "projectresourcegrant", "project",
           "projectmembership", "serial", "projectmembershiphistory"),
    "quotaholder_app": ("holder", "entity", "policy", "holding", "commission", "provision", "provisionlog",
                        "callserial"),
    "db": tuple(m for m in ("flavor", "backend", "quotaholderserial", "virtualmachine", "virtualmachinemetadata",
                            "network", "backendnetwork", "networkinterface", "bridgepooltable", "macprefixpooltable",
                            "ippooltable", "virtualmachinediagnostic") if m not in STALE_0_13["db"]),
    "userdata": ("publickeypair",),
}

# -- the schema 0.13 brings ----------------------------------------------------------------
# The DDL of 0.13's South migrations (grnet/synnefo tag 0.13: im 0015-0024, db 0059-0061) as
# South 0.7 runs it on PostgreSQL, for the tables the lab's 0.12 schema has (im 0018's changes
# to im_approvalterms and im_emailchange are left out: the lab has no such tables). im 0016 is
# a data migration (_im_0016).
FK = "DEFERRABLE INITIALLY DEFERRED"
USER_FK = f"REFERENCES im_astakosuser (user_ptr_id) {FK}"
INTDECIMAL = "numeric(38, 0)"  # synnefo.lib.db.intdecimalfield: 38 digits, no decimals
MIGRATIONS = {
    "im": (
        ("0015_auto__add_chain__add_project__add_projectmembership__add_unique_projec", f"""
ALTER TABLE im_astakosuser DROP CONSTRAINT IF EXISTS im_astakosuser_provider_third_party_identifier_key;
CREATE TABLE im_chain (chain serial PRIMARY KEY);
CREATE TABLE im_projectapplication (
    id serial PRIMARY KEY,
    applicant_id integer NOT NULL {USER_FK},
    state integer NOT NULL,
    owner_id integer NOT NULL {USER_FK},
    chain integer NOT NULL,
    precursor_application_id integer NULL UNIQUE REFERENCES im_projectapplication (id) {FK},
    name varchar(80) NOT NULL,
    homepage varchar(255) NULL,
    description text NULL,
    start_date timestamp with time zone NULL,
    end_date timestamp with time zone NOT NULL,
    member_join_policy integer NOT NULL,
    member_leave_policy integer NOT NULL,
    limit_on_members_number integer NULL CHECK (limit_on_members_number >= 0),
    comments text NULL,
    issue_date timestamp with time zone NOT NULL,
    UNIQUE (chain, id));
CREATE INDEX im_projectapplication_applicant_id ON im_projectapplication (applicant_id);
CREATE INDEX im_projectapplication_owner_id ON im_projectapplication (owner_id);
CREATE TABLE im_project (
    id serial PRIMARY KEY,
    application_id integer NOT NULL UNIQUE REFERENCES im_projectapplication (id) {FK},
    last_approval_date timestamp with time zone NULL,
    deactivation_reason varchar(255) NULL,
    deactivation_date timestamp with time zone NULL,
    creation_date timestamp with time zone NOT NULL,
    name varchar(80) NOT NULL UNIQUE,
    is_modified boolean NOT NULL,
    is_active boolean NOT NULL,
    state integer NOT NULL);
CREATE INDEX im_project_is_modified ON im_project (is_modified);
CREATE INDEX im_project_is_active ON im_project (is_active);
CREATE INDEX im_project_state ON im_project (state);
CREATE TABLE im_projectmembership (
    id serial PRIMARY KEY,
    person_id integer NOT NULL {USER_FK},
    request_date date NOT NULL,
    project_id integer NOT NULL REFERENCES im_project (id) {FK},
    state integer NOT NULL,
    is_pending boolean NOT NULL,
    is_active boolean NOT NULL,
    application_id integer NULL REFERENCES im_projectapplication (id) {FK},
    pending_application_id integer NULL REFERENCES im_projectapplication (id) {FK},
    pending_serial bigint NULL,
    acceptance_date date NULL,
    leave_request_date date NULL,
    UNIQUE (person_id, project_id));
CREATE INDEX im_projectmembership_project_id ON im_projectmembership (project_id);
CREATE INDEX im_projectmembership_state ON im_projectmembership (state);
CREATE TABLE im_resourcemetadata (
    id serial PRIMARY KEY,
    key varchar(255) NOT NULL UNIQUE,
    value varchar(255) NOT NULL);
CREATE TABLE im_astakosuserauthprovider (
    id serial PRIMARY KEY,
    affiliation varchar(255) NULL,
    user_id integer NOT NULL {USER_FK},
    module varchar(255) NOT NULL,
    identifier varchar(255) NULL,
    active boolean NOT NULL,
    auth_backend varchar(255) NOT NULL,
    info_data text NULL,
    created timestamp with time zone NOT NULL,
    UNIQUE (identifier, module, user_id));
CREATE INDEX im_astakosuserauthprovider_user_id ON im_astakosuserauthprovider (user_id);
CREATE TABLE im_serial (serial serial PRIMARY KEY);
CREATE TABLE im_resource (
    id serial PRIMARY KEY,
    name varchar(255) NOT NULL,
    service_id integer NOT NULL REFERENCES im_service (id) {FK},
    "desc" text NULL,
    unit varchar(255) NULL,
    "group" varchar(255) NULL,
    UNIQUE (name, service_id));
CREATE INDEX im_resource_service_id ON im_resource (service_id);
CREATE TABLE im_resource_meta (
    id serial PRIMARY KEY,
    resource_id integer NOT NULL REFERENCES im_resource (id) {FK},
    resourcemetadata_id integer NOT NULL REFERENCES im_resourcemetadata (id) {FK},
    UNIQUE (resource_id, resourcemetadata_id));
CREATE TABLE im_sessioncatalog (
    id serial PRIMARY KEY,
    session_key varchar(40) NOT NULL,
    user_id integer NULL {USER_FK});
CREATE TABLE im_projectmembershiphistory (
    id serial PRIMARY KEY,
    person bigint NOT NULL,
    project bigint NOT NULL,
    date date NOT NULL,
    reason integer NOT NULL,
    serial bigint NOT NULL);
CREATE TABLE im_astakosuserquota (
    id serial PRIMARY KEY,
    capacity bigint NULL,
    quantity bigint NULL,
    export_limit bigint NULL,
    import_limit bigint NULL,
    resource_id integer NOT NULL REFERENCES im_resource (id) {FK},
    user_id integer NOT NULL {USER_FK},
    UNIQUE (resource_id, user_id));
CREATE INDEX im_astakosuserquota_user_id ON im_astakosuserquota (user_id);
CREATE TABLE im_projectresourcegrant (
    id serial PRIMARY KEY,
    resource_id integer NOT NULL REFERENCES im_resource (id) {FK},
    project_application_id integer NULL REFERENCES im_projectapplication (id) {FK},
    project_capacity {INTDECIMAL} NOT NULL,
    project_import_limit {INTDECIMAL} NOT NULL,
    project_export_limit {INTDECIMAL} NOT NULL,
    member_capacity {INTDECIMAL} NOT NULL,
    member_import_limit {INTDECIMAL} NOT NULL,
    member_export_limit {INTDECIMAL} NOT NULL,
    UNIQUE (resource_id, project_application_id));
CREATE TABLE im_pendingthirdpartyuser (
    id serial PRIMARY KEY,
    third_party_identifier varchar(255) NULL,
    provider varchar(255) NOT NULL,
    email varchar(75) NULL,
    first_name varchar(30) NULL,
    last_name varchar(30) NULL,
    affiliation varchar(255) NULL,
    username varchar(30) NOT NULL UNIQUE,
    token varchar(255) NULL,
    created timestamp with time zone NULL,
    info text NULL,
    UNIQUE (provider, third_party_identifier));
ALTER TABLE im_service ADD COLUMN "order" integer NOT NULL DEFAULT 0 CHECK ("order" >= 0);
ALTER TABLE im_service ALTER COLUMN "order" DROP DEFAULT;
CREATE INDEX im_service_name ON im_service (name);
ALTER TABLE im_astakosuser ADD COLUMN uuid varchar(255) NULL UNIQUE;
ALTER TABLE im_astakosuser ADD COLUMN disturbed_quota boolean NOT NULL DEFAULT false;
ALTER TABLE im_astakosuser ALTER COLUMN disturbed_quota DROP DEFAULT;
CREATE INDEX im_astakosuser_disturbed_quota ON im_astakosuser (disturbed_quota);
ALTER TABLE im_astakosuser ALTER COLUMN affiliation DROP NOT NULL;
ALTER TABLE im_astakosuser ALTER COLUMN provider DROP NOT NULL;
ALTER TABLE auth_user ALTER COLUMN username TYPE varchar(75);
"""),
        ("0016_auth_providers_and_projects", None),
        ("0017_auto__add_field_resource_uplimit__chg_field_astakosuserquota_capacity_", f"""
ALTER TABLE im_resource ADD COLUMN uplimit {INTDECIMAL} NOT NULL DEFAULT 0;
ALTER TABLE im_resource ALTER COLUMN uplimit DROP DEFAULT;
ALTER TABLE im_astakosuserquota ALTER COLUMN capacity TYPE {INTDECIMAL}, ALTER COLUMN capacity SET NOT NULL;
ALTER TABLE im_astakosuserquota ALTER COLUMN import_limit TYPE {INTDECIMAL}, ALTER COLUMN import_limit SET NOT NULL;
ALTER TABLE im_astakosuserquota ALTER COLUMN export_limit TYPE {INTDECIMAL}, ALTER COLUMN export_limit SET NOT NULL;
ALTER TABLE im_astakosuserquota ALTER COLUMN quantity TYPE {INTDECIMAL}, ALTER COLUMN quantity SET NOT NULL;
"""),
        ("0018_auto__chg_field_approvalterms_date__chg_field_project_creation_date__c", """
ALTER TABLE im_projectapplication DROP CONSTRAINT IF EXISTS im_projectapplication_precursor_application_id_key;
ALTER TABLE im_projectapplication ADD COLUMN response_date timestamp with time zone NULL;
CREATE INDEX im_projectapplication_precursor_application_id ON im_projectapplication (precursor_application_id);
"""),
        ("0019_clear_service_auth_token", """
UPDATE im_service SET auth_token_expires = NULL;
"""),
        ("0020_auto", """
CREATE INDEX im_projectapplication_state ON im_projectapplication (state);
"""),
        ("0021_auto__chg_field_project_name", """
ALTER TABLE im_project ALTER COLUMN name DROP NOT NULL;
"""),
        ("0022_auto__chg_field_project_id__chg_field_projectapplication_chain", f"""
INSERT INTO im_chain (chain) SELECT DISTINCT chain FROM im_projectapplication a
    WHERE NOT EXISTS (SELECT 1 FROM im_chain c WHERE c.chain = a.chain);
SELECT setval(pg_get_serial_sequence('im_chain', 'chain'), coalesce(max(chain), 1), max(chain) IS NOT NULL)
    FROM im_chain;
ALTER TABLE im_project ALTER COLUMN id DROP DEFAULT;
ALTER TABLE im_project ADD CONSTRAINT im_project_id_fk_im_chain FOREIGN KEY (id) REFERENCES im_chain (chain) {FK};
CREATE INDEX im_project_id ON im_project (id);
ALTER TABLE im_projectapplication ADD CONSTRAINT im_projectapplication_chain_fk_im_chain
    FOREIGN KEY (chain) REFERENCES im_chain (chain) {FK};
CREATE INDEX im_projectapplication_chain ON im_projectapplication (chain);
"""),
        ("0023_auto__add_usersetting__add_unique_usersetting_user_setting", f"""
CREATE TABLE im_usersetting (
    id serial PRIMARY KEY,
    user_id integer NOT NULL {USER_FK},
    setting varchar(255) NOT NULL,
    value integer NOT NULL,
    UNIQUE (user_id, setting));
CREATE INDEX im_usersetting_user_id ON im_usersetting (user_id);
"""),
        ("0024_auto__add_field_projectapplication_response", """
ALTER TABLE im_projectapplication ADD COLUMN response text NULL;
"""),
    ),
    "db": (
        ("0059_auto__add_quotaholderserial__add_field_virtualmachine_serial__add_fiel", f"""
CREATE TABLE db_quotaholderserial (
    serial bigint NOT NULL PRIMARY KEY,
    pending boolean NOT NULL,
    accepted boolean NOT NULL,
    rejected boolean NOT NULL);
CREATE INDEX db_quotaholderserial_pending ON db_quotaholderserial (pending);
ALTER TABLE db_virtualmachine ADD COLUMN serial_id bigint NULL REFERENCES db_quotaholderserial (serial) {FK};
CREATE INDEX db_virtualmachine_serial_id ON db_virtualmachine (serial_id);
ALTER TABLE db_network ADD COLUMN serial_id bigint NULL REFERENCES db_quotaholderserial (serial) {FK};
CREATE INDEX db_network_serial_id ON db_network (serial_id);
"""),
        ("0060_auto__del_field_network_type__add_field_network_flavor__add_field_netw", """
ALTER TABLE db_network RENAME COLUMN type TO flavor;
ALTER TABLE db_network ADD COLUMN mode varchar(16) NULL;
ALTER TABLE db_network ADD COLUMN tags varchar(128) NULL;
ALTER TABLE db_network ALTER COLUMN link TYPE varchar(32);
"""),
        ("0061_network_flavors", """
UPDATE db_network SET mode = 'routed', flavor = 'IP_LESS_ROUTED', tags = 'ip-less-routed'
    WHERE flavor = 'PUBLIC_ROUTED';
UPDATE db_network SET mode = 'bridged', flavor = 'MAC_FILTERED', tags = 'private-filtered'
    WHERE flavor = 'PRIVATE_MAC_FILTERED';
UPDATE db_network SET mode = 'bridged', flavor = 'PHYSICAL_VLAN', tags = 'physical-vlan'
    WHERE flavor = 'PRIVATE_PHYSICAL_VLAN';
UPDATE db_network SET mode = 'routed', flavor = 'CUSTOM', tags = NULL WHERE flavor = 'CUSTOM_ROUTED';
UPDATE db_network SET mode = 'bridged', flavor = 'CUSTOM', tags = NULL WHERE flavor = 'CUSTOM_BRIDGED';
"""),
    ),
    "userdata": (),  # 0.13 brings none: 0003 is its last
}
# The quotaholder's tables (no South migrations in 0.13: syncdb creates them, Django 1.2's
# PostgreSQL DDL of quotaholder_app/models.py), with the models that get an index.
QUOTAHOLDER_TABLES = (
    ("quotaholder_app_holder", None, """
CREATE TABLE quotaholder_app_holder (
    attribute varchar(4096) NOT NULL PRIMARY KEY,
    intval bigint NOT NULL,
    strval varchar(4096) NOT NULL);"""),
    ("quotaholder_app_entity", "Entity", f"""
CREATE TABLE quotaholder_app_entity (
    entity varchar(4096) NOT NULL PRIMARY KEY,
    owner_id varchar(4096) NOT NULL REFERENCES quotaholder_app_entity (entity) {FK},
    key varchar(4096) NOT NULL);
CREATE INDEX quotaholder_app_entity_owner_id ON quotaholder_app_entity (owner_id);"""),
    ("quotaholder_app_policy", None, f"""
CREATE TABLE quotaholder_app_policy (
    policy varchar(4096) NOT NULL PRIMARY KEY,
    quantity {INTDECIMAL} NOT NULL,
    capacity {INTDECIMAL} NOT NULL,
    import_limit {INTDECIMAL} NOT NULL,
    export_limit {INTDECIMAL} NOT NULL);"""),
    ("quotaholder_app_holding", "Holding", f"""
CREATE TABLE quotaholder_app_holding (
    id serial PRIMARY KEY,
    entity_id varchar(4096) NOT NULL REFERENCES quotaholder_app_entity (entity) {FK},
    resource varchar(4096) NOT NULL,
    policy_id varchar(4096) NOT NULL REFERENCES quotaholder_app_policy (policy) {FK},
    flags bigint NOT NULL,
    imported {INTDECIMAL} NOT NULL,
    importing {INTDECIMAL} NOT NULL,
    exported {INTDECIMAL} NOT NULL,
    exporting {INTDECIMAL} NOT NULL,
    returned {INTDECIMAL} NOT NULL,
    "returning" {INTDECIMAL} NOT NULL,
    released {INTDECIMAL} NOT NULL,
    releasing {INTDECIMAL} NOT NULL,
    UNIQUE (entity_id, resource));
CREATE INDEX quotaholder_app_holding_entity_id ON quotaholder_app_holding (entity_id);
CREATE INDEX quotaholder_app_holding_policy_id ON quotaholder_app_holding (policy_id);"""),
    ("quotaholder_app_commission", "Commission", f"""
CREATE TABLE quotaholder_app_commission (
    serial serial PRIMARY KEY,
    entity_id varchar(4096) NOT NULL REFERENCES quotaholder_app_entity (entity) {FK},
    name varchar(4096) NULL,
    clientkey varchar(4096) NOT NULL,
    issue_time varchar(24) NOT NULL);
CREATE INDEX quotaholder_app_commission_entity_id ON quotaholder_app_commission (entity_id);"""),
    ("quotaholder_app_provision", "Provision", f"""
CREATE TABLE quotaholder_app_provision (
    id serial PRIMARY KEY,
    serial_id integer NOT NULL REFERENCES quotaholder_app_commission (serial) {FK},
    entity_id varchar(4096) NOT NULL REFERENCES quotaholder_app_entity (entity) {FK},
    resource varchar(4096) NOT NULL,
    quantity {INTDECIMAL} NOT NULL);
CREATE INDEX quotaholder_app_provision_serial_id ON quotaholder_app_provision (serial_id);
CREATE INDEX quotaholder_app_provision_entity_id ON quotaholder_app_provision (entity_id);"""),
    ("quotaholder_app_provisionlog", None, "\nCREATE TABLE quotaholder_app_provisionlog (\n"
     "    id serial PRIMARY KEY,\n    serial bigint NOT NULL,\n"
     + "".join(f"    {c} varchar(4096) NOT NULL,\n" for c in ("source", "target", "name", "issue_time", "log_time",
                                                            "resource"))
     + "".join(f"    {side}_{f} {INTDECIMAL} NOT NULL,\n" for side in ("source", "target")
               for f in ("quantity", "capacity", "import_limit", "export_limit", "imported", "exported", "returned",
                         "released"))
     + f"    delta_quantity {INTDECIMAL} NOT NULL,\n    reason varchar(4096) NOT NULL);"),
    ("quotaholder_app_callserial", None, """
CREATE TABLE quotaholder_app_callserial (
    id serial PRIMARY KEY,
    serial bigint NOT NULL,
    clientkey varchar(4096) NOT NULL,
    UNIQUE (serial, clientkey));"""),
)
# quotaholder_app/fixtures/initial_data.json: the entity that owns every other.
QUOTAHOLDER_FIXTURE = ("INSERT INTO quotaholder_app_entity (entity, owner_id, key) VALUES ('system', 'system', '') "
                       "ON CONFLICT (entity) DO UPDATE SET owner_id = 'system', key = ''")

# Django 1.2's question (django/contrib/contenttypes/management.py, update_contenttypes).
STALE_QUESTION = ("The following content types are stale and need to be deleted:\n\n{}\n\n"
                  "Any objects related to these content types by a foreign key will also\n"
                  "be deleted. Are you sure you want to delete these content types?\n"
                  "If you're unsure, answer 'no'.\n\n    Type 'yes' to continue, or 'no' to cancel: ")
CONTENTTYPES_FRAMES = [("/usr/lib/pymodules/python2.6/django/contrib/contenttypes/management.py", 36,
                        "update_contenttypes",
                        "Type 'yes' to continue, or 'no' to cancel: \"\"\" % content_type_display)")]


def _tables(db):
    return {t for (t,) in db.rows("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


@command
def syncdb(argv, settings):
    """South's syncdb: Django's syncdb for the apps without migrations (here the quotaholder's
    tables and its fixture), the content types of 0.13's models (the stale ones asked about),
    then the list of synced apps and of those left to `migrate` (`--migrate` runs it too)."""
    options, _ = Parser("syncdb", "", [
        option("--noinput", action="store_false", dest="interactive", default=True),
        option("--migrate", action="store_true", default=False),
        option("--all", action="store_true", default=False),
        option("--database", default="default")], "Create the database tables for all apps in INSTALLED_APPS "
                                                  "whose tables haven't already been created.").parse_args(argv)
    db = snf_common.apps_db(settings)
    apps = installed_apps()
    synced = [a for a in apps if a not in MIGRATED or options.all]
    toolbox.out("Syncing...")
    tables = _tables(db)
    script, indexed = [], []
    if "quotaholder_django.quotaholder_app" in synced:
        for table, model, sql in QUOTAHOLDER_TABLES:
            if table not in tables:
                toolbox.out(f"Creating table {table}")
                script.append(sql)
                if model:
                    indexed.append(model)
    labels = [LABELS[a] for a in apps if a in LABELS]
    script += _content_types(db, labels, options.interactive)
    for model in indexed:
        toolbox.out(f"Installing index for quotaholder_app.{model} model")
    if "quotaholder_django.quotaholder_app" in synced:
        script.append(QUOTAHOLDER_FIXTURE)
        toolbox.out("Installed 1 object(s) from 1 fixture(s)")
    else:
        toolbox.out("No fixtures found.")
    migrated = [a for a in apps if a in MIGRATED and not options.all]
    if options.migrate:
        toolbox.out("Migrating...")
        script += _plan_migrations(db, settings, [MIGRATED[a] for a in migrated])
    if script:
        db.run(";\n".join(["SET CONSTRAINTS ALL IMMEDIATE", *script]))
    toolbox.out("\nSynced:\n > " + "\n > ".join(synced))
    if options.migrate:
        toolbox.out("\nMigrated:\n - " + "\n - ".join(migrated))
    elif migrated:
        toolbox.out("\nNot synced (use migrations):\n - " + "\n - ".join(migrated))
        toolbox.out("(use ./manage.py migrate to migrate these)")
    return 0


def _content_types(db, labels, interactive):
    """Django's update_contenttypes for each app label: the new models' content types added,
    the stale ones listed and deleted only on a typed 'yes' (`--noinput`: kept)."""
    if not labels:
        return []
    existing = {}
    for ct_id, label, model in db.rows("SELECT id, app_label, model FROM django_content_type WHERE app_label IN ("
                                       + ", ".join(lit(label) for label in labels) + ") ORDER BY name, id"):
        existing.setdefault(label, []).append((ct_id, model))
    script = []
    for label in labels:
        models = MODELS_0_13[label]
        have = {model for _, model in existing.get(label, [])}
        script += [f"INSERT INTO django_content_type (name, app_label, model) VALUES ({lit(m)}, {lit(label)}, "
                   f"{lit(m)})" for m in models if m not in have]
        stale = [(ct_id, model) for ct_id, model in existing.get(label, []) if model not in models]
        if not stale:
            continue
        answer = "no"
        if interactive:
            answer = ask(STALE_QUESTION.format("\n".join(f"    {label} | {model}" for _, model in stale)),
                         CONTENTTYPES_FRAMES)
        if answer == "yes":
            script.append("DELETE FROM django_content_type WHERE id IN (" + ", ".join(i for i, _ in stale) + ")")
        else:
            # Django 1.2 says so at verbosity 2 only; research (§5) has it printed: the lab does.
            toolbox.out("Stale content types remain.")
    return script


# -- migrate -------------------------------------------------------------------------------
@command
def migrate(argv, settings):
    """South's migrate: each installed app's missing migrations, in order, all of them in one
    transaction (see the module's docstring), each recorded in south_migrationhistory."""
    options, args = Parser("migrate", "[appname] [migrationname|zero]", [
        option("--noinput", action="store_false", dest="interactive", default=True),
        option("--list", action="store_true", dest="show_list", default=False),
        option("--all", action="store_true", default=False),
        option("--database", default="default")], "Runs migrations for all apps.").parse_args(argv)
    db = snf_common.apps_db(settings)
    labels = [MIGRATED[a] for a in installed_apps() if a in MIGRATED]
    if args:
        if args[0] not in labels:
            raise CommandError(f"App with label {args[0]} could not be found. Are you sure your INSTALLED_APPS "
                               "setting is correct?")
        labels = [args[0]]
    if options.show_list:
        for label in labels:
            applied = _applied(db, label)
            toolbox.out(f" {label}")
            for name, _sql in MIGRATIONS[label]:
                toolbox.out(f"  ({'*' if name in applied else ' '}) {name}")
            toolbox.out("")
        return 0
    script = _plan_migrations(db, settings, labels)
    if script:
        db.run(";\n".join(["SET CONSTRAINTS ALL IMMEDIATE", *script]))
    return 0


def _applied(db, label):
    return {m for (m,) in db.rows(f"SELECT migration FROM south_migrationhistory WHERE app_name = {lit(label)}")}


def _plan_migrations(db, settings, labels):
    """South's output for each app and the statements of its missing migrations (nothing
    written yet). A data migration that fails raises Crash after `Error in migration: ...`."""
    script = []
    for label in labels:
        toolbox.out(f"Running migrations for {label}:")
        applied = _applied(db, label)
        todo = [(name, sql) for name, sql in MIGRATIONS[label] if name not in applied]
        if not todo:
            toolbox.out("- Nothing to migrate.")
        else:
            toolbox.out(f" - Migrating forwards to {MIGRATIONS[label][-1][0]}.")
            for name, sql in todo:
                toolbox.out(f" > {label}:{name}")
                if sql is None:
                    try:
                        script += DATA_MIGRATIONS[(label, name)](db, settings)
                    except Crash:
                        toolbox.out(f"Error in migration: {label}:{name}")
                        raise
                else:
                    script.append(sql.strip().rstrip(";"))
                script.append("INSERT INTO south_migrationhistory (app_name, migration, applied) VALUES "
                              f"({lit(label)}, {lit(name)}, now())")
        toolbox.out(f" - Loading initial data for {label}.")
        toolbox.out("No fixtures found.")
    return script


# Django 1.2's django.core.validators.email_re: a top-level domain of 2 to 6 letters, so the
# lab's *.example addresses are no emails to validate_email (--set-capacity and astakos-quota
# --user take the uuid there, as they would on a real 0.13 with such addresses).
EMAIL_RE = re.compile(
    r"(^[-!#$%&'*+/=?^_`{}|~0-9A-Z]+(\.[-!#$%&'*+/=?^_`{}|~0-9A-Z]+)*"
    r'|^"([\001-\010\013\014\016-\037!#-\[\]-\177]|\\[\001-\011\013\014\016-\177])*"'
    r")@(?:[A-Z0-9](?:[A-Z0-9-]{0,61}[A-Z0-9])?\.)+[A-Z]{2,6}\.?$", re.IGNORECASE)
IM_0016 = "/usr/lib/pymodules/python2.6/astakos/im/migrations/0016_auth_providers_and_projects.py"
IM_0016_FRAMES = [
    ("/usr/lib/pymodules/python2.6/south/management/commands/migrate.py", 105, "handle",
     "ignore_ghosts = ignore_ghosts,"),
    ("/usr/lib/pymodules/python2.6/south/migration/__init__.py", 191, "migrate_app",
     "success = migrator.migrate_many(target, workplan, database)"),
    ("/usr/lib/pymodules/python2.6/south/migration/migrators.py", 57, "<lambda>", "return (lambda: direction(orm))"),
]


def _im_0016(db, settings):
    """im 0016_auth_providers_and_projects's data part (research §1), in its order: active
    users without activation_sent get it (and a verified email); every user a uuid4 and an auth
    provider row; the ids in ASTAKOS_MIGRATION_0045_DELETE_DUPLICATE_USER_IDS deleted (an id
    missing or not a duplicate raises); every email still shared case-insensitively asked
    about with input(), the others of its users deleted; username = lower(email) where the
    username is not an email. Returns the statements; raises Crash (nothing written)."""
    users, order = {}, []
    for user_id, email, username in db.rows("SELECT id, email, username FROM auth_user ORDER BY id"):
        users[int(user_id)] = (email, username)
        order.append(int(user_id))
    active = {int(i): a == "t" for i, a in db.rows("SELECT id, is_active FROM auth_user")}
    live = set(order)
    statements = [
        "UPDATE im_astakosuser a SET activation_sent = now(), email_verified = TRUE FROM auth_user u "
        "WHERE u.id = a.user_ptr_id AND u.is_active AND a.activation_sent IS NULL",
        "UPDATE im_astakosuser SET uuid = gen_random_uuid()::text WHERE uuid IS NULL",
        # provider other than local: that module and the third-party id; else local/astakos
        "INSERT INTO im_astakosuserauthprovider (user_id, module, identifier, active, auth_backend, info_data, "
        "created) SELECT user_ptr_id, CASE WHEN coalesce(provider, '') NOT IN ('', 'local') THEN provider "
        "ELSE 'local' END, CASE WHEN coalesce(provider, '') NOT IN ('', 'local') THEN third_party_identifier END, "
        "TRUE, 'astakos', '', now() FROM im_astakosuser ORDER BY user_ptr_id"]
    deleted = []

    def same_email(email):
        return sorted(i for i in live if users[i][0].lower() == email.lower())

    for pk in settings.get("ASTAKOS_MIGRATION_0045_DELETE_DUPLICATE_USER_IDS", []) or []:
        try:
            user_id = int(pk)
            email = users[user_id][0] if user_id in live else None
        except (TypeError, ValueError):
            email = None
        if email is None:
            raise Crash("Exception", f"You requested user with id {pk} to be removed but such user doesn't exist in "
                                     "database", [*IM_0016_FRAMES, (IM_0016, 55, "forwards", "raise Exception(msg)")])
        toolbox.out(f"Removing user: {email} ({user_id})")
        if len(same_email(email)) == 1:
            raise Crash("Exception", f"You requested user with duplicate email {email} and id ({user_id}) to be "
                                     "removed, but it seems that only one user exists with this email in the database.",
                        [*IM_0016_FRAMES, (IM_0016, 61, "forwards", "raise Exception(msg)")])
        live.discard(user_id)
        deleted.append(user_id)

    renamed = {}
    for user_id in [i for i in order if i in live]:  # the users as the loop's query found them
        email = users[user_id][0]
        existing = same_email(email)
        if len(existing) > 1:
            toolbox.out("Duplicate email found in database")
            for other in existing:
                toolbox.out(f"{other}: {users[other][0]} (is_active: {active[other]})")
            keep = py2_input("Select which user id you want to BE PRESERVED in the database: ", [
                *IM_0016_FRAMES, (IM_0016, 72, "forwards",
                                  'keep = input("Select which user id you want to BE PRESERVED in the database: ")')])
            if not keep:
                users_repr = "[" + ", ".join("<AstakosUser: AstakosUser object>" for _ in existing) + "]"
                raise Crash("Exception", f"Email {email} is not unique {users_repr}. Please resolve conflicts and run "
                                         "migrate again.", [*IM_0016_FRAMES, (IM_0016, 78, "forwards",
                                                                            "existing))")])
            try:
                kept = int(keep)
            except (TypeError, ValueError):
                raise Crash("ValueError", f"invalid literal for int() with base 10: {keep!r}",
                            [*IM_0016_FRAMES, (IM_0016, 75, "forwards",
                                               "for e in existing.exclude(pk=int(keep)):")]) from None
            for other in existing:
                if other != kept:
                    live.discard(other)
                    deleted.append(other)
        survivors = same_email(email)
        if not survivors:  # the id typed was none of them: all of them were deleted
            raise Crash("DoesNotExist", "AstakosUser matching query does not exist.", [
                *IM_0016_FRAMES, (IM_0016, 79, "forwards", "u = orm.AstakosUser.objects.get(email__iexact=u.email)")])
        survivor = survivors[0]
        if not EMAIL_RE.match(users[survivor][1]) and survivor not in renamed:
            renamed[survivor] = users[survivor][0].lower()
    if deleted:
        ids = ", ".join(str(i) for i in deleted)
        # AstakosUser.delete(): its auth providers, itself and its auth_user row
        statements += [f"DELETE FROM im_astakosuserauthprovider WHERE user_id IN ({ids})",
                       f"DELETE FROM im_astakosuser WHERE user_ptr_id IN ({ids})",
                       f"DELETE FROM auth_user WHERE id IN ({ids})"]
    if renamed:
        values = ", ".join(f"({i}, {lit(name)})" for i, name in sorted(renamed.items()))
        statements.append(f"UPDATE auth_user u SET username = v.name FROM (VALUES {values}) AS v (id, name) "
                          "WHERE u.id = v.id")
    return statements


DATA_MIGRATIONS = {("im", "0016_auth_providers_and_projects"): _im_0016}


# -- services ------------------------------------------------------------------------------
@command
def service_list(argv, settings):
    """Columns id, order, name, url, auth_token, icon right-justified to 3, 3, 12, 40, 20, 20
    under a dashed line; -c: the fields joined by pipes, no header (research §5)."""
    options, _ = Parser("service-list", "", [option("-c", action="store_true", dest="csv", default=False)],
                        "List services").parse_args(argv)
    db = snf_common.apps_db(settings)
    rows = db.rows('SELECT id, "order", name, url, coalesce(auth_token, \'\'), icon FROM im_service ORDER BY id')
    widths = (3, 3, 12, 40, 20, 20)
    if not options.csv:
        header = " ".join(label.rjust(w) for label, w in zip(("id", "order", "name", "url", "auth_token", "icon"),
                                                            widths, strict=True))
        toolbox.out(header)
        toolbox.out("-" * len(header))
    for row in rows:
        toolbox.out("|".join(row) if options.csv else " ".join(f.rjust(w) for f, w in zip(row, widths, strict=True)))
    return 0


@command
def service_update(argv, settings):
    """Silent on success (research §5)."""
    options, args = Parser("service-update", "<service ID>", [
        option("--order", dest="order", metavar="NUM"), option("--name", dest="name"), option("--url", dest="url"),
        option("--icon", dest="icon"), option("--auth-token", dest="auth_token"),
        option("--renew-auth-token", action="store_true", dest="renew_token", default=False)],
        "Modify service attributes").parse_args(argv)
    if len(args) != 1:
        raise CommandError("Please provide a service ID")
    try:
        service_id = int(args[0])
    except ValueError:
        raise Crash("ValueError", f"invalid literal for int() with base 10: '{args[0]}'") from None
    db = snf_common.apps_db(settings)
    row = db.rows(f"SELECT name, url FROM im_service WHERE id = {service_id}")
    if not row:
        raise CommandError("Service does not exist. You may run snf-mange service-list for available service IDs.")
    name, url = row[0]
    sets = []
    if options.order is not None:
        try:
            sets.append(f'"order" = {int(options.order)}')
        except ValueError:
            raise Crash("ValueError", f"invalid literal for int() with base 10: '{options.order}'") from None
    for column, value in (("name", options.name), ("url", options.url), ("icon", options.icon),
                          ("auth_token", options.auth_token)):
        if value:
            sets.append(f"{column} = {lit(value)}")
    if options.renew_token and not options.auth_token:
        # Service.renew_token(): base64 of md5(name, url, asctime()), created now, no expiry
        digest = hashlib.md5((options.name or name).encode() + (options.url or url).encode() + time.asctime().encode())
        sets.append(f"auth_token = {lit(base64.b64encode(digest.digest()).decode())}, auth_token_created = now(), "
                    "auth_token_expires = NULL")
    if sets:
        db.run(f"UPDATE im_service SET {', '.join(sets)} WHERE id = {service_id}")
    return 0


# -- the quotaholder as Astakos reaches it (im/endpoints/qh.py) ------------------------------
class QuotaholderError(Exception):
    pass


def quotaholder(settings, call, rows):
    """A quotaholder call with Astakos's client: None when ASTAKOS_QUOTAHOLDER_URL is empty
    (get_client() gives no client), the answer otherwise; QuotaholderError on a refusal."""
    if not settings.get("ASTAKOS_QUOTAHOLDER_URL"):
        return None
    status, data = snf_quotaholder.call(settings, call, settings.get("ASTAKOS_QUOTAHOLDER_TOKEN", ""), rows)
    if status != 200:
        raise QuotaholderError(f"{status}: {data}")
    return data


INIT_FRAMES = [("/usr/lib/pymodules/python2.6/astakos/im/management/commands/astakos-init.py", 58, "handle",
                "load_service_resources()")]


@command
def astakos_init(argv, settings):
    """--load-service-resources: load_service_resources() of 0.13 (research §5)."""
    options, _ = Parser("astakos-init", "", [
        option("--load-service-resources", action="store_true", dest="load", default=False)],
        "Register service resources").parse_args(argv)
    if not options.load:
        return 0
    db = snf_common.apps_db(settings)
    services = settings.get("ASTAKOS_SERVICES", DEFAULT_SERVICES)
    known = {name: int(i) for i, name in db.rows("SELECT id, name FROM im_service")}
    resources = {(s, n) for s, n in db.rows("SELECT s.name, r.name FROM im_resource r "
                                            "JOIN im_service s ON s.id = r.service_id")}
    statements, loaded, counter = [], [], 0
    for name, data in sorted(services.items()):
        url = data.get("url")
        order = data.get("order", counter)
        counter = order + 1
        if name not in known:
            if url is None:  # Service.url is NOT NULL: get_or_create fails, what came before stays
                if statements:
                    db.run(";\n".join(statements))
                raise Crash("IntegrityError", 'null value in column "url" violates not-null constraint',
                            [*INIT_FRAMES, ("/usr/lib/pymodules/python2.6/astakos/im/models.py", 236,
                                            "load_service_resources", "defaults={'url': url, 'order': order}")])
            statements.append(f'INSERT INTO im_service (name, url, icon, "order") VALUES ({lit(name)}, {lit(url)}, '
                              f"'', {int(order)})")
            known[name] = None
        elif url is not None:
            statements.append(f"UPDATE im_service SET url = {lit(url)} WHERE name = {lit(name)}")
        service_id = f"(SELECT id FROM im_service WHERE name = {lit(name)})"
        for resource in data.get("resources") or ():
            resource = dict(resource)
            resource_name = resource.pop("name", "")
            try:
                if (name, resource_name) in resources:
                    statements.append(
                        f'UPDATE im_resource SET "desc" = {lit(resource["desc"])}, unit = {lit(resource.get("unit"))}, '
                        f'"group" = {lit(resource["group"])}, uplimit = {int(resource["uplimit"])} '
                        f"WHERE service_id = {service_id} AND name = {lit(resource_name)}")
                else:
                    unknown = [k for k in resource if k not in ("desc", "unit", "group", "uplimit")]
                    if unknown:
                        raise TypeError(f"'{unknown[0]}' is an invalid keyword argument for this function")
                    statements.append(
                        'INSERT INTO im_resource (name, service_id, "desc", unit, "group", uplimit) VALUES '
                        f"({lit(resource_name)}, {service_id}, {lit(resource.get('desc'))}, "
                        f"{lit(resource.get('unit'))}, {lit(resource.get('group'))}, {int(resource.get('uplimit', 0))})")
                    resources.add((name, resource_name))
                loaded.append((name, f"{name}.{resource_name}"))
            except (KeyError, TypeError, ValueError) as exc:
                # printed with Python 2's `print "Cannot create resource ", name` (two spaces)
                toolbox.out(f"Cannot create resource  {resource_name}")
                traceback(Crash(type(exc).__name__, str(exc) if not isinstance(exc, KeyError) else repr(exc.args[0]),
                                [("/usr/lib/pymodules/python2.6/astakos/im/models.py", 249, "load_service_resources",
                                  "r.desc = resource['desc']")]))
    if statements:
        db.run(";\n".join(statements))
    # register_services(): create_entity for each; the rejected ones (there already) left alone
    names = sorted(services)
    if not names:
        return 0
    payload = [[n, "system", ENTITY_KEY, ""] for n in names]
    try:
        existing = quotaholder(settings, "create_entity", payload)
        if existing is None:  # no client: register_services() takes len(None)
            raise Crash("TypeError", "object of type 'NoneType' has no len()", [
                *INIT_FRAMES, ("/usr/lib/pymodules/python2.6/astakos/im/models.py", 257, "load_service_resources",
                               "register_services(ss)"),
                ("/usr/lib/pymodules/python2.6/astakos/im/endpoints/qh.py", 305, "register_services",
                 "if 0 < len(existing) < len(services):")])
        if 0 < len(existing) < len(names):
            missing = [n for i, n in enumerate(names) if i not in existing]
            again = quotaholder(settings, "create_entity", [[n, "system", ENTITY_KEY, ""] for n in missing])
            if again:
                raise Crash("RuntimeError", f"Failed to register services: {[missing[i] for i in again]!r}")
        # register_resources(): each resource on its service's holding, practically unlimited
        quotaholder(settings, "set_quota", [[service, full, ENTITY_KEY] + [QH_PRACTICALLY_INFINITE] * 4 + [0]
                                            for service, full in loaded])
    except QuotaholderError as exc:
        raise Crash("CallError", str(exc), INIT_FRAMES) from None
    return 0


# astakos/im/settings.py's default ASTAKOS_SERVICES at 0.13 (the runbook's values).
GiB = 1024 ** 3
DEFAULT_SERVICES = {
    "cyclades": {"resources": [
        {"name": "disk", "group": "compute", "uplimit": 30 * GiB, "unit": "bytes", "desc": "Virtual machine disk size"},
        {"name": "cpu", "group": "compute", "uplimit": 6, "desc": "Number of virtual machine processors"},
        {"name": "ram", "group": "compute", "uplimit": 6 * GiB, "unit": "bytes", "desc": "Virtual machine memory size"},
        {"name": "vm", "group": "compute", "uplimit": 2, "desc": "Number of virtual machines"},
        {"name": "network.private", "group": "network", "uplimit": 1, "desc": "Private networks"}]},
    "pithos+": {"resources": [
        {"name": "diskspace", "group": "storage", "uplimit": 5 * GiB, "unit": "bytes",
         "desc": "Pithos account diskspace"}]},
}


# -- users ---------------------------------------------------------------------------------
USER_FIELDS = {  # user-list --filter-by keys: AstakosUser's fields the lab has
    "id": "u.id", "username": "u.username", "email": "u.email", "first_name": "u.first_name",
    "last_name": "u.last_name", "is_active": "u.is_active", "is_staff": "u.is_staff",
    "is_superuser": "u.is_superuser", "date_joined": "u.date_joined", "last_login": "u.last_login",
    "uuid": "a.uuid", "email_verified": "a.email_verified", "is_verified": "a.is_verified",
    "has_credits": "a.has_credits", "has_signed_terms": "a.has_signed_terms", "provider": "a.provider",
    "affiliation": "a.affiliation", "level": "a.level", "invitations": "a.invitations",
    "activation_sent": "a.activation_sent", "updated": "a.updated", "disturbed_quota": "a.disturbed_quota",
}
USERS = "FROM auth_user u JOIN im_astakosuser a ON a.user_ptr_id = u.id"


def _filter(filter_by):
    """_common.filter_results(): `key<op>value,...` as SQL conditions (yes/true/t and
    no/false/f as booleans); an unknown key is Django's FieldError."""
    conditions = []
    for query in filter_by.split(","):
        for op in ("!=", ">=", "=>", "<=", "=<", ">", "<", "="):
            if op in query:
                key, value = query.split(op, 1)
                if key not in USER_FIELDS:
                    raise CommandError(f"Cannot resolve keyword '{key}' into field. Choices are: "
                                       + ", ".join(sorted(USER_FIELDS)))
                if value.lower() in ("yes", "true", "t", "no", "false", "f"):
                    value = value.lower() in ("yes", "true", "t")
                sql_op = {"=>": ">=", "=<": "<=", "!=": "<>"}.get(op, op)
                conditions.append(f"{USER_FIELDS[key]} {sql_op} {lit(value)}")
                break
    return conditions


@command
def user_list(argv, settings):
    """Columns id(3) [display name(24)] real name(24) active(6) admin(5) uuid(36)
    providers(24), right-justified; -c pipes (research §5)."""
    options, _ = Parser("user-list", "", [
        option("-c", action="store_true", dest="csv", default=False),
        option("-p", action="store_true", dest="pending", default=False),
        option("-n", action="store_true", dest="pending_send_mail", default=False),
        option("--uuid", action="store_true", dest="only_uuid", default=False),
        option("--displayname", action="store_true", dest="displayname", default=False),
        option("--active", action="store_true", dest="active", default=False),
        option("--filter-by", dest="filter_by")], "List users").parse_args(argv)
    conditions = []
    if options.pending:
        conditions.append("NOT u.is_active")
    elif options.pending_send_mail:
        conditions.append("NOT u.is_active AND a.activation_sent IS NULL")
    if options.active:
        conditions.append("u.is_active")
    if options.filter_by:
        conditions += _filter(options.filter_by)
    db = snf_common.apps_db(settings)
    where = " WHERE " + " AND ".join(conditions) if conditions else ""
    rows = db.rows(f"SELECT u.id, u.username, u.first_name || ' ' || u.last_name, u.is_active, u.is_superuser, "
                   f"coalesce(a.uuid, '') {USERS}{where} ORDER BY u.id")
    providers = {}
    for user_id, text in db.rows(
            "SELECT user_id, CASE WHEN identifier <> '' THEN module || ':' || identifier WHEN auth_backend <> '' "
            "THEN module || ':' || auth_backend ELSE module END FROM im_astakosuserauthprovider WHERE active "
            "ORDER BY id"):
        providers.setdefault(user_id, []).append(text)
    labels = [("id", 3)] + ([("display name", 24)] if options.displayname else []) + [
        ("real name", 24), ("active", 6), ("admin", 5), ("uuid", 36), ("providers", 24)]
    if not options.csv:
        header = " ".join(label.rjust(w) for label, w in labels)
        toolbox.out(header)
        toolbox.out("-" * len(header))
    for user_id, username, realname, is_active, is_admin, user_uuid in rows:
        fields = [user_id] + ([username] if options.displayname else []) + [
            realname, yes_no(is_active), yes_no(is_admin), user_uuid, ",".join(providers.get(user_id, []))]
        toolbox.out("|".join(fields) if options.csv else
                    " ".join(f.rjust(w) for f, (_, w) in zip(fields, labels, strict=True)))
    return 0


def _since(seconds):
    """Django 1.2's timesince()/timeuntil() of a number of seconds."""
    chunks = ((31536000, "year"), (2592000, "month"), (604800, "week"), (86400, "day"), (3600, "hour"), (60, "minute"))
    first = next((i for i, (size, _) in enumerate(chunks) if seconds >= size), None)
    if first is None:
        return "0 minutes"
    i, (size, name) = first, chunks[first]
    count = seconds // size
    text = f"{count} {name}{'s' if count != 1 else ''}"
    if i + 1 < len(chunks):
        size2, name2 = chunks[i + 1]
        count2 = (seconds - size * count) // size2
        if count2:
            text += f", {count2} {name2}{'s' if count2 != 1 else ''}"
    return text


def _when(epoch, now):
    """_common.format_date(): '' for none, `x ago` or `in x`."""
    if epoch is None:
        return ""
    delta = int(now - float(epoch))
    return f"{_since(delta)} ago" if delta >= 0 else f"in {_since(-delta)}"


def _format(value, level):
    """_common.format(): booleans YES/NO, dicts nested (keys right-justified to 22 per level)."""
    if isinstance(value, bool):
        return yes_no(value)
    if isinstance(value, dict):
        return "\n" + "".join(f"{k.rjust(level * 22)}: {_format(v, level + 1)}\n" for k, v in sorted(value.items()))
    return str(value)


@command
def user_show(argv, settings):
    """The user's fields as 0.13's user-show prints them (an id, a uuid, else an email matched
    case-insensitively); unknown: `Error: Unknown user with email '<x>'` (research §5)."""
    _, args = Parser("user-show", "<user ID or email>", [], "Show user info").parse_args(argv)
    if len(args) != 1:
        raise CommandError("Please provide a user ID or email")
    key = args[0]
    if key.isdigit():
        where = f"u.id = {int(key)}"
    elif re.fullmatch(r"(urn:uuid:)?\{?[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}\}?", key):
        where = f"a.uuid = {lit(key)}"
    else:
        where = f"upper(u.email) = upper({lit(key)})"
    db = snf_common.apps_db(settings)
    epoch = "extract(epoch FROM {})"
    rows = db.rows(
        "SELECT u.id, a.uuid, u.email, u.first_name, u.last_name, u.is_active, u.is_superuser, "
        f"{epoch.format('u.last_login')}, {epoch.format('u.date_joined')}, {epoch.format('a.updated')}, "
        f"{epoch.format('a.auth_token_expires')}, a.invitations, a.level, a.is_verified, a.has_credits, "
        f"a.email_verified, u.username, {epoch.format('a.activation_sent')}, extract(epoch FROM now()) "
        f"{USERS} WHERE {where} ORDER BY u.id")
    if not rows:
        raise CommandError(f"Unknown user with {'id' if key.isdigit() else 'email'} '{key}'")
    for row in rows:
        (user_id, user_uuid, email, first, last, is_active, admin, last_login, joined, updated, expires, invitations,
         level, verified, credits, email_verified, username, activation, now) = row
        now = float(now)
        providers = ",".join(p for (p,) in db.rows(
            "SELECT CASE WHEN identifier <> '' THEN module || ':' || identifier WHEN auth_backend <> '' "
            "THEN module || ':' || auth_backend ELSE module END FROM im_astakosuserauthprovider "
            f"WHERE user_id = {user_id} AND active ORDER BY id"))
        quotas = {resource: numbers[1] for resource, (numbers, _) in _astakos_quotas(db, f"u.id = {user_id}").get(
            user_uuid, ("", "", "", {}))[3].items()}
        fields = [("id", user_id), ("uuid", user_uuid or "None"), ("email", email), ("first name", first),
                  ("last name", last), ("active", is_active == "t"), ("admin", admin == "t"),
                  ("last login", _when(last_login, now)), ("date joined", _when(joined, now)),
                  ("last update", _when(updated, now)), ("token expiration", _when(expires, now)),
                  ("invitations", invitations), ("invitation level", level), ("providers", providers),
                  ("verified", verified == "t"), ("has_credits", yes_no(credits)), ("groups", "[]"),
                  ("permissions", "[]"), ("group_permissions", "[]"), ("email_verified", email_verified == "t"),
                  ("username", username), ("activation_sent_date", _when(activation, now))]
        settings_rows = db.rows(f"SELECT setting, value FROM im_usersetting WHERE user_id = {user_id}")
        text = "\n" + "".join(f"{k.rjust(22)}: {_format(v, 2)}\n" for k, v in fields)
        if settings_rows:
            text += f"{'settings'.rjust(22)}: {_format(dict(settings_rows), 2)}\n"
        text += f"{'resources'.rjust(22)}: {_format(quotas, 2)}\n"
        sys.stdout.write(text + "\n")
    return 0


# -- quotas --------------------------------------------------------------------------------
DECIMAL_INVALID = "[u'This value must be a decimal number.']"  # IntDecimalField's ValidationError


def _decimal(text):
    """An IntDecimalField value of a string: its integer (rounded as numeric(38, 0) rounds), or
    the message Django 1.2 fails with."""
    from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return None, DECIMAL_INVALID
    if not value.is_finite():
        return None, DECIMAL_INVALID
    value = int(value.to_integral_value(ROUND_HALF_UP))
    if len(str(abs(value))) > 38:
        return None, "quantize result has too many digits for current context"
    return value, None


def _is_uuid(text):
    return bool(re.fullmatch(r"(urn:uuid:)?\{?[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}\}?", text or ""))


@command
def user_set_initial_quota(argv, settings):
    """0.13's command (research §4): --from-file <file> (lines `<uuid> <resource> <capacity>
    <quantity> <import_limit> <export_limit>`, users by uuid only, per-line failures printed,
    exit 0) or --set-capacity <uuid or email> <resource> <capacity|default> [-f]; a positional
    file (the runbook's 0.13rc form) is ignored and refused."""
    options, _args = Parser("user-set-initial-quota", "", [
        option("--from-file", dest="from_file", metavar="<exported-quotas.txt>"),
        option("--set-capacity", dest="set_capacity", nargs=3, metavar="<uuid or email> <resource> <capacity>"),
        option("-f", "--no-confirm", action="store_true", dest="force", default=False)],
        "Import user quota limits from file or set quota for a single user from the command line").parse_args(argv)
    if options.from_file is not None:
        if options.set_capacity is not None:
            raise CommandError("Cannot combine option `--from-file' with `--set-capacity'.")
        return _import_quotas(snf_common.apps_db(settings), options.from_file)
    if options.set_capacity is not None:
        return _set_capacity(snf_common.apps_db(settings), *options.set_capacity, force=options.force)
    raise CommandError("Please use either `--from-file' or `--set-capacity' options")


def _resource_ids(db):
    return {f"{s}.{r}": (int(i), int(u)) for i, s, r, u in db.rows(
        "SELECT r.id, s.name, r.name, r.uplimit FROM im_resource r JOIN im_service s ON s.id = r.service_id")}


def _resource_of(resources, name):
    """Resource.objects.get(service__name=s, name=r) of `s.r` split at the first dot."""
    service, _, rest = name.partition(".")
    return resources.get(f"{service}.{rest}")


def _upsert_quota(user_id, resource_id, capacity, quantity, import_limit, export_limit):
    return ("INSERT INTO im_astakosuserquota (user_id, resource_id, capacity, quantity, import_limit, export_limit) "
            f"VALUES ({user_id}, {resource_id}, {capacity}, {quantity}, {import_limit}, {export_limit}) "
            "ON CONFLICT (resource_id, user_id) DO UPDATE SET capacity = EXCLUDED.capacity, quantity = "
            "EXCLUDED.quantity, import_limit = EXCLUDED.import_limit, export_limit = EXCLUDED.export_limit")


def _import_quotas(db, location):
    try:
        with open(location) as f:
            lines = f.readlines()
    except OSError as exc:
        raise CommandError(f"[Errno {exc.errno}] {exc.strerror}: '{location}'") from None
    resources = _resource_ids(db)
    wanted = sorted({line.split(" ")[0] for line in lines})
    by_uuid = {}
    if wanted:
        by_uuid = {u: int(i) for u, i in db.rows("SELECT uuid, user_ptr_id FROM im_astakosuser WHERE uuid IN ("
                                                 + ", ".join(lit(u) for u in wanted) + ")")}
    statements = []
    for line in lines:
        fields = line.rstrip("\n").split(" ")
        if len(fields) != 6:
            toolbox.out(f"Invalid line format: {fields!r}:")
            continue
        user, resource, *numbers = fields
        if user not in by_uuid:
            toolbox.out(f"Not found user having uuid: {user}")
            continue
        found = _resource_of(resources, resource)
        if found is None:
            toolbox.out("Failed to policy: Resource matching query does not exist.")
            continue
        values = [_decimal(n) for n in numbers]
        failed = next((message for _, message in values if message), None)
        if failed:
            toolbox.out(f"Failed to policy: {failed}")
            continue
        statements.append(_upsert_quota(by_uuid[user], found[0], *(v for v, _ in values)))
    if statements:
        db.run(";\n".join(statements))
    return 0


SET_CAPACITY_FRAMES = [("/usr/lib/pymodules/python2.6/astakos/im/management/commands/user-set-initial-quota.py", 150,
                        "set_limit", "response = raw_input()")]


def _set_capacity(db, user_ident, resource, capacity, force):
    if _is_uuid(user_ident):
        where, missing = f"a.uuid = {lit(user_ident)}", f"Not found user having uuid: {user_ident}"
    elif EMAIL_RE.match(user_ident):
        where, missing = f"u.username = {lit(user_ident)}", f"Not found user having email: {user_ident}"
    else:
        raise CommandError("Please specify user by uuid or email")
    rows = db.rows(f"SELECT u.id, a.uuid, u.username {USERS} WHERE {where}")
    if not rows:
        raise CommandError(missing)
    user_id, user_uuid, username = rows[0]
    if capacity != "default":
        try:
            capacity = int(capacity)
        except ValueError:
            raise CommandError("Please specify capacity as a decimal integer or 'default'") from None
    found = _resource_of(_resource_ids(db), resource)
    if found is None:
        raise CommandError(f"No such resource: {resource}")
    resource_id, default_capacity = found
    current = db.value(f"SELECT capacity FROM im_astakosuserquota WHERE user_id = {user_id} "
                       f"AND resource_id = {resource_id}")
    if not force:
        toolbox.out(f"user: {user_uuid} ({username})")
        toolbox.out(f"default capacity: {default_capacity}")
        toolbox.out(f"current capacity: {current if current is not None else 'default'}")
        toolbox.out(f"new capacity: {capacity}")
        sys.stdout.write("Confirm? (y/n) ")
        response = ask("", SET_CAPACITY_FRAMES)
        if response.lower() not in ("y", "yes"):
            toolbox.out("Aborted.")
            return 0
    if capacity == "default":
        if current is None:
            traceback(Crash("DoesNotExist", "AstakosUserQuota matching query does not exist."))
            raise CommandError("Failed to remove policy: AstakosUserQuota matching query does not exist.")
        db.run(f"DELETE FROM im_astakosuserquota WHERE user_id = {user_id} AND resource_id = {resource_id}")
    else:
        if len(str(abs(capacity))) > 38:
            raise CommandError("Failed to add policy: quantize result has too many digits for current context")
        db.run(_upsert_quota(user_id, resource_id, capacity, 0, QH_PRACTICALLY_INFINITE, QH_PRACTICALLY_INFINITE))
    return 0


def _astakos_quotas(db, user_condition):
    """initial_quotas() and users_quotas() of 0.13 for the users the SQL condition selects:
    {uuid: (username, email, real name, {resource: ((q, c, i, e), python 2 reprs)})}. A
    resource's default is QuotaValues(0, uplimit, QH_PRACTICALLY_INFINITE twice); a user's own
    im_astakosuserquota row replaces it; the member grants of the user's active project
    memberships add to it. Values read from the database are Python 2 longs (IntDecimalField)."""
    users = {}
    for user_uuid, username, email, realname in db.rows(
            f"SELECT a.uuid, u.username, u.email, u.first_name || ' ' || u.last_name {USERS} "
            f"WHERE {user_condition} AND a.uuid IS NOT NULL ORDER BY u.id"):
        users[user_uuid] = (username, email, realname, {})
    if not users:
        return users
    defaults = [(f"{s}.{r}", int(u)) for s, r, u in db.rows(
        "SELECT s.name, r.name, r.uplimit FROM im_resource r JOIN im_service s ON s.id = r.service_id")]
    for quotas in (v[3] for v in users.values()):
        for resource, uplimit in defaults:
            quotas[resource] = ((0, uplimit, QH_PRACTICALLY_INFINITE, QH_PRACTICALLY_INFINITE),
                                ("0", f"{uplimit}L", f"{QH_PRACTICALLY_INFINITE}L", f"{QH_PRACTICALLY_INFINITE}L"))
    for user_uuid, resource, *values in db.rows(
            f"SELECT a.uuid, s.name || '.' || r.name, q.quantity, q.capacity, q.import_limit, q.export_limit {USERS} "
            "JOIN im_astakosuserquota q ON q.user_id = u.id JOIN im_resource r ON r.id = q.resource_id "
            f"JOIN im_service s ON s.id = r.service_id WHERE {user_condition} AND a.uuid IS NOT NULL"):
        numbers = tuple(int(v) for v in values)
        users[user_uuid][3][resource] = (numbers, tuple(f"{n}L" for n in numbers))
    for user_uuid, resource, *values in db.rows(
            f"SELECT a.uuid, s.name || '.' || r.name, g.member_capacity, g.member_import_limit, g.member_export_limit "
            f"{USERS} JOIN im_projectmembership m ON m.person_id = u.id AND m.is_active "
            "JOIN im_projectresourcegrant g ON g.project_application_id = m.application_id "
            "JOIN im_resource r ON r.id = g.resource_id JOIN im_service s ON s.id = r.service_id "
            f"WHERE {user_condition} AND a.uuid IS NOT NULL"):
        quotas = users[user_uuid][3]
        (q, c, i, e), _ = quotas.get(resource, ((0, 0, 0, 0), None))
        c2, i2, e2 = (int(v) for v in values)
        numbers = (q, c + c2, i + i2, e + e2)
        quotas[resource] = (numbers, (py2_int(q), *(f"{n}L" for n in numbers[1:])))
    return users


def _values_text(values, unicode_keys):
    """A {resource: QuotaValues} dict as Python 2 prints it (im/endpoints/qh.py QuotaValues, a
    namedtuple: its repr). Dicts print in hash order; the lab sorts by resource."""
    prefix = "u" if unicode_keys else ""
    return "{" + ", ".join(
        f"{prefix}'{resource}': QuotaValues(quantity={q}, capacity={c}, import_limit={i}, export_limit={e})"
        for resource, (q, c, i, e) in sorted(values.items())) + "}"


QUOTA_FIELDS = ("quantity", "capacity", "import_limit", "export_limit")


@command
def astakos_quota(argv, settings):
    """0.13's astakos-quota (research §5, §1): the verified users' Astakos quotas (defaults,
    their own, project grants) against the quotaholder's (entity = uuid, key '1').

    --verify prints, in 0.13's format (astakos-quota.py print_verify):
        Users not registered in quotaholder:
        <real name> (<email>)            one line per user the quotaholder lacks
        <blank line>
        No quotas for <uuid> (<username>) in quotaholder.
        Quotas differ for <uuid> (<username>):
        Quotas according to quotaholder:
        {u'<resource>': QuotaValues(quantity=0, capacity=2, import_limit=..., export_limit=...), ...}
        Quotas according to astakos:
        {'<resource>': QuotaValues(quantity=0, capacity=5L, ...), ...}
        <blank line>
        Quotas differ for N users.
    (the quotaholder's numbers come over JSON: Python 2 ints, a long past 2**63; Astakos's are
    IntDecimalField longs: `5L`; plugins/synnefo/quotas.py parse_verify reads this). In sync:
    no output. --sync registers the missing entities, sets the differing users' quotas and
    prints `Synced N users:` and `<uuid> (<username>)` lines, or `No sync needed.`. Without
    either: the list of the quotaholder's holdings."""
    options, _ = Parser("astakos-quota", "", [
        option("--list", action="store_true", dest="list", default=False),
        option("--verify", action="store_true", dest="verify", default=False),
        option("--sync", action="store_true", dest="sync", default=False),
        option("--user", dest="user", metavar="<uuid or email>")], "Inspect quotaholder status").parse_args(argv)
    db = snf_common.apps_db(settings)
    if options.user is not None:
        if _is_uuid(options.user):
            condition, missing = f"a.uuid = {lit(options.user)}", f"Not found user having uuid: {options.user}"
        elif EMAIL_RE.match(options.user):
            condition, missing = f"u.username = {lit(options.user)}", f"Not found user having email: {options.user}"
        else:
            raise CommandError("Please specify user by uuid or email")
        found = db.rows(f"SELECT a.uuid, a.email_verified {USERS} WHERE {condition}")
        if not found:
            raise CommandError(missing)
        if found[0][1] != "t" and options.sync:
            raise CommandError(f"User {found[0][0]} is not verified.")
        failure = "Failed to compute quotas."
    else:
        sys.stdout.flush()
        toolbox.err("Calculating all quotas...")
        condition, failure = "a.email_verified", "Syncing failed."
    try:
        astakos = _astakos_quotas(db, condition)
        state = _quotaholder_state(settings, astakos)
        if options.sync:
            unregistered = [u for u in astakos if u not in state["registered"]]
            if unregistered:
                quotaholder(settings, "create_entity", [[u, "system", ENTITY_KEY, ""] for u in unregistered])
            rows = [[u, r, ENTITY_KEY, *numbers, 0] for u in state["differ"]
                    for r, (numbers, _) in sorted(astakos[u][3].items())]
            if rows:
                rejected = quotaholder(settings, "set_quota", rows)
                if rejected:
                    raise QuotaholderError(f"set_quota rejected {rejected}")
    except (QuotaholderError, snf_common.DatabaseError, TypeError):
        raise CommandError(failure) from None
    if not options.verify and not options.sync:
        return _list_quotas(astakos, state)
    if options.verify:
        unregistered = [u for u in astakos if u not in state["registered"]]
        if unregistered:
            toolbox.out("Users not registered in quotaholder:")
            for user_uuid in unregistered:
                _username, email, realname, _quotas = astakos[user_uuid]
                toolbox.out(f"{realname} ({email})")
            toolbox.out("")
        for user_uuid in state["differ"]:
            username, _email, _realname, quotas = astakos[user_uuid]
            held = state["limits"].get(user_uuid)
            if held is None:
                toolbox.out(f"No quotas for {user_uuid} ({username}) in quotaholder.")
                continue
            toolbox.out(f"Quotas differ for {user_uuid} ({username}):")
            toolbox.out("Quotas according to quotaholder:")
            toolbox.out(_values_text({r: tuple(py2_int(n) for n in v) for r, v in held.items()}, True))
            toolbox.out("Quotas according to astakos:")
            toolbox.out(_values_text({r: text for r, (_, text) in quotas.items()}, False))
            toolbox.out("")
        if state["differ"]:
            toolbox.out(f"Quotas differ for {len(state['differ'])} users.")
    if options.sync:
        if not state["differ"]:
            toolbox.out("No sync needed.")
        else:
            toolbox.out(f"Synced {len(state['differ'])} users:")
            for user_uuid in state["differ"]:
                toolbox.out(f"{user_uuid} ({astakos[user_uuid][0]})")
    return 0


def _quotaholder_state(settings, astakos):
    """sync_users()'s view of the quotaholder: the users registered there (get_entity), their
    limits and counters (get_quota) and the users whose limits differ from Astakos's
    (`differ`, in user order). No client (no URL) fails as 0.13 does: a TypeError."""
    users = list(astakos)
    entities = quotaholder(settings, "get_entity", [[u, ENTITY_KEY] for u in users])
    if entities is None:
        raise TypeError("'NoneType' object is not iterable")
    registered = {e for e, _owner in entities}
    resources = sorted({r for v in astakos.values() for r in v[3]})
    got = quotaholder(settings, "get_quota", [[u, r, ENTITY_KEY] for u in users if u in registered
                                              for r in resources]) or []
    limits, counters = {}, {}
    for entity, resource, q, c, i, e, imported, exported, returned, released, _flags in got:
        limits.setdefault(entity, {})[resource] = (int(q), int(c), int(i), int(e))
        counters.setdefault(entity, {})[resource] = int(imported) - int(exported) + int(returned) - int(released)
    differ = [u for u in users if limits.get(u) != {r: numbers for r, (numbers, _) in astakos[u][3].items()}]
    return {"registered": registered, "limits": limits, "counters": counters, "differ": differ}


def _list_quotas(astakos, state):
    """list_quotas(): the quotaholder's holdings, columns uuid(36) email(30) resource(24)
    initial(12) total(12) usage(12), right-justified."""
    labels = (("uuid", 36), ("email", 30), ("resource", 24), ("initial", 12), ("total", 12), ("usage", 12))
    header = " ".join(label.rjust(w) for label, w in labels)
    toolbox.out(header)
    toolbox.out("-" * len(header))
    for user_uuid in sorted(state["limits"]):
        _username, email, _realname, quotas = astakos[user_uuid]
        for resource, numbers in sorted(state["limits"][user_uuid].items()):
            initial = quotas[resource][0][1] if resource in quotas else ""
            fields = (user_uuid, email, resource, str(initial), str(numbers[1]),
                      str(state["counters"][user_uuid][resource]))
            toolbox.out(" ".join(f.rjust(w) for f, (_, w) in zip(fields, labels, strict=True)))
    return 0


# -- projects ------------------------------------------------------------------------------
TERMINATED, STATE_DISPLAY = 100, {1: "Active", 10: "Suspended", 100: "Terminated"}


@command
def project_control(argv, settings):
    """--check-expired / --terminate-expired (research §5): the projects not terminated whose
    application's end_date has passed, as a count line and a table of columns Project(10)
    Name(30) Status(14) Expiration date(30), right-justified and joined by spaces as 0.13's
    print_expired writes them (the state and name as found, before terminating); terminating
    sets state TERMINATED, the reason, no name (Project.terminate()) and deactivates the project
    (the quotaholder sync that follows), then `N projects have been terminated.`."""
    options, _ = Parser("project-control", "", [
        option("--approve", dest="approve", metavar="<application id>"),
        option("--deny", dest="deny", metavar="<application id>"),
        option("--terminate", dest="terminate", metavar="<project id>"),
        option("--suspend", dest="suspend", metavar="<project id>"),
        option("--unsuspend", dest="resume", metavar="<project id>"),
        option("--check-expired", action="store_true", dest="check_expired", default=False),
        option("--terminate-expired", action="store_true", dest="terminate_expired", default=False),
        option("--message", "-m", dest="message", metavar="<msg>")], "Manage projects and applications"
    ).parse_args(argv)
    if any(v is not None for v in (options.terminate, options.resume, options.suspend, options.approve,
                                   options.deny)):
        # The lab simulates what the runbook runs (part 10) only.
        raise CommandError("the lab's project-control simulates --check-expired and --terminate-expired only")
    if not (options.check_expired or options.terminate_expired):
        return 0
    execute = options.terminate_expired
    db = snf_common.apps_db(settings)
    rows = db.rows(
        "SELECT p.id, coalesce(p.name, 'None'), p.state, "
        "to_char(a.end_date AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), "
        "extract(microseconds FROM a.end_date)::bigint % 1000000 FROM im_project p "
        f"JOIN im_projectapplication a ON a.id = p.application_id WHERE p.state <> {TERMINATED} "
        "AND a.end_date < now() ORDER BY p.id")
    if execute and rows:
        ids = ", ".join(r[0] for r in rows)
        db.run(f"UPDATE im_project SET deactivation_reason = 'TERMINATED', state = {TERMINATED}, name = NULL, "
               f"is_active = FALSE, deactivation_date = now() WHERE id IN ({ids})")
    count = len(rows)
    toolbox.out("No expired projects." if count == 0 else "1 expired project:" if count == 1
                else f"{count} expired projects:")
    if count:
        columns = (10, 30, 14, 30)
        header = " ".join(label.rjust(w) for label, w in zip(("Project", "Name", "Status", "Expiration date"),
                                                            columns, strict=True))
        toolbox.out(header)
        toolbox.out("-" * len(header))
        for project_id, name, state, end, micro in rows:
            end += f".{int(micro):06d}" if int(micro) else ""  # str(datetime)
            fields = (project_id, name, STATE_DISPLAY.get(int(state), "Unknown"), end)
            toolbox.out(" ".join(f.rjust(w) for f, w in zip(fields, columns, strict=True)))
        if execute:
            toolbox.out(f"{count} projects have been terminated.")
    return 0
