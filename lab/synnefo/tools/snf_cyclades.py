"""snf-manage's Cyclades commands (0.13) for the lab: cyclades-astakos-migrate-013,
cyclades-export-quota, cyclades-reset-usage (shared research synnefo.md §2, §4, §5). Standard
library only; (argv, settings) -> exit status, like snf_astakos.py.

Lab deviation, for speed over SSH: the email -> uuid lookups of --migrate-users go to Astakos
in one request instead of one per email; the answers are the same.
"""

import optparse
import os
import sys

if __package__:
    from lab.core.tools import toolbox
    from lab.synnefo.tools import snf_common
else:
    import snf_common
    import toolbox

CommandError = snf_common.CommandError
lit = snf_common.lit
INFINITE = 10**30  # the export files' import and export limits (§4)
MiB, GiB = 1024**2, 1024**3


def _parse(prog, argv, options):
    parser = optparse.OptionParser(prog=f"snf-manage {prog}", add_help_option=False)
    for args, kwargs in options:
        parser.add_option(*args, **kwargs)
    try:
        return parser.parse_args(argv)
    except SystemExit:
        raise CommandError("invalid options") from None


def existing_users(db):
    """get_existing_users(): the ids of every key, VM and network, deleted rows included."""
    return [r[0] for r in db.rows(
        "SELECT userid FROM db_virtualmachine UNION SELECT userid FROM db_network UNION "
        'SELECT "user" FROM userdata_publickeypair')
        if r[0]]


def _validate(ids):
    lowered = {i.lower() for i in ids}
    if len(lowered) != len(set(ids)):
        listed = sorted(set(ids) - lowered)
        twin = next((i.lower() for i in listed if i.lower() in set(ids)), None)
        shown = listed + ([twin] if twin else [])
        raise CommandError("Duplicate case insensitive user identifiers exist ["
                           + ", ".join(f"u'{i}'" for i in shown) + "]")
    if not all("@" in i for i in ids):
        toolbox.out("WARNING: It seems that mixed uuid/email user identifiers exist in database.")


def _prompt(text):
    sys.stdout.write(text)
    sys.stdout.flush()
    return sys.stdin.readline().strip()


def astakos_migrate_013(argv, settings):
    options, _ = _parse("cyclades-astakos-migrate-013", argv, [
        (("--validate-db",), {"action": "store_true", "dest": "validate", "default": True}),
        (("--migrate-users",), {"action": "store_true"}), (("--merge-user",), {}), (("--delete-user",), {}),
        (("--user-entries",), {}), (("--dry",), {"action": "store_true"}), (("--strict",), {"action": "store_true"}),
        (("--user",), {})])
    if options.migrate_users and options.merge_user:
        raise CommandError("You can use only one of --validate,--migrate-users")
    db = snf_common.apps_db(settings)
    if options.merge_user:
        return _merge(db, options.merge_user, options.dry)
    if options.delete_user:
        return _delete(db, options.delete_user, options.dry)
    if options.user_entries:
        return _entries(db, options.user_entries)
    _validate(existing_users(db))
    if options.migrate_users:
        return _migrate(db, settings, options.dry)
    return 0


def _merge(db, user, dry):
    target = user.lower()
    if not dry:
        db.run(f"UPDATE db_virtualmachine SET userid = {lit(target)} WHERE upper(userid) = upper({lit(user)});\n"
               f"UPDATE db_network SET userid = {lit(target)} WHERE upper(userid) = upper({lit(user)});\n"
               f'UPDATE userdata_publickeypair SET "user" = {lit(target)} WHERE upper("user") = upper({lit(user)})')
    toolbox.out("Merge finished.")
    return 0


def _counts(db, user):
    u = lit(user)
    return [int(v) for v in db.rows(
        f"SELECT (SELECT count(*) FROM db_virtualmachine WHERE userid = {u} AND operstate != 'DESTROYED'), "
        f"(SELECT count(*) FROM db_virtualmachine WHERE userid = {u} AND operstate = 'DESTROYED'), "
        f"(SELECT count(*) FROM db_network WHERE userid = {u}), "
        f'(SELECT count(*) FROM userdata_publickeypair WHERE "user" = {u})')[0]]


def _entries(db, user):
    vms, destroyed, networks, keys = _counts(db, user)
    toolbox.out(f"{vms} Virtual Machines\n{destroyed} Destroyed Virtual Machines\n{networks} Networks\n"
                f"{keys} PublicKeyPairs")
    return 0


def _delete(db, user, dry):
    vms, destroyed, networks, keys = _counts(db, user)
    if not vms + destroyed + networks + keys:
        toolbox.out(f"No entries exist for '{user}'")
        return 0
    toolbox.out("The following entries will be deleted if you decide to remove this user")
    toolbox.out(f"{vms} Virtual Machines\n{destroyed} Destroyed Virtual Machines\n{networks} Networks\n"
                f"{keys} PublicKeyPairs")
    if _prompt("Type 'yes of course' if you are sure you want to remove those entries: ") != "yes of course":
        return 0
    if dry:
        toolbox.out("Skipping database commit.")
        return 0
    u = lit(user)
    # The ORM's delete cascades to the NICs of the VMs and on the networks (nothing in Ganeti).
    db.run(f"DELETE FROM db_networkinterface WHERE machine_id IN (SELECT id FROM db_virtualmachine WHERE userid = {u})"
           f" OR network_id IN (SELECT id FROM db_network WHERE userid = {u});\n"
           f"DELETE FROM db_virtualmachine WHERE userid = {u};\nDELETE FROM db_network WHERE userid = {u};\n"
           f'DELETE FROM userdata_publickeypair WHERE "user" = {u}')
    toolbox.out("User entries removed.")
    return 0


