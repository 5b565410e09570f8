"""The Cyclades commands of the lab's `snf-manage` (Synnefo 0.13, snf-cyclades-app) on the
tables of snf_apps: `cyclades-astakos-migrate-013`, `cyclades-export-quota` and
`cyclades-reset-usage`. Standard library only (it runs inside a node sandbox).

Facts: shared research synnefo.md §2 (the migrate command, the email->uuid lookup), §4 (the
export), §5 (the usage reset), §1 (get_existing_users(): every VM, network and key, deleted
ones included), read against the 0.13 sources they cite. Each function takes (argv, settings),
prints what the real command prints and returns its exit status; snf_common.CommandError is
Django's `Error: ...` with exit 1.

Also here, shared with snf_pithos.py: Django 1.2's option parsing (optparse, unique prefixes
accepted), Python 2's raw_input and the look of an uncaught exception.
"""

import optparse
import os
import sys

if __package__:  # imported on the host (lab.synnefo.tools.snf_cyclades)
    from lab.core.tools import toolbox
    from lab.synnefo.tools import snf_common
else:  # run as a program: toolbox.py and snf_common.py are next to it
    import snf_common
    import toolbox

CommandError = snf_common.CommandError
DJANGO_VERSION = "1.2.3"  # squeeze's python-django, what `--version` prints
INF = str(10 ** 30)  # the export files' import and export limits (research §4)

# 0.13's defaults of the settings read here (synnefo/app_settings/default/*.py): what a node
# whose /etc/synnefo/*.conf does not set them runs with.
DEFAULTS = {
    "ASTAKOS_URL": "https://astakos.okeanos.grnet.gr/im/authenticate",
    "CYCLADES_ASTAKOS_SERVICE_TOKEN": "",
    "CYCLADES_USE_QUOTAHOLDER": False,
    "CYCLADES_QUOTAHOLDER_URL": "http://127.0.0.1:8008/api/quotaholder/v",
    "CYCLADES_QUOTAHOLDER_TOKEN": "",
    "VMS_USER_QUOTA": {},
    "NETWORKS_USER_QUOTA": {},
}


def setting(settings, name):
    return settings.get(name, DEFAULTS.get(name))


# -- what Django 1.2 and Python 2 look like ---------------------------------------------------
class Exit(Exception):
    """optparse ended the command (a bad option: 2; --help, --version: 0)."""

    def __init__(self, status):
        super().__init__(status)
        self.status = status


def parse_options(argv, subcommand, help_text, options, prog="snf-manage"):
    """(options, positional args) as Django 1.2's BaseCommand.create_parser parses them: its
    own options (-v, --settings, --pythonpath, --traceback, --version) and the command's.
    Raises Exit when optparse exits (it has printed the usage or the error then)."""
    usage = f"%prog {subcommand} [options] " + (f"\n\n{help_text}" if help_text else "")
    parser = optparse.OptionParser(prog=prog, usage=usage, version=DJANGO_VERSION, option_list=[
        optparse.make_option("-v", "--verbosity", action="store", dest="verbosity", default="1", type="choice",
                             choices=["0", "1", "2"], help="Verbosity level; 0=minimal output, 1=normal output, "
                                                           "2=all output"),
        optparse.make_option("--settings", help="The Python path to a settings module, e.g. \"myproject.settings."
                                                "main\". If this isn't provided, the DJANGO_SETTINGS_MODULE "
                                                "environment variable will be used."),
        optparse.make_option("--pythonpath", help="A directory to add to the Python path, e.g. \"/home/"
                                                  "djangoprojects/myproject\"."),
        optparse.make_option("--traceback", action="store_true", help="Print traceback on exception"),
        *options])
    try:
        return parser.parse_args(list(argv))
    except SystemExit as exc:
        raise Exit(exc.code or 0) from None


def no_args(args):
    """NoArgsCommand.handle: a command of handle_noargs takes no positional argument."""
    if args:
        raise CommandError("Command doesn't accept any arguments")


