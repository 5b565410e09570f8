#!/usr/bin/python3
"""rake in the vpsAdmin API checkout (/opt/vpsadminapi): `rake db:migrate [VERSION=n]` and
`rake db:version`, as ActiveRecord 4.1 (sinatra-activerecord) runs them, and the API's own
tasks `vpsadmin:lifetimes:progress`, `vpsadmin:lifetimes:mail` and `vpsadmin:mail_daily_report`
(api_tasks.py next to this file). Standard library only: it runs inside a lab node on the
host's /usr/bin/python3.

The migrations are the checkout's db/migrate/<version>_<name>.sql files (the lab's SQL
restatement of the upstream .rb files). They go through the node's `mysql` client with the
session the mysql2 adapter sets up (sql_mode STRICT_ALL_TABLES, time_zone '+00:00'), one
client per migration, the version inserted into schema_migrations at the end of the same
session. MySQL DDL is not transactional, so a migration that fails half-way stays
half-applied, as it does upstream. Errors are reported in Rails' words on stderr, exit 1.

Connection settings come from config/database.yml, section RACK_ENV or RAILS_ENV
(default production).
"""

import os
import re
import subprocess
import sys
import time

if __package__:  # imported on the host (lab.vpsadmin.tools.rake)
    from lab.core.tools import toolbox
    from lab.vpsadmin.tools import api_tasks
else:  # run as a program: toolbox.py and api_tasks.py are next to it
    import api_tasks
    import toolbox

RAKEFILE_NAMES = ("rakefile", "Rakefile", "rakefile.rb", "Rakefile.rb")
MIGRATION_FILE = re.compile(r"^(\d+)_([a-z0-9_]+)\.sql$")
# What the mysql2 adapter of ActiveRecord 4.1 sets on connect (strict mode), plus UTC.
SESSION_INIT = ("SET SESSION sql_mode = 'STRICT_ALL_TABLES', SESSION time_zone = '+00:00', "
                "SESSION sql_auto_is_null = 0, SESSION wait_timeout = 2147483")
MYSQL_ERROR = re.compile(r"^ERROR (\d+) \(([0-9A-Z]+)\)(?: at line (\d+))?: (.*)$", re.S)


class RakeAborted(Exception):
    """`rake aborted!` followed by these lines."""


# -- configuration ---------------------------------------------------------------------------

def find_rakefile_dir():
    return toolbox.find_upwards(lambda d: any(os.path.isfile(os.path.join(d, n)) for n in RAKEFILE_NAMES))


def parse_yaml_sections(text):
    """The YAML subset database.yml uses: `section:` lines with indented `key: value` pairs."""
    sections, current = {}, None
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, _, value = line.strip().partition(":")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        if not line.startswith((" ", "\t")):
            current = sections.setdefault(key, {})
        elif current is not None:
            current[key] = value
    return sections


def database_config(root):
    path = os.path.join(root, "config", "database.yml")
    try:
        with open(path) as f:
            sections = parse_yaml_sections(f.read())
    except FileNotFoundError:
        raise RakeAborted([f"Errno::ENOENT: No such file or directory @ rb_sysopen - {path}"]) from None
    env = os.environ.get("RACK_ENV") or os.environ.get("RAILS_ENV") or "production"
    if env not in sections:
        available = ", ".join(f'"{k}"' for k in sections)
        raise RakeAborted([f"ActiveRecord::AdapterNotSpecified: '{env}' database is not configured. "
                           f"Available: [{available}]"])
    return sections[env]


def mysql(config, sql, init=SESSION_INIT):
    """Run SQL through the node's mysql client as the adapter's session; CompletedProcess."""
    argv = ["mysql", "--batch", "--skip-column-names", "--default-character-set=utf8",
            f"--init-command={init}", "-h", config.get("host", "localhost"),
            "-P", str(config.get("port", "3306")), "-u", config.get("username", "root")]
    env = dict(os.environ)
    if config.get("password"):
        env["MYSQL_PWD"] = config["password"]
    argv.append(config.get("database", ""))
    return subprocess.run(argv, input=sql, capture_output=True, text=True, env=env)


def mysql_error(stderr):
    """(code, line or None, message) of the mysql client's error, or None."""
    for line in stderr.splitlines():
        if line.startswith("ERROR "):
            match = MYSQL_ERROR.match(stderr[stderr.index(line):].strip())
            if match:
                code, _, at_line, message = match.groups()
                return int(code), int(at_line) if at_line else None, message
    return None


def query_column(config, sql):
    result = mysql(config, sql)
    if result.returncode != 0:
        error = mysql_error(result.stderr)
        raise RakeAborted([f"Mysql2::Error: {error[2] if error else result.stderr.strip()}"])
    return [line for line in result.stdout.splitlines() if line]


# -- migrations ------------------------------------------------------------------------------

def camelize(name):
    return "".join(part.capitalize() for part in name.split("_"))


def migrations(root):
    """[(version, CamelName, path)] of db/migrate, ascending."""
    directory = os.path.join(root, "db", "migrate")
    found = []
    for file_name in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
        match = MIGRATION_FILE.match(file_name)
        if match:
            found.append((int(match.group(1)), camelize(match.group(2)),
                          os.path.join(directory, file_name)))
    return sorted(found)


