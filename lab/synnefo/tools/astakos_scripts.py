#!/usr/bin/python3
"""The runbook's step-2 scripts on the Astakos host, as 0.13 ships them in
astakos/im/scripts/ and runs them on the 0.12 code (shared research synnefo.md §5 "Step 2
scripts"). Standard library only; the database is the node's settings' (DATABASES).

- `find_astakos_users_with_conflicting_emails.py`: the header `id email (is_active, creation
  date)` on stderr, then `<pk>: <email> (<True|False>, <date_joined>)` for every user whose
  email, lower-cased, another user has too (an email registered twice included); a single
  empty line when there are none.
- `delete_astakos_users.py <id>...`: lists them, asks `Execute? (yes/no): `, prints `Cancelled`
  unless the answer is `yes`, else `deleting <id>: <email>` and deletes each user with its
  related rows (Django's cascade), all in one transaction. An id no user has fails as
  Django's DoesNotExist does, before anything is deleted.
"""

import sys

if __package__:
    from lab.core.tools import toolbox
    from lab.synnefo.tools import snf_common
else:
    import snf_common
    import toolbox

# Rows that reference a user, deleted with it (the tables that exist at the time).
RELATED = (("im_astakosuserquota", "user_id"), ("im_astakosuserauthprovider", "user_id"),
           ("im_emailchange", "user_id"), ("im_additionalmail", "owner_id"))


def _db():
    return snf_common.apps_db(snf_common.load_settings())


def _python_date(value):
    """A timestamp as Python 2's str(datetime) prints it (no time zone offset)."""
    return value.split("+")[0]


def find(args):
    db = _db()
    rows = db.rows("SELECT id, email, is_active, date_joined FROM auth_user WHERE lower(email) IN ("
                   "SELECT lower(email) FROM auth_user GROUP BY 1 HAVING count(*) > 1) ORDER BY lower(email), id")
    toolbox.err("id email (is_active, creation date)")
    if not rows:
        toolbox.out("")
        return 0
    for user_id, email, active, joined in rows:
        toolbox.out(f"{user_id}: {email} ({'True' if active == 't' else 'False'}, {_python_date(joined)})")
    return 0


def delete(args):
    if not args:
        toolbox.err("Usage: delete_astakos_users.py <id> [<id> ...]")
        return 1
    db = _db()
    ids = []
    for arg in args:
        if not arg.isdigit():
            toolbox.err(f"ValueError: invalid literal for int() with base 10: {arg!r}")
            return 1
        ids.append(int(arg))
    found = dict(db.rows(f"SELECT id, email FROM auth_user WHERE id IN ({', '.join(map(str, ids))})"))
    for user_id in ids:
        if str(user_id) not in found:
            toolbox.err("Traceback (most recent call last):\n  ...\n"
                        "DoesNotExist: AstakosUser matching query does not exist.")
            return 1
    for user_id in ids:
        toolbox.out(f"{user_id}: {found[str(user_id)]}")
    sys.stdout.write("Execute? (yes/no): ")
    sys.stdout.flush()
    answer = sys.stdin.readline().strip()
    if answer != "yes":
        toolbox.out("Cancelled")
        return 0
    existing = {r[0] for r in db.rows("SELECT table_name FROM information_schema.tables "
                                      "WHERE table_schema = 'public'")}
    statements = []
    for user_id in ids:
        toolbox.out(f"deleting {user_id}: {found[str(user_id)]}")
        statements += [f"DELETE FROM {table} WHERE {column} = {user_id}" for table, column in RELATED
                       if table in existing]
        statements += [f"DELETE FROM im_astakosuser WHERE user_ptr_id = {user_id}",
                       f"DELETE FROM auth_user WHERE id = {user_id}"]
    db.run(";\n".join(statements))
    return 0


if __name__ == "__main__":
    toolbox.main({"find_astakos_users_with_conflicting_emails": find, "delete_astakos_users": delete})
