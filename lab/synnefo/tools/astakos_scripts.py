#!/usr/bin/python3
"""The runbook's step-2 scripts on the Astakos host, as 0.13 ships them in
astakos/im/scripts/ and runs them on the 0.12 code (shared research synnefo.md §5 "Step 2
scripts"; their text: the runbook, seed 004, 2.1). Standard library only; the database is the
node's settings' (DATABASES).

- `find_astakos_users_with_conflicting_emails.py`: the header `id email (is_active, creation
  date)` on stderr, then `<pk>: <email> (<True|False>, <date_joined>)` for every Astakos user
  whose email, lower-cased, another user has too (an email registered twice included), in
  `AstakosUser.objects.all()`'s order (no ordering: the table's, by id here); a single empty
  line when there are none (`print "\\n".join([])`).
- `delete_astakos_users.py <id>...`: lists them as the runbook's copy prints them, asks
  `Execute? (yes/no): `, prints `Cancelled` unless the answer is `yes`, else `Confirmed.` and
  `deleting <id>: <email>` for each, deleting the user with its related rows (Django's
  cascade), all in one transaction. An id no user has fails as Django's DoesNotExist does
  (the shipped script gets each user by id), before anything is deleted.
"""

import sys

if __package__:
    from lab.core.tools import toolbox
    from lab.synnefo.tools import snf_common
else:
    import snf_common
    import toolbox

lit = snf_common.lit

# Rows in other im_* tables that reference a user (0.13's im migrations create most of them;
# whichever exist are deleted with it, as Django's cascade does), then the user itself: the
# im_astakosuser row, then its auth_user parent (multi-table inheritance).
RELATED = (("im_astakosuserquota", "user_id"), ("im_astakosuserauthprovider", "user_id"),
           ("im_emailchange", "user_id"), ("im_additionalmail", "owner_id"), ("im_invitation", "inviter_id"),
           ("im_approvalterms", "user_id"), ("im_projectmembership", "person_id"), ("im_usersetting", "user_id"))

USERS = ("SELECT u.id, u.email, u.is_active, (u.date_joined AT TIME ZONE {tz})::text FROM auth_user u "
         "JOIN im_astakosuser a ON a.user_ptr_id = u.id")


def _with_database(function):
    """Run `function(db, tz)` on the settings' snf_apps, failing as the lab's snf-manage does on
    settings that do not run, or name no PostgreSQL database (the real scripts would end in a
    Django traceback: its last line is what counts), or a database psql cannot reach."""

    def run(settings):
        # Django 1.2 hands out naive datetimes in the connection's TIME_ZONE (Synnefo's is UTC).
        try:
            return function(snf_common.apps_db(settings), lit(settings.get("TIME_ZONE") or "UTC"))
        except snf_common.DatabaseError as exc:
            raise snf_common.CommandError(f"OperationalError: {exc}") from None

    return snf_common.run_command(run)


def _related_tables(db):
    """[(table, column)] of the rows that reference a user: the foreign keys to auth_user or
    im_astakosuser the database declares (Django's cascade follows them), and RELATED's tables
    that exist."""
    declared = db.rows(
        "SELECT c.conrelid::regclass::text, a.attname FROM pg_constraint c JOIN pg_attribute a "
        "ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] WHERE c.contype = 'f' "
        "AND c.confrelid IN (to_regclass('auth_user'), to_regclass('im_astakosuser')) "
        "AND c.conrelid NOT IN (to_regclass('auth_user'), to_regclass('im_astakosuser')) ORDER BY 1, 2")
    existing = {row[0] for row in db.rows("SELECT table_name FROM information_schema.tables "
                                          "WHERE table_schema = current_schema()")}
    related = [(table, column) for table, column in declared]
    related += [(table, column) for table, column in RELATED if table in existing and (table, column) not in related]
    return related


def _python_date(text):
    """A PostgreSQL timestamp as Python 2's str(datetime) prints it: microseconds in six
    digits, only when there are any."""
    if "." in text:
        whole, fraction = text.split(".", 1)
        return f"{whole}.{fraction.ljust(6, '0')}"
    return text


def _user_line(user_id, email, active, joined):
    return f"{user_id}: {email} ({'True' if active == 't' else 'False'}, {_python_date(joined)})"


def find(args):
    return _with_database(_find)


def _find(db, tz):
    rows = db.rows(USERS.format(tz=tz) + " WHERE lower(u.email) IN (SELECT lower(u.email) FROM auth_user u "
                   "JOIN im_astakosuser a ON a.user_ptr_id = u.id GROUP BY 1 HAVING count(*) > 1) ORDER BY u.id")
    toolbox.err("id email (is_active, creation date)")
    toolbox.out("\n".join(_user_line(*row) for row in rows))
    return 0


def delete(args):
    if not args:
        # The runbook's copy: usage on stdout, then `raise SystemExit()` (exit 0).
        toolbox.out("Usage: ./delete_astakos_users.py <id>...")
        return 0
    return _with_database(lambda db, tz: _delete(db, tz, args))


def _delete(db, tz, args):
    ids = []
    for arg in args:
        try:
            ids.append(int(arg))
        except ValueError:
            toolbox.err("Traceback (most recent call last):\n"
                        f"ValueError: invalid literal for int() with base 10: {arg!r}")
            return 1
    ids = list(dict.fromkeys(ids))
    found = {int(row[0]): row for row in db.rows(USERS.format(tz=tz) + " WHERE u.id IN ("
                                                 + ", ".join(lit(i) for i in ids) + ")")}
    for user_id in ids:
        if user_id not in found:
            # What Python 2 prints of Django 1.2's uncaught AstakosUser.DoesNotExist.
            toolbox.err("Traceback (most recent call last):\n"
                        '  File "./delete_astakos_users.py", line 24, in <module>\n'
                        "astakos.im.models.DoesNotExist: AstakosUser matching query does not exist.")
            return 1
    toolbox.out("\nThis will permanently delete the following users:\n\n")
    toolbox.out("id  email (is_active, creation date)")
    toolbox.out("--  --------------------------------")
    for user_id in ids:
        toolbox.out(_user_line(*found[user_id]))
    sys.stdout.write("\nExecute? (yes/no): ")
    sys.stdout.flush()
    answer = sys.stdin.readline().rstrip()
    if answer != "yes":
        toolbox.out("\nCancelled")
        return 0
    toolbox.out("\nConfirmed.")  # the script then sleeps 2 s: left out
    related = _related_tables(db)
    statements = []
    for user_id in ids:
        toolbox.out(f"deleting {user_id}: {found[user_id][1]}")
        statements += [f"DELETE FROM {table} WHERE {column} = {lit(user_id)}" for table, column in related]
        statements += [f"DELETE FROM im_astakosuser WHERE user_ptr_id = {lit(user_id)}",
                       f"DELETE FROM auth_user WHERE id = {lit(user_id)}"]
    db.run(";\n".join(statements))
    return 0


if __name__ == "__main__":
    toolbox.main({"find_astakos_users_with_conflicting_emails": find, "delete_astakos_users": delete})