def py2_repr(value):
    """repr() as Python 2 prints what Django and SQLAlchemy hand out: unicode strings (u'...',
    non-ASCII escaped), ints and longs (bigint sums: 3L), lists and tuples of them."""
    if isinstance(value, str):
        return "u" + ascii(value)
    if isinstance(value, list):
        return "[" + ", ".join(py2_repr(v) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + ", ".join(py2_repr(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return repr(value)


def raw_input(prompt):
    """Python 2's raw_input: the prompt on stdout without a newline, one line of stdin."""
    sys.stdout.write(prompt)
    sys.stdout.flush()
    line = sys.stdin.readline()
    if not line:
        raise EOFError("EOF when reading a line")
    return line[:-1] if line.endswith("\n") else line


def uncaught(program, exception):
    """What Python 2 prints for an exception nothing catches (manage.py's, or a console
    script's), as `ExceptionName: message` under a short traceback; the exit status is 1."""
    sys.stdout.flush()
    toolbox.err(f"Traceback (most recent call last):\n  File \"/usr/bin/{program}\", line 9, in <module>\n"
                f"    main()\n  [... frames of the lab's simulated {program} left out ...]\n{exception}")
    return 1


def api_error_text(exc):
    """str() of what synnefo.lib.astakos raises: Exception(body, status) prints as a tuple; a
    host that does not answer is the socket's error."""
    if exc.status == 0:
        return str(exc.data)
    return f"({exc.data!r}, {exc.status})"


# -- cyclades-astakos-migrate-013 -----------------------------------------------------------------
def existing_users(db):
    """get_existing_users(): the distinct user ids of every key, VM and network, deleted ones
    included (NULL: a public network)."""
    return [row[0] for row in db.rows(
        'SELECT "user" FROM userdata_publickeypair UNION SELECT userid FROM db_virtualmachine '
        "UNION SELECT userid FROM db_network")]


def validate_db_state(usernames):
    """_validate_db_state: case duplicates are an error listing every id that is not lower-case
    (case_unique) plus the first one lower-cased; ids without `@` only warn."""
    usernames = [u for u in usernames if u]
    lowered = {u.lower() for u in usernames}
    if len(lowered) != len(usernames):
        # Python 2's set difference comes out in hash order; the lab sorts it.
        invalid = sorted(set(usernames) - lowered)
        invalid.append(invalid[0].lower())
        raise CommandError(f"Duplicate case insensitive user identifiers exist {py2_repr(invalid)}")
    if any("@" not in u for u in usernames):
        toolbox.out("WARNING: It seems that mixed uuid/email user identifiers exist in database.")
        return False
    return True


def migrate_users(db, settings, usernames, dry):
    """Each email id to its Astakos uuid (one commit at the end). Astakos is asked once for
    all of them (the real command asks once per email: same answers, fewer SSH round trips
    in the lab); an API error fails each email as the per-email exception did, exit 0."""
    usernames = sorted(u for u in usernames if u)
    emails = [u for u in usernames if "@" in u]
    catalog, error = {}, None
    if emails:
        url = setting(settings, "ASTAKOS_URL").replace("im/authenticate", "service/api/user_catalogs")
        try:
            catalog = snf_common.user_catalogs(url, setting(settings, "CYCLADES_ASTAKOS_SERVICE_TOKEN"), emails)
        except snf_common.ApiError as exc:
            error = api_error_text(exc)
    statements, count = [], 0
    for user in usernames:
        if "@" not in user:
            toolbox.out(f"WARNING: Skipping {user}. It doesn't seem to be an email")
            continue
        if error is not None:
            toolbox.out(f"ERROR: User id migration failed ({error})")
            continue
        uuid = catalog.get(user)
        toolbox.out(f"{user} -> {uuid}")
        if not uuid:
            toolbox.out(f"ERROR: User id migration failed (No uuid for {user})")
            continue
        old, new = snf_common.lit(user), snf_common.lit(uuid)
        # Model.save(): VirtualMachine and Network have auto_now `updated`.
        statements += [f"UPDATE db_virtualmachine SET userid = {new}, updated = now() WHERE userid = {old}",
                       f"UPDATE db_network SET userid = {new}, updated = now() WHERE userid = {old}",
                       f'UPDATE userdata_publickeypair SET "user" = {new} WHERE "user" = {old}']
        count += 1
    if dry:
        toolbox.out("Skipping database commit.")
        return
    if statements:
        db.run(";\n".join(statements))
    toolbox.out(f"Migrated {count} users")


def merge_user(db, username):
    """Every row whose id equals `username` case-insensitively (Django's __iexact) to its
    lower-cased form, deleted rows too; one transaction."""
    new, match = snf_common.lit(username.lower()), f"UPPER({snf_common.lit(username)})"
    db.run(f"UPDATE db_virtualmachine SET userid = {new}, updated = now() WHERE UPPER(userid) = {match};\n"
           f"UPDATE db_network SET userid = {new}, updated = now() WHERE UPPER(userid) = {match};\n"
           f'UPDATE userdata_publickeypair SET "user" = {new} WHERE UPPER("user") = {match}')


def user_entries(db, username):
    """(VMs not destroyed, destroyed VMs, networks, keys) with exactly this id."""
    name = snf_common.lit(username)
    return tuple(int(v) for v in db.rows(
        f"SELECT (SELECT count(*) FROM db_virtualmachine WHERE userid = {name} "
        f"AND operstate IS DISTINCT FROM 'DESTROYED'), "
        f"(SELECT count(*) FROM db_virtualmachine WHERE userid = {name} AND operstate = 'DESTROYED'), "
        f"(SELECT count(*) FROM db_network WHERE userid = {name}), "
        f'(SELECT count(*) FROM userdata_publickeypair WHERE "user" = {name})')[0])


def show_entries(db, username):
    """delete_user(only_stats=True): the summary, or -1 when the id has no rows."""
    vms, destroyed, networks, keys = user_entries(db, username)
    if not vms + destroyed + networks + keys:
        toolbox.out(f"No entries exist for '{username}'")
        return -1
    toolbox.out("The following entries will be deleted if you decide to remove this user")
    toolbox.out(f"{vms} Virtual Machines")
    toolbox.out(f"{destroyed} Destroyed Virtual Machines")
    toolbox.out(f"{networks} Networks")
    toolbox.out(f"{keys} PublicKeyPairs")
    return None


def delete_user(db, username, dry):
    """The id's VMs, networks and keys deleted as the ORM's delete() does: with the NICs that
    point at those VMs or networks. Nothing happens in Ganeti."""
    name = snf_common.lit(username)
    script = (f"DELETE FROM db_networkinterface WHERE machine_id IN (SELECT id FROM db_virtualmachine "
              f"WHERE userid = {name}) OR network_id IN (SELECT id FROM db_network WHERE userid = {name});\n"
              f"DELETE FROM db_virtualmachine WHERE userid = {name};\n"
              f"DELETE FROM db_network WHERE userid = {name};\n"
              f'DELETE FROM userdata_publickeypair WHERE "user" = {name}')
    if dry:  # the real command deletes, then rolls back
        toolbox.out("Skipping database commit.")
        return
    db.run(script)
    toolbox.out("User entries removed.")


def astakos_migrate_013(argv, settings):
    """`snf-manage cyclades-astakos-migrate-013` (research §2)."""
    make = optparse.make_option
    try:
        opts, _args = parse_options(argv, "cyclades-astakos-migrate-013", "Quotas migration helper", [
            make("--strict", dest="strict", action="store_false", default=True, help="Exit on warnings."),
            make("--validate-db", dest="validate", action="store_true", default=True,
                 help="Check if cyclades database contents are valid for migration."),
            make("--migrate-users", dest="migrate_users", action="store_true", default=False,
                 help="Convert emails to uuids for all users stored in database."),
            make("--merge-user", dest="merge_user", default=False, help="Merge case insensitive duplicates of a user."),
            make("--delete-user", dest="delete_user", action="store", default=False, help="Delete user entries."),
            make("--user-entries", dest="user_entries", action="store", default=False, help="Display user summary."),
            make("--dry", dest="dry", action="store_true", default=False,
                 help="Do not commit database changes. Do not communicate with quotaholder"),
            make("--user", dest="user", action="store", default=False),
        ])
    except Exit as exc:
        return exc.status
    # The command overrides handle(): positional arguments are ignored.
    if opts.migrate_users and opts.merge_user:
        raise CommandError("You can use only one of --validate,--migrate-users")
    db = snf_common.apps_db(settings)
    usernames = None
    if opts.validate and not opts.merge_user and not opts.delete_user and not opts.user_entries:
        usernames = existing_users(db)
        validate_db_state(usernames)
    if opts.migrate_users:
        if usernames is None:  # the real handle() reads a local it never set
            return uncaught("snf-manage", "UnboundLocalError: local variable 'usernames' referenced before assignment")
        migrate_users(db, settings, usernames, opts.dry)
    if opts.merge_user:
        merge_user(db, opts.merge_user)
        toolbox.out("Merge finished.")
    if opts.delete_user:
        if show_entries(db, opts.delete_user) == -1:
            return 0
        try:
            confirm = raw_input("Type 'yes of course' if you are sure you want to remove those entries: ")
        except EOFError as exc:  # raw_input is outside any try: manage.py's traceback
            return uncaught("snf-manage", f"EOFError: {exc}")
        if confirm != "yes of course":
            return 0
        delete_user(db, opts.delete_user, opts.dry)
    if opts.user_entries:
        show_entries(db, opts.user_entries)
    return 0


# -- cyclades-export-quota ----------------------------------------------------------------------
def export_quota(argv, settings):
    """`snf-manage cyclades-export-quota [--location FILE]` (research §4): the settings'
    VMS_USER_QUOTA and NETWORKS_USER_QUOTA entries, keys written as they are."""
    try:
        opts, args = parse_options(argv, "cyclades-export-quota", "Export account quota policies", [
            optparse.make_option("--location", dest="location", default="exported_quota",
                                 help="Where to save the output file")])
    except Exit as exc:
        return exc.status
    no_args(args)
    vms_per_user = setting(settings, "VMS_USER_QUOTA")
    nets_per_user = setting(settings, "NETWORKS_USER_QUOTA")
    location = os.path.abspath(opts.location)
    lines = [f"{user} cyclades.vm {value} 0 {INF} {INF}\n" for user, value in vms_per_user.items()]
    lines += [f"{user} cyclades.network.private {value} 0 {INF} {INF}\n" for user, value in nets_per_user.items()]
    try:
        with open(location, "w") as f:
            f.writelines(lines)
    except OSError as exc:  # Python 2's IOError prints the same: [Errno 2] No such file ...
        raise CommandError(str(exc)) from None
    toolbox.out(f"Successfully exported cyclades per-user-quotas to file '{location}'")
    return 0


# -- cyclades-reset-usage -----------------------------------------------------------------------
def db_holdings(db, userid=None):
    """get_db_holdings(): per user id (None: a public network) the usage of the VMs and
    networks not deleted, in the resources' order of the real dict."""
    where = f" AND v.userid = {snf_common.lit(userid)}" if userid else ""
    holdings = {}
    for user, num, ram, cpu, disk in db.rows(
            "SELECT v.userid, count(v.id), sum(f.ram), sum(f.cpu), sum(f.disk) FROM db_virtualmachine v "
            f"JOIN db_flavor f ON f.id = v.flavor_id WHERE NOT v.deleted{where} GROUP BY v.userid"):
        holdings[user] = {"vm": int(num), "cpu": int(cpu), "disk": 1073741824 * int(disk), "ram": 1048576 * int(ram)}
    where = f" AND userid = {snf_common.lit(userid)}" if userid else ""
    for user, num in db.rows(f"SELECT userid, count(id) FROM db_network WHERE NOT deleted{where} GROUP BY userid"):
        holdings.setdefault(user, {})["network.private"] = int(num)
    return holdings


def reset_usage(argv, settings):
    """`snf-manage cyclades-reset-usage [--userid U] [--dry-run]` (research §5): one
    reset_holding call per user, rejections ignored, failures on stderr; exit 0."""
    try:
        opts, _args = parse_options(argv, "cyclades-reset-usage", "Reset cyclades.* usage values in Quotaholder", [
            optparse.make_option("--userid", dest="userid", default=None, help="Verify quotas only for this user"),
            optparse.make_option("--dry-run", dest="dry_run", action="store_true", default=False)])
    except Exit as exc:
        return exc.status
    holdings = db_holdings(snf_common.apps_db(settings), opts.userid)
    use_quotaholder = setting(settings, "CYCLADES_USE_QUOTAHOLDER")
    url, token = setting(settings, "CYCLADES_QUOTAHOLDER_URL"), setting(settings, "CYCLADES_QUOTAHOLDER_TOKEN")
    # Python 2's dict gave the users in hash order; the lab sorts them.
    for user in sorted(u for u in holdings if u):
        rows = [[user, f"cyclades.{resource}", "1", value, 0, 0, 0] for resource, value in holdings[user].items()]
        if opts.dry_run:
            # Django hands out unicode ids and psycopg2 longs for the bigint sums.
            shown = ", ".join(f"({py2_repr(u)}, '{r}', '1', {v}L, 0, 0, 0)" for u, r, _k, v, *_ in rows)
            sys.stdout.write(f"Reseting holding: [{shown}]\n")
            continue
        # Django 1.2's self.stderr is sys.stderr itself: no newline is added.
        if not use_quotaholder:  # the dummy client the setting selects has no reset_holding
            sys.stderr.write("Can not set up holding:'DummyQuotaholderClient' object has no attribute "
                             "'reset_holding'")
            continue
        try:
            snf_common.astakos_call(url, token, "reset_holding", rows)  # rejected indexes: ignored
        except snf_common.ApiError as exc:
            sys.stderr.write(f"Can not set up holding:{exc.data}")
    sys.stdout.flush()
    sys.stderr.flush()
    return 0
