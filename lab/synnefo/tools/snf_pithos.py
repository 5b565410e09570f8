"""snf-manage's Pithos commands (0.13) for the lab: pithos-manage-accounts,
pithos-export-quota, pithos-usage (shared research synnefo.md §3, §4, §5). Standard library
only; (argv, settings) -> exit status, like snf_astakos.py. The backend database is
PITHOS_BACKEND_DB_CONNECTION's.

An account is a node with parent 0 (path = the account); its containers are its children
(account/container), their objects theirs (account/container/name); versions hold the
content, CLUSTER_NORMAL 0, HISTORY 1, DELETED 2.
"""

import optparse
import sys

if __package__:
    from lab.core.tools import toolbox
    from lab.synnefo.tools import snf_common
else:
    import snf_common
    import toolbox

CommandError = snf_common.CommandError
lit = snf_common.lit
INFINITE = 10**30
RESOURCE = "pithos+.diskspace"


def _parse(prog, argv, options):
    parser = optparse.OptionParser(prog=f"snf-manage {prog}", add_help_option=False)
    for args, kwargs in options:
        parser.add_option(*args, **kwargs)
    try:
        return parser.parse_args(argv)
    except SystemExit:
        raise CommandError("invalid options") from None


def accounts(db):
    return [r[0] for r in db.rows("SELECT path FROM nodes WHERE parent = 0 AND node != 0 ORDER BY path")]


def _objects(db, account):
    """The object paths of an account (nodes two levels under it)."""
    return [r[0] for r in db.rows(
        "SELECT o.path FROM nodes o JOIN nodes c ON c.node = o.parent JOIN nodes a ON a.node = c.parent "
        f"WHERE a.parent = 0 AND a.node != 0 AND a.path = {lit(account)} ORDER BY o.path")]


def _groups(db, account):
    return [f"{name}: {member}" for name, member in db.rows(
        f"SELECT name, member FROM groups WHERE owner = {lit(account)} ORDER BY 1, 2")]


def _prompt(text):
    sys.stdout.write(text)
    sys.stdout.flush()
    return sys.stdin.readline().strip()


def manage_accounts(argv, settings):
    options, _ = _parse("pithos-manage-accounts", argv, [
        (("--list-duplicate",), {"action": "store_true"}), (("--list-all",), {"action": "store_true"}),
        (("--merge-accounts",), {"action": "store_true"}), (("--src-account",), {}), (("--dest-account",), {}),
        (("--delete-account",), {}), (("--dry",), {"action": "store_true"})])
    db = snf_common.pithos_db(settings)
    if options.list_all:
        for account in accounts(db):
            toolbox.out(account)
        return 0
    if options.list_duplicate:
        # 0.13 matches each account as a regex against the later ones of the same length
        # (research §3, with false positives on . and +); the lab compares lower-cased names.
        groups = {}
        for account in accounts(db):
            groups.setdefault(account.lower(), []).append(account)
        found = [", ".join(sorted(g)) for _, g in sorted(groups.items()) if len(g) > 1]
        if not found:
            toolbox.out("No duplicate accounts are found.")
            return 0
        raise CommandError("The following case insensitive duplicates found:\n" + "\n".join(found))
    if options.merge_accounts:
        return _merge(db, options.src_account, options.dest_account, options.dry)
    if options.delete_account:
        return _delete(db, options.delete_account, options.dry)
    toolbox.out("Usage: snf-manage pithos-manage-accounts [options]")
    return 0