def _migrate(db, settings, dry):
    ids = sorted(set(existing_users(db)))
    emails = [i for i in ids if "@" in i]
    for user_id in ids:
        if "@" not in user_id:
            toolbox.out(f"WARNING: Skipping {user_id}. It doesn't seem to be an email")
    url = (settings.get("ASTAKOS_URL") or "").replace("im/authenticate", "service/api/user_catalogs")
    try:
        catalog = snf_common.user_catalogs(url, settings.get("CYCLADES_ASTAKOS_SERVICE_TOKEN"), emails) if emails \
            else {}
        failure = None
    except snf_common.ApiError as exc:
        catalog, failure = {}, f"({exc.data!r}, {exc.status})"
    statements, migrated = [], 0
    for email in emails:
        uuid = catalog.get(email)
        toolbox.out(f"{email} -> {uuid}")
        if uuid is None:
            toolbox.out(f"ERROR: User id migration failed ({failure or f'No uuid for {email}'})")
            continue
        statements += [f"UPDATE db_virtualmachine SET userid = {lit(uuid)} WHERE userid = {lit(email)}",
                       f"UPDATE db_network SET userid = {lit(uuid)} WHERE userid = {lit(email)}",
                       f'UPDATE userdata_publickeypair SET "user" = {lit(uuid)} WHERE "user" = {lit(email)}']
        migrated += 1
    if dry:
        toolbox.out("Skipping database commit.")
        return 0
    if statements:
        db.run(";\n".join(statements))
    toolbox.out(f"Migrated {migrated} users")
    return 0


def export_quota(argv, settings):
    options, _ = _parse("cyclades-export-quota", argv, [(("--location",), {"default": "exported_quota"})])
    lines = []
    for setting, resource in (("VMS_USER_QUOTA", "cyclades.vm"), ("NETWORKS_USER_QUOTA", "cyclades.network.private")):
        if setting not in settings:
            raise CommandError(f"'Settings' object has no attribute '{setting}'")
        lines += [f"{key} {resource} {value} 0 {INFINITE} {INFINITE}\n" for key, value in settings[setting].items()]
    with open(options.location, "w") as f:
        f.writelines(lines)
    toolbox.out(f"Successfully exported cyclades per-user-quotas to file '{os.path.abspath(options.location)}'")
    return 0


def usage_rows(db, only=None):
    """[[user, resource, '1', value, 0, 0, 0]] of live VMs and networks (research §5)."""
    where = f" AND v.userid = {lit(only)}" if only else ""
    rows = []
    for user, vms, cpu, ram, disk in db.rows(
            "SELECT v.userid, count(*), sum(f.cpu), sum(f.ram), sum(f.disk) FROM db_virtualmachine v "
            "JOIN db_flavor f ON f.id = v.flavor_id WHERE NOT v.deleted" + where + " GROUP BY 1 ORDER BY 1"):
        rows += [[user, "cyclades.vm", "1", int(vms), 0, 0, 0], [user, "cyclades.cpu", "1", int(cpu), 0, 0, 0],
                 [user, "cyclades.ram", "1", int(ram) * MiB, 0, 0, 0],
                 [user, "cyclades.disk", "1", int(disk) * GiB, 0, 0, 0]]
    where = f" AND userid = {lit(only)}" if only else ""
    for user, networks in db.rows("SELECT userid, count(*) FROM db_network WHERE NOT deleted AND NOT public AND "
                                  "userid IS NOT NULL" + where + " GROUP BY 1 ORDER BY 1"):
        rows.append([user, "cyclades.network.private", "1", int(networks), 0, 0, 0])
    return rows


def reset_usage(argv, settings):
    options, _ = _parse("cyclades-reset-usage", argv, [(("--userid",), {}),
                                                       (("--dry-run",), {"action": "store_true"})])
    db = snf_common.apps_db(settings)
    rows = usage_rows(db, options.userid)
    if options.dry_run:
        toolbox.out(f"Reseting holding: {rows!r}")
        return 0
    if not settings.get("CYCLADES_USE_QUOTAHOLDER"):
        return 0  # the dummy quotaholder client of 0.13 accepts everything and keeps nothing
    url, token = settings.get("CYCLADES_QUOTAHOLDER_URL"), settings.get("CYCLADES_QUOTAHOLDER_TOKEN")
    while rows:
        try:
            rejected = snf_common.astakos_call(url, token, "reset_holding", rows)
        except snf_common.ApiError as exc:
            toolbox.err(f"Can not set up holding:({exc.data!r}, {exc.status})")
            return 0
        if not rejected:
            break
        # ReturnButFail: nothing was set; the rest is sent again (unknown users left out silently).
        rows = [row for i, row in enumerate(rows) if i not in set(rejected)]
    return 0
