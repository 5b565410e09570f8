"""What the Synnefo simulators share: the settings files, the databases through psql, the
`Error:` convention of Django management commands, and the Astakos API (reached over SSH to
the host the settings' URL names, where snf-lab-astakos answers as Astakos would).

Standard library only (it runs inside a node sandbox). Facts: shared research synnefo.md §5
("Generic error convention"), §6 (settings), §2 (user catalogs).
"""

import glob
import json
import os
import shlex
import subprocess
import sys
from urllib.parse import unquote, urlsplit

SETTINGS_DIR = "/etc/synnefo"


class CommandError(Exception):
    """Django 1.2's CommandError: `Error: <msg>` on stderr, exit 1."""


class SettingsError(Exception):
    """A settings file that does not run as Python."""


def load_settings(directory=None):
    """Every /etc/synnefo/*.conf executed in sorted order into one namespace, as
    synnefo.settings does with execfile (research §0, §6). A file that fails raises
    SettingsError with the message Synnefo prints."""
    directory = directory or os.environ.get("SYNNEFO_SETTINGS_DIR", SETTINGS_DIR)
    namespace = {}
    for path in sorted(glob.glob(os.path.join(directory, "*.conf"))):
        try:
            with open(path) as f:
                code = compile(f.read(), path, "exec")
            exec(code, namespace)  # noqa: S102 - Synnefo's settings are Python, run as such
        except Exception as exc:  # what Synnefo catches: anything the file raises
            raise SettingsError(f"Failed to read settings file: {path} [{exc!r}]") from None
    namespace.pop("__builtins__", None)
    return namespace


def run_command(function, settings_dir=None):
    """Load the settings, run `function(settings)`, and turn errors into what snf-manage
    prints: the settings failure and a CommandError on stderr with exit 1. Returns the exit
    status (the function's, 0 when it returns None)."""
    try:
        settings = load_settings(settings_dir)
    except SettingsError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    try:
        status = function(settings)
    except CommandError as exc:
        sys.stdout.flush()
        sys.stderr.write(f"Error: {exc}\n")
        return 1
    sys.stdout.flush()
    return status or 0


# -- PostgreSQL ---------------------------------------------------------------------------
def lit(value):
    """A SQL literal (standard_conforming_strings on, PostgreSQL's default): NULL, a number,
    a boolean or a quoted string."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


class Database:
    """One PostgreSQL database reached through the host's psql: `rows(sql)` reads,
    `run(script)` runs statements in one transaction (ON_ERROR_STOP: all or nothing)."""

    def __init__(self, host, port, user, password, name):
        self.host, self.port, self.user, self.password, self.name = host, str(port or 5432), user, password, name

    def _psql(self, script, fields=False):
        argv = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", self.host or "127.0.0.1", "-p", self.port,
                "-U", self.user or "postgres", "-d", self.name]
        if fields:
            argv += ["-A", "-t", "-F", "\x1f", "-R", "\x1e"]
        env = dict(os.environ, PGCONNECT_TIMEOUT="5")
        if self.password:
            env["PGPASSWORD"] = self.password  # not in argv, where `ps` shows it
        proc = subprocess.run(argv, input=script, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise DatabaseError(proc.stderr.strip())
        return proc.stdout

    def rows(self, query):
        """The rows of one query as lists of strings (None for NULL)."""
        text = self._psql(
            "\\pset null '\x1a'\n" + query.rstrip().rstrip(";") + ";\n", fields=True)
        rows = []
        for record in text.split("\x1e"):
            record = record.strip("\n")
            if record:
                rows.append([None if v == "\x1a" else v for v in record.split("\x1f")])
        return rows

    def value(self, query):
        rows = self.rows(query)
        return rows[0][0] if rows else None

    def run(self, script):
        """Statements in one transaction."""
        self._psql("BEGIN;\n" + script.rstrip().rstrip(";") + ";\nCOMMIT;\n")


class DatabaseError(Exception):
    pass


def apps_db(settings):
    """snf_apps: Django's DATABASES['default'] (Astakos, quotaholder and Cyclades)."""
    db = settings.get("DATABASES", {}).get("default", {})
    if "postgresql" not in db.get("ENGINE", ""):
        raise CommandError(f"the lab's snf-manage knows PostgreSQL only, not {db.get('ENGINE')!r}")
    return Database(db.get("HOST"), db.get("PORT"), db.get("USER"), db.get("PASSWORD"), db.get("NAME"))


def url_db(url):
    """A database from an SQLAlchemy URL (postgresql://user:password@host:port/name)."""
    parts = urlsplit(url)
    if not parts.scheme.startswith("postgres"):
        raise CommandError(f"the lab's Pithos backend knows PostgreSQL only, not {parts.scheme!r}")
    return Database(parts.hostname, parts.port, unquote(parts.username or ""), unquote(parts.password or ""),
                    parts.path.lstrip("/"))


def pithos_db(settings):
    """snf_pithos: PITHOS_BACKEND_DB_CONNECTION (research §1)."""
    return url_db(settings.get("PITHOS_BACKEND_DB_CONNECTION", "sqlite:////tmp/pithos-backend.db"))


# -- the Astakos API ----------------------------------------------------------------------
class ApiError(Exception):
    """A non-2xx answer: (data, status), as synnefo.lib.astakos raises it."""

    def __init__(self, data, status):
        super().__init__(data, status)
        self.data, self.status = data, status


def astakos_call(url, token, call, payload):
    """POST `payload` to the Astakos (or quotaholder) API at `url`: in the lab, `snf-lab-astakos`
    on the host the URL names, over SSH. Returns the decoded JSON answer; raises ApiError on a
    status other than 2xx (the host down or Astakos stopped included: 503)."""
    host = urlsplit(url).hostname
    if not host:
        raise ApiError(f"no host in URL {url!r}", 0)
    remote = " ".join(shlex.quote(a) for a in ("snf-lab-astakos", call, urlsplit(url).path))
    proc = subprocess.run(["ssh", "-o", "ConnectTimeout=5", host, remote],
                          input=json.dumps({"token": token or "", "body": payload}),
                          capture_output=True, text=True)
    if proc.returncode == 255:
        raise ApiError(f"[Errno 111] Connection refused ({host}): {proc.stderr.strip()}", 0)
    try:
        answer = json.loads(proc.stdout)
    except ValueError:
        raise ApiError(proc.stdout + proc.stderr, 500) from None
    if not 200 <= answer["status"] < 300:
        raise ApiError(answer["data"], answer["status"])
    return answer["data"]


def user_catalogs(url, token, displaynames):
    """{displayname as sent: uuid} of the names Astakos knows (case-insensitively: it matches
    the lower-cased name against username), research §2 "Email->UUID mapping"."""
    data = astakos_call(url, token, "user_catalogs", {"displaynames": list(displaynames)})
    return data.get("displayname_catalog", {})


# -- the packages -------------------------------------------------------------------------
DPKG_STATUS = "/var/lib/dpkg/status"


def installed_version(package, status_file=DPKG_STATUS):
    """The version dpkg has `package` installed at ("install ok installed"), or None."""
    try:
        with open(status_file) as f:
            stanzas = f.read().split("\n\n")
    except FileNotFoundError:
        return None
    for stanza in stanzas:
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and line[0] != " ")
        if fields.get("Package") == package and fields.get("Status") == "install ok installed":
            return fields.get("Version")
    return None


def release_of(version):
    """"0.13" of "0.13.0-1" or "0.13.1~squeeze"; None stays None."""
    if version is None:
        return None
    return ".".join(version.split("-")[0].split("~")[0].split(".")[:2])