def _merge(db, src, dest, dry):
    existing = set(accounts(db))
    for account in (src, dest):
        if account not in existing:
            raise CommandError(f"{account} does not exist")
    toolbox.out(f"The following {src}'s entries will be moved to {dest}:")
    toolbox.out(f"Objects: {_objects(db, src)!r}")
    toolbox.out(f"Groups: {_groups(db, src)!r}")
    if _prompt(f"Type 'yes' if you are sure you want to move those entries to {dest}: ") != "yes":
        return 0
    if dry:
        return 0
    s, d, n = lit(src), lit(dest), len(src)
    # In one transaction: D's containers for S's; each object of S copied to the same path
    # under D with all its versions (an object D has already becomes history), its
    # permissions and public flag; S's groups copied to D. S stays (delete_src=False).
    db.run(f"""
        INSERT INTO nodes (parent, path)
        SELECT (SELECT node FROM nodes WHERE parent = 0 AND path = {d}), {d} || substr(c.path, {n} + 1)
        FROM nodes c JOIN nodes a ON a.node = c.parent
        WHERE a.parent = 0 AND a.node != 0 AND a.path = {s}
          AND NOT EXISTS (SELECT 1 FROM nodes x WHERE x.path = {d} || substr(c.path, {n} + 1));
        INSERT INTO nodes (parent, path)
        SELECT dc.node, {d} || substr(o.path, {n} + 1)
        FROM nodes o JOIN nodes c ON c.node = o.parent JOIN nodes a ON a.node = c.parent
        JOIN nodes dc ON dc.path = {d} || substr(c.path, {n} + 1)
        WHERE a.parent = 0 AND a.node != 0 AND a.path = {s}
          AND NOT EXISTS (SELECT 1 FROM nodes x WHERE x.path = {d} || substr(o.path, {n} + 1));
        CREATE TEMP TABLE merged ON COMMIT DROP AS
        SELECT o.node AS src, x.node AS dest
        FROM nodes o JOIN nodes c ON c.node = o.parent JOIN nodes a ON a.node = c.parent
        JOIN nodes x ON x.path = {d} || substr(o.path, {n} + 1)
        WHERE a.parent = 0 AND a.node != 0 AND a.path = {s};
        UPDATE versions SET cluster = 1 FROM merged WHERE versions.node = merged.dest AND versions.cluster = 0;
        INSERT INTO versions (node, hash, size, type, source, mtime, muser, uuid, checksum, cluster)
        SELECT m.dest, v.hash, v.size, v.type, v.source, v.mtime, v.muser, v.uuid, v.checksum, v.cluster
        FROM versions v JOIN merged m ON m.src = v.node ORDER BY v.serial;
        UPDATE nodes SET latest_version = (SELECT max(serial) FROM versions WHERE versions.node = nodes.node)
        WHERE node IN (SELECT dest FROM merged);
        INSERT INTO xfeatures (path)
        SELECT {d} || substr(f.path, {n} + 1) FROM xfeatures f
        WHERE split_part(f.path, '/', 1) = {s}
          AND NOT EXISTS (SELECT 1 FROM xfeatures x WHERE x.path = {d} || substr(f.path, {n} + 1));
        INSERT INTO xfeaturevals (feature_id, key, value)
        SELECT x.feature_id, v.key, v.value FROM xfeatures f JOIN xfeaturevals v ON v.feature_id = f.feature_id
        JOIN xfeatures x ON x.path = {d} || substr(f.path, {n} + 1)
        WHERE split_part(f.path, '/', 1) = {s}
          AND NOT EXISTS (SELECT 1 FROM xfeaturevals y WHERE y.feature_id = x.feature_id AND y.key = v.key
                          AND y.value = v.value);
        INSERT INTO public (path, active)
        SELECT {d} || substr(p.path, {n} + 1), p.active FROM public p
        WHERE split_part(p.path, '/', 1) = {s}
          AND NOT EXISTS (SELECT 1 FROM public x WHERE x.path = {d} || substr(p.path, {n} + 1));
        INSERT INTO groups (owner, name, member)
        SELECT {d}, g.name, g.member FROM groups g WHERE g.owner = {s}
          AND NOT EXISTS (SELECT 1 FROM groups x WHERE x.owner = {d} AND x.name = g.name
                          AND x.member = g.member)""")
    toolbox.out(f"{src} merged into {dest}.")
    return 0