def applied_versions(config):
    query_column(config, "CREATE TABLE IF NOT EXISTS `schema_migrations` ("
                         "`version` varchar(255) NOT NULL, "
                         "UNIQUE KEY `unique_schema_migrations` (`version`)) ENGINE=InnoDB")
    return {int(v) for v in query_column(config, "SELECT version FROM schema_migrations")}


def statement_at(sql, line_no):
    """The statement of a migration file the mysql client's `at line N` points into."""
    statements, current, start = [], [], None
    for number, line in enumerate(sql.splitlines(), start=1):
        if not current and (not line.strip() or line.lstrip().startswith("--")):
            continue
        if not current:
            start = number
        current.append(line)
        if line.rstrip().endswith(";"):
            statements.append((start, number, "\n".join(current).rstrip().rstrip(";")))
            current = []
    for first, last, text in statements:
        if first <= line_no <= last:
            return " ".join(text.split())
    for first, _, text in statements:  # the client counts the line the statement ended on
        if first >= line_no:
            return " ".join(text.split())
    return ""


def announce(version, name, message):
    text = f"{version} {name}: {message}"
    toolbox.out(f"== {text} " + "=" * max(0, 75 - len(text)))


def run_migration(config, version, name, path):
    with open(path) as f:
        sql = f.read()
    announce(version, name, "migrating")
    started = time.monotonic()
    result = mysql(config, sql + f"\nINSERT INTO `schema_migrations` (`version`) VALUES ('{version}');\n")
    for warning in result.stdout.splitlines():  # upstream `warn`s, e.g. unmigrated mounts
        sys.stderr.write(warning.replace("\\n", "\n") + "\n")
    if result.returncode != 0:
        error = mysql_error(result.stderr)
        if error is None:
            message = f"Mysql2::Error: {result.stderr.strip()}"
        else:
            code, line_no, text = error
            statement = statement_at(sql, line_no) if line_no else ""
            message = f"Mysql2::Error: {text}" + (f": {statement}" if statement else "")
        raise RakeAborted(["StandardError: An error has occurred, all later migrations canceled:",
                           "", message, f"{path}:in `up'"])
    announce(version, name, "migrated (%.4fs)" % (time.monotonic() - started))
    toolbox.out("")


def db_migrate(root, env):
    config = database_config(root)
    available = migrations(root)
    applied = applied_versions(config)
    target = env.get("VERSION")
    if target is not None:
        if not target.isdigit():
            raise RakeAborted([f"ActiveRecord::UnknownMigrationVersionError: No migration with version number {target}"])
        target = int(target)
        if target and target not in {v for v, _, _ in available}:
            raise RakeAborted([f"ActiveRecord::UnknownMigrationVersionError: No migration with version number {target}"])
        current = max(applied, default=0)
        if target < current:
            raise RakeAborted([f"lab: migrating down to {target} (current version {current}) is not simulated"])
    for version, name, path in available:
        if version in applied or (target is not None and version > target):
            continue
        run_migration(config, version, name, path)


def db_version(root, env):
    config = database_config(root)
    toolbox.out(f"Current version: {max(applied_versions(config), default=0)}")


def api_task(name):
    """A task of the API's vpsadmin.rake (api_tasks.py); Ruby's exceptions abort rake."""
    def run(root, env):
        config = database_config(root)
        try:
            api_tasks.TASKS[name](config, env, toolbox.out)
        except api_tasks.RubyError as error:
            raise RakeAborted(error.lines()) from None
        except api_tasks.ResourceLocked as error:
            raise RakeAborted([f"ResourceLocked: {error}"]) from None
    return run


TASKS = {"db:migrate": db_migrate, "db:version": db_version,
         **{name: api_task(name) for name in api_tasks.TASKS}}


def main(argv):
    env = dict(os.environ)
    tasks = []
    for arg in argv:
        if arg.startswith("-"):
            continue  # --trace and friends change nothing here
        if "=" in arg:
            key, value = arg.split("=", 1)
            env[key] = value
            os.environ[key] = value
        else:
            tasks.append(arg)
    start, root = os.getcwd(), find_rakefile_dir()
    try:
        if root is None:
            raise RakeAborted([f"No Rakefile found (looking for: {', '.join(RAKEFILE_NAMES)})",
                               "", "(See full trace by running task with --trace)"])
        os.chdir(root)
        if root != start:
            toolbox.out(f"(in {root})")
        for task in tasks or ["default"]:
            if task not in TASKS:
                raise RakeAborted([f"Don't know how to build task '{task}'", "",
                                   "(See full trace by running task with --trace)"])
            try:
                TASKS[task](root, env)
            except RakeAborted as aborted:
                aborted.args = (aborted.args[0] + [f"Tasks: TOP => {task}",
                                                   "(See full trace by running task with --trace)"],)
                raise
    except RakeAborted as aborted:
        sys.stderr.write("rake aborted!\n" + "\n".join(aborted.args[0]) + "\n")
        return 1
    return 0


if __name__ == "__main__":
    toolbox.main({"rake": main})