def _delete(db, account, dry):
    if account not in set(accounts(db)):
        raise CommandError(f"{account} does not exist")
    toolbox.out(f"The following {account}'s entries will be removed:")
    toolbox.out(f"Objects: {_objects(db, account)!r}")
    toolbox.out(f"Groups: {_groups(db, account)!r}")
    if _prompt("Type 'yes' if you are sure you want to remove those entries: ") != "yes":
        return 0
    if dry:
        return 0
    a = lit(account)
    # Every node under the account (cascading to versions, attributes, policy, statistics),
    # then its groups, permissions and public flags.
    db.run(f"""
        DELETE FROM nodes WHERE split_part(path, '/', 1) = {a} AND node != 0 AND path != '';
        DELETE FROM groups WHERE owner = {a};
        DELETE FROM xfeatures WHERE split_part(path, '/', 1) = {a};
        DELETE FROM public WHERE split_part(path, '/', 1) = {a}""")
    toolbox.out(f"{account} is deleted.")
    return 0


def export_quota(argv, settings):
    options, _ = _parse("pithos-export-quota", argv, [(("--location",), {"default": "exported_policies"})])
    db = snf_common.pithos_db(settings)
    rows = db.rows("SELECT nodes.path, policy.value FROM nodes, policy WHERE nodes.node != 0 AND nodes.parent = 0 "
                   "AND nodes.node = policy.node AND policy.key = 'quota'")
    with open(options.location, "w") as f:
        f.writelines(f"{path} {RESOURCE} {value} 0 {INFINITE} {INFINITE}\n" for path, value in rows)
    return 0


def usage_rows(db, only=None):
    """[[account, resource, '1', bytes, 0, 0, 0]]: each account's CLUSTER_NORMAL size, summed
    from the latest versions (what `--list` prints)."""
    where = f" AND a.path IN ({', '.join(lit(u) for u in only)})" if only else ""
    return [[account, RESOURCE, "1", int(size), 0, 0, 0] for account, size in db.rows(
        "SELECT a.path, coalesce(sum(v.size), 0) FROM nodes a LEFT JOIN nodes o "
        "ON split_part(o.path, '/', 1) = a.path AND o.path LIKE '%/%/%' "
        "LEFT JOIN versions v ON v.serial = o.latest_version AND v.cluster = 0 "
        f"WHERE a.parent = 0 AND a.node != 0{where} GROUP BY a.path ORDER BY a.path")]


def usage(argv, settings):
    options, _ = _parse("pithos-usage", argv, [(("--list",), {"action": "store_true", "default": True}),
                                               (("--reset",), {"action": "store_true"}),
                                               (("--user",), {"action": "append", "dest": "users"})])
    db = snf_common.pithos_db(settings)
    rows = usage_rows(db, options.users)
    for account, _resource, _key, size, *_ in rows:
        toolbox.out(f"{account}: {size}")
    if not options.reset:
        return 0
    if not settings.get("PITHOS_USE_QUOTAHOLDER"):
        raise CommandError("Quotaholder component is not enabled")
    if not settings.get("PITHOS_QUOTAHOLDER_URL"):
        raise CommandError("Quotaholder url is not set")
    if not settings.get("PITHOS_QUOTAHOLDER_TOKEN"):
        raise CommandError("Quotaholder token is not set")
    if not rows:
        raise CommandError("No users found.")
    while rows:
        try:
            rejected = snf_common.astakos_call(settings["PITHOS_QUOTAHOLDER_URL"], settings["PITHOS_QUOTAHOLDER_TOKEN"],
                                               "reset_holding", rows)
        except snf_common.ApiError as exc:
            raise CommandError(f"({exc.data!r}, {exc.status})") from None
        if not rejected:
            break
        toolbox.out(f"Unknown quotaholder users: {', '.join(rows[i][0] for i in rejected)}")
        toolbox.out("Retrying sending quota usage for the rest...")
        rows = [row for i, row in enumerate(rows) if i not in set(rejected)]
    return 0
