#!/usr/bin/python3
"""The vpsAdmin API's own rake tasks for rake.py, as the API at 5d85ee934 runs them
(lib/vpsadmin/api/tasks/vpsadmin.rake, tasks/lifetimes.rb, tasks/mail.rb):

    rake vpsadmin:lifetimes:progress OBJECTS=<Class,...|all> [STATES=a,b] [GRACE=s]
         [NEW_EXPIRATION=s] [REASON=text] [EXECUTE=yes]
    rake vpsadmin:lifetimes:mail OBJECTS=<Class,...|all> DAYS=n [STATES=a,b]
    rake vpsadmin:mail_daily_report

Standard library only: it runs inside the API host's node on the host's /usr/bin/python3 and
talks to MariaDB through one `mysql` client session it keeps open (--unbuffered, each
statement followed by a marker SELECT, rows as JSON_OBJECT lines), so that a chain is built
the way ActiveRecord builds it: reads and writes interleaved in one database transaction per
fired chain, ROLLBACK when building it raises (ResourceLocked, a missing mail template, ...).

What is restated from upstream (models/ and models/transaction_chains/ at 5d85ee934), with its
quirks kept:
- TransactionChain.fire / use_chain / append / lock / concerns / mail, Transaction.fire_chained
  (t_type, queue, reversible, t_depends_on, a staged row first when confirmations are given),
  Transaction::Confirmable (row_pks and attr_changes serialized as YAML, as AR's `serialize`);
- Lifetimes::Wrapper and the per-state chains of User, Vps, Dataset, SnapshotDownload and
  Mount, with DatasetInPool::Destroy, Vps::Umount*, Vps::Mounts, Ip::Free, cluster resources
  and their validations;
- ActiveRecord 4.1 leaves enum symbols in `where(object_state: %i(active suspended))`
  unmapped: the SQL is `object_state IN ('active','suspended')`, which MySQL compares as 0, so
  User::Suspend/SoftDelete/HardDelete only see a user's *active* VPSes (fixed upstream in
  0e7493237, after 2.0.0). User::HardDelete also destroys the VPS datasets of those it did not
  hard-delete (fixed in 5aa872df7). Dataset validations run on `update!` (a dataset named
  `private` cannot be saved: RecordInvalid).
- MailTemplate.send_mail! with an ERB subset: `<%= @var %>` followed by `.method` and `[:key]`
  steps; `.count`/`.size`/`.length` of relations run COUNT(*). A step on nil gives nil and nil
  renders as '' (Ruby would raise NoMethodError: the lab's templates read @state.user of a
  state change no user made). Anything else in a template raises.

Errors are raised as RubyError (class and message as Ruby would print them); rake.py turns
them into `rake aborted!`.
"""

import datetime as dt
import json
import os
import re
import subprocess

STATES = ("active", "suspended", "soft_delete", "hard_delete", "deleted")
CONFIRMED = ("confirm_create", "confirmed", "confirm_destroy")
CONFIRM_DESTROY = 2
POOL_ROLES = ("hypervisor", "primary", "backup")
CHAIN_STATES = ("staged", "queued", "done", "rollbacking", "failed", "fatal", "resolved")
SESSION_INIT = ("SET SESSION sql_mode = 'STRICT_ALL_TABLES', SESSION time_zone = '+00:00', "
                "SESSION sql_auto_is_null = 0, SESSION wait_timeout = 2147483")
ERROR_LINE = re.compile(r"^ERROR (\d+) \(([0-9A-Z]+)\)(?: at line \d+)?: (.*)$")
TASKS_RB = "/opt/vpsadminapi/lib/vpsadmin/api/tasks/lifetimes.rb"


class RubyError(Exception):
    """An exception as Ruby raises it: rake prints `Class: message` (only the message for a
    RuntimeError) and the backtrace lines in `where`."""

    def __init__(self, klass, message, where=None):
        super().__init__(f"{klass}: {message}")
        self.klass, self.message, self.where = klass, message, list(where or [])

    def lines(self):
        head = self.message if self.klass == "RuntimeError" else f"{self.klass}: {self.message}"
        return [head] + self.where


class ResourceLocked(Exception):
    """Lockable#acquire_lock found the resource locked by another chain."""


def no_method(name, receiver="nil:NilClass"):
    return RubyError("NoMethodError", f"undefined method `{name}' for {receiver}")


def not_found():
    return RubyError("ActiveRecord::RecordNotFound", "ActiveRecord::RecordNotFound")


def not_simulated(what):
    return RubyError("RuntimeError", f"lab: {what} is not simulated")


# -- models ----------------------------------------------------------------------------------

class Model:
    def __init__(self, name, table, pk="id", states=None, enums=None, confirmable=False,
                 owner=None, hidden=None):
        self.name, self.table, self.pk = name, table, pk
        self.states = states              # lifetime states, None if not a lifetime model
        self.enums = dict(enums or {})    # column -> value names
        if states:
            self.enums["object_state"] = STATES
        if confirmable:
            self.enums["confirmed"] = CONFIRMED
        self.owner = owner                # column of the owning user's id
        self.hidden = hidden              # object_state its default scope hides

    @property
    def underscore(self):
        return re.sub(r"(?<!^)([A-Z])", r"_\1", self.name).lower()

    def scope(self, alias=None):
        """The default scope's condition ('1' if none)."""
        if self.hidden is None:
            return "1"
        return f"`{alias or self.table}`.`object_state` != {self.hidden}"


MODELS = {m.name: m for m in (
    Model("User", "members", "m_id", STATES, {"password_version": ("md5", "bcrypt")}, hidden=3),
    Model("Vps", "vps", "vps_id", STATES, confirmable=True, owner="m_id", hidden=3),
    Model("Dataset", "datasets", "id", ("active", "deleted"), confirmable=True, owner="user_id"),
    Model("SnapshotDownload", "snapshot_downloads", "id", ("active", "deleted"),
          confirmable=True, owner="user_id"),
    Model("Mount", "mounts", "id", ("active", "deleted"), confirmable=True, enums={
        "on_start_fail": ("skip", "mount_later", "fail_start", "wait_for_mount"),
        "current_state": ("created", "mounted", "unmounted", "skipped", "delayed", "waiting")}),
    Model("Node", "servers", "server_id"),
    Model("Environment", "environments"),
    Model("Location", "locations", "location_id"),
    Model("Pool", "pools", enums={"role": POOL_ROLES}),
    Model("DatasetInPool", "dataset_in_pools", confirmable=True),
    Model("DatasetProperty", "dataset_properties", confirmable=True),
    Model("DatasetTree", "dataset_trees", confirmable=True),
    Model("Branch", "branches", confirmable=True),
    Model("Snapshot", "snapshots", confirmable=True),
    Model("SnapshotInPool", "snapshot_in_pools", confirmable=True),
    Model("SnapshotInPoolInBranch", "snapshot_in_pool_in_branches", confirmable=True),
    Model("GroupSnapshot", "group_snapshots"),
    Model("DatasetAction", "dataset_actions"),
    Model("RepeatableTask", "repeatable_tasks"),
    Model("IpAddress", "vps_ip", "ip_id"),
    Model("ClusterResource", "cluster_resources", enums={"resource_type": ("numeric", "object")}),
    Model("ClusterResourceUse", "cluster_resource_uses", confirmable=True,
          enums={"admin_lock_type": ("no_lock", "absolute", "not_less", "not_more")}),
    Model("UserClusterResource", "user_cluster_resources"),
    Model("ObjectState", "object_states", enums={"state": STATES}),
    Model("DefaultLifetimeValue", "default_lifetime_values",
          enums={"direction": ("leave", "enter"), "state": STATES}),
    Model("MailTemplate", "mail_templates"),
    Model("MailRecipient", "mail_recipients"),
    Model("MailLog", "mail_logs"),
    Model("TransactionChain", "transaction_chains", enums={
        "state": CHAIN_STATES, "concern_type": ("chain_affect", "chain_transform")}),
    Model("Transaction", "transactions", "t_id"),
    Model("ResourceLock", "resource_locks"),
    Model("SysConfig", "sysconfig", "cfg_name"),
)}
# VpsAdmin::API::Lifetimes.models: the order the models registered in while require_all
# loaded models/ (sorted, retrying files that raised NameError): mount.rb and
# snapshot_download.rb get to `include Lifetimes::Model` before failing on TransactionChains,
# user.rb and vps.rb load, dataset.rb only on the second pass (Lockable was not loaded yet).
LIFETIME_MODELS = ("Mount", "SnapshotDownload", "User", "Vps", "Dataset")


class Rec(dict):
    """A row of a model's table (column -> value; DATETIME columns as naive UTC datetimes)."""

    __slots__ = ("model",)

    def __init__(self, model, row):
        super().__init__(row)
        self.model = model

    @property
    def meta(self):
        return MODELS[self.model]

    @property
    def id(self):
        return self[self.meta.pk]

    def key(self):
        return (self.model, self.id)

    def inspect(self):
        return f"#<{self.model}:0x{(hash(self.key()) & 0xffffffffffff):016x}>"


# -- Ruby values -----------------------------------------------------------------------------

def utcnow():
    """Time.now.utc (naive, UTC, with microseconds)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def ruby_time(t):
    """Time#to_s of a UTC time."""
    return t.strftime("%Y-%m-%d %H:%M:%S UTC")


def db_time(t):
    """What ActiveRecord 4.1 writes and quotes for a Time: UTC, whole seconds."""
    return t.replace(microsecond=0)


def ruby_split(text, sep=","):
    """String#split(sep): trailing empty fields dropped."""
    parts = text.split(sep)
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def to_i(text):
    """String#to_i."""
    found = re.match(r"\s*([-+]?\d+)", (text or "").replace("_", ""))
    return int(found.group(1)) if found else 0


def ruby_to_s(value):
    if value is None:
        return ""
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return ruby_time(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Rec):
        return value.inspect()
    if isinstance(value, Relation):
        raise not_simulated("printing a relation in a mail template")
    if isinstance(value, (dict, list)):
        return ruby_inspect(value)
    return str(value)


def ruby_inspect(value):
    if isinstance(value, dict):
        return "{" + ", ".join(f"{ruby_inspect(k)}=>{ruby_inspect(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(ruby_inspect(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if value is None:
        return "nil"
    return ruby_to_s(value)


def as_json(value):
    """ActiveSupport 4.1's to_json: no spaces, UTF-8 kept, <, > and & escaped."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_json_default)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


def _json_default(value):
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    raise TypeError(repr(value))


PLAIN_YAML = re.compile(r"^[A-Za-z][A-Za-z0-9 ._,/()'-]*$")
YAML_WORDS = {"y", "n", "yes", "no", "true", "false", "on", "off", "null", "nil"}


def yaml_scalar(value):
    """Psych's dump of a scalar (the values confirmations carry)."""
    if value is None:
        return ""
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond * 1000:09d} Z"
    text = str(value)
    if PLAIN_YAML.match(text) and text.lower() not in YAML_WORDS and not text.endswith(" "):
        return text
    return json.dumps(text)


def yaml_dump(value, symbol_keys=True):
    """AR's YAML `serialize` of a hash (symbol keys as Psych writes them, `:key:`), a symbol
    (`--- :name`) or nil (NULL)."""
    if value is None:
        return None
    if isinstance(value, dict):
        lines = []
        for k, v in value.items():
            scalar = yaml_scalar(v)
            lines.append(f"{':' if symbol_keys else ''}{k}:{' ' + scalar if scalar else ''}\n")
        return "---\n" + "".join(lines)
    if isinstance(value, Symbol):
        return f"--- :{value}\n"
    return f"--- {yaml_scalar(value)}\n"


class Symbol(str):
    """A Ruby symbol (decrement/increment confirmations name their attribute with one)."""


def quote(value):
    """An SQL literal."""
    if value is None:
        return "NULL"
    if value is True or value is False:
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dt.datetime):
        return "'" + db_time(value).strftime("%Y-%m-%d %H:%M:%S") + "'"
    if isinstance(value, dt.date):
        return "'" + value.isoformat() + "'"
    text = str(value)
    for char, escaped in (("\\", "\\\\"), ("'", "\\'"), ("\n", "\\n"), ("\r", "\\r"),
                          ("\0", "\\0"), ("\x1a", "\\Z")):
        text = text.replace(char, escaped)
    return "'" + text + "'"


# -- the database session -----------------------------------------------------------------

class Db:
    """One `mysql` client session: each statement is followed by a marker SELECT and its output
    read up to the marker; the client's errors (--force keeps it going) come inline."""

    def __init__(self, config):
        argv = ["mysql", "--batch", "--skip-column-names", "--raw", "--unbuffered", "--force",
                "--default-character-set=utf8", f"--init-command={SESSION_INIT}",
                "-h", config.get("host", "localhost"), "-P", str(config.get("port", "3306")),
                "-u", config.get("username", "root"), config.get("database", "")]
        env = dict(os.environ)
        if config.get("password"):
            env["MYSQL_PWD"] = config["password"]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, env=env, text=True,
                                     encoding="utf-8", errors="replace", bufsize=1)
        self.marker = 0
        self.column_cache = {}
        self.in_transaction = False
        self.lines("SELECT 1")

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            self.proc.wait()

    def lines(self, sql):
        """The output lines of `sql` (one or more statements); an error raises."""
        self.marker += 1
        tag = f"@@lab-rake-{self.marker}@@"
        try:
            self.proc.stdin.write(sql.rstrip().rstrip(";") + f";\nSELECT '{tag}';\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise RubyError("Mysql2::Error", "MySQL server has gone away") from None
        out = []
        while True:
            line = self.proc.stdout.readline()
            if not line:
                text = " ".join(out).strip()
                raise RubyError("Mysql2::Error", text or "Lost connection to MySQL server")
            line = line.rstrip("\n")
            if line == tag:
                break
            out.append(line)
        for line in out:
            found = ERROR_LINE.match(line)
            if found:
                statement = " ".join(sql.split())
                raise RubyError("ActiveRecord::StatementInvalid",
                                f"Mysql2::Error: {found.group(3)}: {statement}")
        return out

    def run(self, sql):
        self.lines(sql)

    def scalar(self, sql):
        out = self.lines(sql)
        if not out or out[0] == "NULL":
            return None
        value = out[0].split("\t")[0]
        return int(value) if re.fullmatch(r"-?\d+", value) else value

    def insert(self, table, values):
        cols = ", ".join(f"`{c}`" for c in values)
        vals = ", ".join(quote(v) for v in values.values())
        return int(self.lines(f"INSERT INTO `{table}` ({cols}) VALUES ({vals}); "
                              "SELECT LAST_INSERT_ID()")[-1])

    def update(self, table, where, values):
        sets = ", ".join(f"`{c}` = {quote(v)}" for c, v in values.items())
        self.run(f"UPDATE `{table}` SET {sets} WHERE {where}")

    def begin(self):
        self.run("START TRANSACTION")
        self.in_transaction = True

    def commit(self):
        self.run("COMMIT")
        self.in_transaction = False

    def rollback(self):
        if self.in_transaction:
            self.run("ROLLBACK")
        self.in_transaction = False

    def columns(self, table):
        """{column: (DATA_TYPE, COLUMN_TYPE)} in table order."""
        if table not in self.column_cache:
            out = self.lines(
                "SELECT JSON_OBJECT('c', COLUMN_NAME, 'd', DATA_TYPE, 't', COLUMN_TYPE) "
                "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
                f"AND TABLE_NAME = {quote(table)} ORDER BY ORDINAL_POSITION")
            cols = {}
            for line in out:
                row = json.loads(line)
                cols[row["c"]] = (row["d"], row["t"])
            self.column_cache[table] = cols
        return self.column_cache[table]

    def has_column(self, table, column):
        return column in self.columns(table)

    def records(self, model, where="1", order=None, limit=None, joins="", alias=None):
        """Rows of a model's table as Rec (`where`, `order` in SQL; the table is `alias`)."""
        meta = MODELS[model]
        name = alias or meta.table
        cols = self.columns(meta.table)
        if not cols:
            raise RubyError("ActiveRecord::StatementInvalid",
                            f"Mysql2::Error: Table '{meta.table}' doesn't exist")
        fields = ", ".join(f"'{c}', `{name}`.`{c}`" for c in cols)
        sql = (f"SELECT JSON_OBJECT({fields}) FROM `{meta.table}`"
               + (f" `{alias}`" if alias else "") + f" {joins} WHERE {where}")
        if order:
            sql += f" ORDER BY {order}"
        if limit:
            sql += f" LIMIT {int(limit)}"
        result = []
        for line in self.lines(sql):
            row = json.loads(line)
            for c, (data_type, _) in cols.items():
                value = row.get(c)
                if isinstance(value, str) and data_type in ("datetime", "timestamp"):
                    row[c] = parse_time(value)
                elif isinstance(value, str) and data_type == "date":
                    row[c] = dt.date.fromisoformat(value)
            result.append(Rec(model, row))
        return result

    def record(self, model, where="1", order=None, joins="", alias=None):
        found = self.records(model, where, order, 1, joins, alias)
        return found[0] if found else None


def parse_time(text):
    if text.startswith("0000-00-00"):
        return None
    return dt.datetime.strptime(text[:19], "%Y-%m-%d %H:%M:%S")


# -- the API: lookups ---------------------------------------------------------------------

class Api:
    def __init__(self, db):
        self.db = db

    def now(self):
        return utcnow()

    def now_db(self):
        return db_time(utcnow())

    def find(self, model, rec_id, scoped=True):
        """Model.find_by(pk) under its default scope (belongs_to reads this way); None if none."""
        if rec_id is None:
            return None
        meta = MODELS[model]
        where = f"`{meta.table}`.`{meta.pk}` = {quote(rec_id)}"
        if scoped:
            where += f" AND {meta.scope()}"
        return self.db.record(model, where)

    def where(self, model, cond="1", order=None, scoped=True):
        meta = MODELS[model]
        where = cond if not scoped else f"({cond}) AND {meta.scope()}"
        return self.db.records(model, where, order or f"`{meta.table}`.`{meta.pk}`")

    def assoc(self, rec, model, column):
        """A belongs_to association (loaded with the target's default scope)."""
        return self.find(model, rec.get(column))

    def sysconfig(self, name):
        value = self.db.scalar(f"SELECT cfg_value FROM sysconfig WHERE cfg_name = {quote(name)}")
        if value is None:
            return None
        try:
            return json.loads(str(value))
        except ValueError:
            return value

    # environments (lifetimes' defaults and cluster resources go by them)
    def node_environment(self, node_id, method="environment"):
        node = self.find("Node", node_id)
        if node is None:
            raise no_method(method)
        return self.find("Environment", node.get("environment_id"))

    def environment(self, rec):
        """Lifetimes::Private.environment / the cluster-resources environment of an object."""
        if rec.model == "Vps":
            return self.node_environment(rec["vps_server"])
        if rec.model == "DatasetInPool":
            pool = self.find("Pool", rec["pool_id"])
            if pool is None:
                raise no_method("node")
            return self.node_environment(pool["node_id"])
        if rec.model == "Dataset":  # Dataset#environment
            for dip in self.where("DatasetInPool", f"dataset_id = {rec.id}"):
                pool = self.find("Pool", dip["pool_id"])
                if pool["role"] != 2:
                    return self.node_environment(pool["node_id"])
            return None
        return None

    def owner(self, rec):
        if rec.model == "User":
            return rec
        column = rec.meta.owner
        if column is None:
            raise RubyError("RuntimeError", f"Unable to find an owner for {rec.inspect()} of class {rec.model}")
        return self.find("User", rec.get(column))

    def current_state(self, rec):
        return self.db.record("ObjectState", f"class_name = {quote(rec.model)} AND row_id = {rec.id}",
                              order="created_at DESC, id DESC")

    def primary_dataset_in_pool(self, dataset):
        """Dataset#primary_dataset_in_pool!: its dataset_in_pool on a non-backup pool."""
        dip = self.db.record("DatasetInPool", f"d.dataset_id = {dataset.id} AND p.role != 2",
                             joins="INNER JOIN pools p ON p.id = d.pool_id", alias="d")
        if dip is None:
            raise not_found()
        return dip

    def subtree(self, dataset):
        """dataset.subtree.where.not(confirmed: confirm_destroy), arranged: [(dataset, children)]
        (ancestry 2.1: self and descendants, ordered by ancestry)."""
        path = f"{dataset['ancestry']}/{dataset.id}" if dataset["ancestry"] else str(dataset.id)
        rows = self.db.records(
            "Dataset", f"(ancestry LIKE {quote(path + '/%')} OR ancestry = {quote(path)} "
                       f"OR id = {dataset.id}) AND confirmed != {CONFIRM_DESTROY}",
            order="(CASE WHEN ancestry IS NULL THEN 0 ELSE 1 END), ancestry, id")
        nodes = {r.id: (r, []) for r in rows}
        roots = []
        for r in rows:
            parent = int(r["ancestry"].split("/")[-1]) if r["ancestry"] else None
            if parent in nodes:
                nodes[parent][1].append(nodes[r.id])
            else:
                roots.append(nodes[r.id])
        return roots

    def subdatasets_in_pool(self, dip):
        """DatasetInPool#subdatasets_in_pool: dataset_in_pools of the subtree on its pool,
        parents first."""
        def serialize(node):
            ds, children = node
            found = self.db.record("DatasetInPool", f"dataset_id = {ds.id} AND pool_id = {dip['pool_id']}")
            if found is None:
                return []
            result = [found]
            for child in children:
                result.extend(serialize(child))
            return result
        dataset = self.find("Dataset", dip["dataset_id"])
        result = []
        for root in self.subtree_all(dataset):
            result.extend(serialize(root))
        return result

    def subtree_all(self, dataset):
        path = f"{dataset['ancestry']}/{dataset.id}" if dataset["ancestry"] else str(dataset.id)
        rows = self.db.records(
            "Dataset", f"ancestry LIKE {quote(path + '/%')} OR ancestry = {quote(path)} OR id = {dataset.id}",
            order="(CASE WHEN ancestry IS NULL THEN 0 ELSE 1 END), ancestry, id")
        nodes = {r.id: (r, []) for r in rows}
        roots = []
        for r in rows:
            parent = int(r["ancestry"].split("/")[-1]) if r["ancestry"] else None
            (nodes[parent][1] if parent in nodes else roots).append(nodes[r.id])
        return roots

    # saving with validations ------------------------------------------------------------
    def save(self, rec, changes):
        """rec.update!(changes): validations of the model, then the UPDATE (updated_at too when
        the table has it); `rec` takes the new values."""
        errors = self.validate(rec, dict(rec, **changes))
        if errors:
            raise RubyError("ActiveRecord::RecordInvalid", "Validation failed: " + ", ".join(errors))
        meta = rec.meta
        if rec.model == "Dataset":
            changes = dict(changes)
            full_name = self.resolve_full_name(dict(rec, **changes))
            if full_name != rec["full_name"]:
                changes["full_name"] = full_name
        changed = {c: v for c, v in changes.items() if rec.get(c) != v}
        if not changed:
            return
        if self.db.has_column(meta.table, "updated_at"):
            changed["updated_at"] = self.now_db()
        self.db.update(meta.table, f"`{meta.pk}` = {quote(rec.id)}", changed)
        rec.update(changed)

    def resolve_full_name(self, row):
        if row.get("ancestry"):
            parent = self.find("Dataset", int(row["ancestry"].split("/")[-1]))
            if parent is not None:
                return f"{self.resolve_full_name(parent)}/{row['name']}"
        return row["name"]

    def validate(self, rec, new):
        errors = []
        if rec.model == "Dataset":
            name = new.get("name") or ""
            if not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_\-:\.]{0,254}", name):
                errors.append(f"Name '{name}' is not a valid dataset name")
            if name in ("private", "vpsadmin"):
                errors.append(f"Name '{name}' is a reserved name")
            if ".." in name:
                errors.append("Mountpoint '..' not allowed in dataset name")
            for prefix in ("branch-", "tree."):
                if name.startswith(prefix):
                    errors.append(f"Name cannot start with prefix '{prefix}'")
                    break
        elif rec.model == "Mount":
            dst = new.get("dst") or ""
            if not dst.startswith("/"):
                dst = "/" + dst
            while dst.endswith("/"):
                dst = dst[:-1]
            new["dst"] = dst
            if (not re.fullmatch(r"[a-zA-Z0-9_\-/\.]{3,500}", dst) or ".." in dst or "//" in dst):
                errors.append("Dst invalid format")
            count = self.db.scalar(f"SELECT COUNT(*) FROM mounts WHERE vps_id = {quote(new.get('vps_id'))} "
                                   f"AND dst = {quote(dst)}")
            if count > 1:
                errors.append("Dst this mountpoint already exists")
        elif rec.model == "ClusterResourceUse":
            errors.extend(self.check_allocation(rec, new))
        return errors

    def check_allocation(self, rec, new):
        """ClusterResourceUse#check_allocation (no current user: no admin override)."""
        ucr = self.find("UserClusterResource", new["user_cluster_resource_id"])
        if ucr is None:
            raise no_method("value")
        resource = self.find("ClusterResource", ucr["cluster_resource_id"])
        used = int(self.db.scalar(
            f"SELECT COALESCE(SUM(value), 0) FROM cluster_resource_uses WHERE user_cluster_resource_id = "
            f"{ucr.id} AND enabled = 1 AND confirmed != {CONFIRM_DESTROY}") or 0)
        value = int(new["value"])
        total = used - int(rec["value"]) + value
        errors = []
        if total > int(ucr["value"]):
            errors.append(f"Value cannot allocate more {resource['name']} than is available "
                          f"({int(ucr['value']) - used} left)")
        if value > int(resource["max"]):
            errors.append(f"Value cannot allocate more than {resource['max']} to one object")
        elif value < int(resource["min"]):
            errors.append(f"Value cannot allocate less than {resource['min']} to one object")
        if int(resource["stepsize"]) and value % int(resource["stepsize"]) != 0:
            errors.append(f"Value is not a multiple of step size ({resource['stepsize']})")
        limit, lock_type = new.get("admin_limit"), new.get("admin_lock_type")
        if limit is not None:
            if lock_type == 1 and limit != value:
                errors.append(f"Value cannot allocate other than {limit}")
            elif lock_type == 2 and value < limit:
                errors.append(f"Value cannot allocate less than {limit}")
            elif lock_type == 3 and value > limit:
                errors.append(f"Value cannot allocate more than {limit}")
        return errors

    def update_columns(self, rec, changes):
        """update_all / a save without validations."""
        meta = rec.meta
        self.db.update(meta.table, f"`{meta.pk}` = {quote(rec.id)}", changes)
        rec.update(changes)

    # mail ---------------------------------------------------------------------------------
    def send_mail(self, name, user=None, vars=None):
        """MailTemplate.send_mail!: the mail_logs row of the rendered template."""
        tpl = self.db.record("MailTemplate", f"name = {quote(name)}")
        if tpl is None:
            raise RubyError("VpsAdmin::API::Exceptions::MailTemplateDoesNotExist",
                            f"Mail template '{name}' does not exist")
        if vars:
            renderer = Erb(self, vars)
            for column in ("subject", "text_plain", "text_html"):
                if tpl[column] is not None:
                    tpl[column] = renderer.render(tpl[column])
        recipients = {"to": [], "cc": [], "bcc": []}
        if user is not None:
            recipients["to"].append(user["m_mail"] or "")
        for recp in self.db.records(
                "MailRecipient", f"tr.mail_template_id = {tpl.id}", order="tr.id",
                joins="INNER JOIN mail_template_recipients tr ON tr.mail_recipient_id = r.id", alias="r"):
            for kind in ("to", "cc", "bcc"):
                if recp[kind] is not None:
                    recipients[kind].extend(ruby_split(recp[kind]))
        now = self.now_db()
        row = {"user_id": user.id if user is not None else None, "mail_template_id": tpl.id,
               "from": tpl["from"], "reply_to": tpl["reply_to"], "return_path": tpl["return_path"],
               "subject": tpl["subject"], "text_plain": tpl["text_plain"], "text_html": tpl["text_html"]}
        for kind in ("to", "cc", "bcc"):
            row[kind] = ",".join(dict.fromkeys(recipients[kind]))
        row.update(created_at=now, updated_at=now)
        log_id = self.db.insert("mail_logs", row)
        row.update(id=log_id, message_id=None, in_reply_to=None, references=None, transaction_id=None)
        return Rec("MailLog", row)


# -- transactions ------------------------------------------------------------------------------

class TType:
    """A Transaction subclass: t_type, queue and reversibility (irreversible 0, reversible 1,
    keep_going 2)."""

    def __init__(self, name, t_type, queue="general", reversible=1):
        self.name, self.t_type, self.queue, self.reversible = name, t_type, queue, reversible


VPS_STOP = TType("Vps::Stop", 1002, "vps")
VPS_DESTROY = TType("Vps::Destroy", 3002, "vps", 0)
VPS_IP_DEL = TType("Vps::IpDel", 2007, "network")
VPS_MOUNTS = TType("Vps::Mounts", 5301)
VPS_UMOUNT = TType("Vps::Umount", 5303)
STORAGE_REMOVE_DOWNLOAD = TType("Storage::RemoveDownload", 5005, "general", 0)
STORAGE_DESTROY_DATASET = TType("Storage::DestroyDataset", 5203, "storage", 0)
STORAGE_DESTROY_BRANCH = TType("Storage::DestroyBranch", 5207, "storage", 0)
STORAGE_DESTROY_SNAPSHOT = TType("Storage::DestroySnapshot", 5212, "storage", 0)
STORAGE_DESTROY_TREE = TType("Storage::DestroyTree", 5214, "storage", 0)
STORAGE_REMOVE_CLONE = TType("Storage::RemoveClone", 5218, "storage")
MAIL_SEND = TType("Mail::Send", 9001, "mail", 2)
NOOP = TType("Utils::NoOp", 10001)

CONFIRM_TYPES = ("create", "just_create", "edit_before", "edit_after", "destroy", "just_destroy",
                 "decrement", "increment")


class Confirmable:
    """Transaction::Confirmable: transaction_confirmations of one transaction."""

    def __init__(self, chain, t_id):
        self.chain, self.t_id = chain, t_id

    def add(self, kind, obj, attrs=None):
        if isinstance(attrs, dict):
            attrs = {k: (1 if v is True else 0 if v is False else v) for k, v in attrs.items()}
        now = self.chain.api.now_db()
        self.chain.db.insert("transaction_confirmations", {
            "transaction_id": self.t_id, "class_name": obj.model, "table_name": obj.meta.table,
            "row_pks": yaml_dump({obj.meta.pk: obj.id}, symbol_keys=False),
            "attr_changes": yaml_dump(attrs), "confirm_type": CONFIRM_TYPES.index(kind),
            "done": 0, "created_at": now, "updated_at": now})

    def create(self, obj):
        self.add("create", obj)

    def just_create(self, obj, attrs=None):
        self.add("just_create", obj, attrs)

    def edit_before(self, obj, attrs):
        self.add("edit_before", obj, attrs)

    def edit(self, obj, attrs):  # alias of edit_after
        self.add("edit_after", obj, attrs)

    def destroy(self, obj):
        self.add("destroy", obj)

    def just_destroy(self, obj):
        self.add("just_destroy", obj)

    def decrement(self, obj, attr):
        self.add("decrement", obj, Symbol(attr))

    def increment(self, obj, attr):
        self.add("increment", obj, Symbol(attr))


# -- chains ------------------------------------------------------------------------------------

def chain_name(klass):
    """TransactionChain.chain_name: the class name demodulized and underscored."""
    return re.sub(r"(?<!^)([A-Z])", r"_\1", klass.split("::")[-1]).lower()


class Chain:
    """A TransactionChain instance: the fired one (dst) or one used inside it (use_chain)."""

    def __init__(self, api, klass, parent=None, urgent=False, prio=0):
        self.api, self.db, self.klass = api, api.db, klass
        self.urgent, self.prio = urgent, prio
        self.concern_type, self.mail_server, self.id = 0, None, None
        if parent is None:
            self.dst, self.locks, self.named = self, [], {}
            self.last_id = self.last_node_id = None
            self.size = 0
        else:
            self.dst, self.locks, self.named = parent.dst, parent.locks, parent.named
            self.last_id, self.last_node_id = parent.last_id, parent.last_node_id
            self.size = None  # a used chain's own size stays nil: never `empty?`

    def empty(self):
        return self.size == 0

    def use_chain(self, link, *args, urgent=None, prio=None):
        nested = Chain(self.api, link.klass, parent=self, urgent=urgent or self.urgent,
                       prio=self.prio if prio is None else prio)
        ret = link(nested, *args)
        self.last_id, self.last_node_id = nested.last_id, nested.last_node_id
        return ret

    def lock(self, obj):
        """TransactionChain#lock: Lockable#acquire_lock(dst chain) unless this chain (or one it
        is part of) holds it already."""
        if obj is None:
            raise no_method("acquire_lock")
        resource = obj.model
        for lock in self.locks:
            if lock[0] == resource and lock[1] == obj.id:
                return
        now = self.api.now_db()
        out = self.db.lines(
            "INSERT IGNORE INTO resource_locks (resource, row_id, transaction_chain_id, created_at, "
            f"updated_at) VALUES ({quote(resource)}, {quote(obj.id)}, {quote(self.dst.id)}, "
            f"{quote(now)}, {quote(now)}); SELECT ROW_COUNT(), LAST_INSERT_ID()")
        count, lock_id = (int(v) for v in out[-1].split("\t"))
        if count != 1:
            raise ResourceLocked(f"Duplicate entry '{resource}-{obj.id}' for key "
                                 "'index_resource_locks_on_resource_and_row_id'")
        self.locks.append((resource, obj.id, lock_id))

    def release_locks(self):
        ids = [str(lock[2]) for lock in self.locks]
        if ids:
            self.db.run(f"DELETE FROM resource_locks WHERE id IN ({', '.join(ids)})")

    def concerns(self, kind, *objects):
        if self.dst is not self:
            return
        self.concern_type = {"affect": 0, "transform": 1}[kind]
        for class_name, row_id in objects:
            self.db.insert("transaction_chain_concerns", {
                "transaction_chain_id": self.id, "class_name": class_name, "row_id": row_id})

    def append(self, ttype, target, confirm=None):
        """do_append + Transaction.fire_chained: `target()` gives (t_server, t_vps, params) and is
        called after `confirm(Confirmable)`, as upstream computes params after the block."""
        dst = self.dst
        dst.size += 1
        row = {"transaction_chain_id": dst.id, "t_depends_on": self.last_id,
               "t_type": ttype.t_type, "queue": ttype.queue, "t_urgent": 1 if self.urgent else 0,
               "t_priority": self.prio or 0, "reversible": ttype.reversible, "t_success": 0,
               "t_m_id": None, "created_at": self.api.now_db()}
        if confirm is not None:
            t_id = self.db.insert("transactions", dict(row, t_done=2))
            confirm(Confirmable(self, t_id))
            server, vps, params = target()
            self.db.update("transactions", f"t_id = {t_id}", {
                "t_server": server, "t_vps": vps, "t_param": as_json(params), "t_done": 0})
        else:
            server, vps, params = target()
            t_id = self.db.insert("transactions", dict(row, t_server=server, t_vps=vps,
                                                       t_param=as_json(params), t_done=0))
        self.last_node_id, self.last_id = server, t_id
        return t_id

    def noop(self, node_id, confirm=None):
        return self.append(NOOP, lambda: (node_id, None, {}), confirm)

    def find_node_id(self):
        if self.last_node_id is None:
            order = "ss.created_at DESC" if self.db.has_column("servers_status", "created_at") else "ss.timestamp DESC"
            node = self.db.record("Node", "1", order=order, alias="n",
                                  joins="INNER JOIN servers_status ss ON ss.server_id = n.server_id")
            if node is None:
                raise not_found()
            self.last_node_id = node.id
        return self.last_node_id

    def find_mail_server(self):
        chain = self.dst
        if chain.mail_server is None:
            node = self.db.record("Node", "server_type = 'mailer'", order="server_id")
            if node is None:
                node = self.db.record("Node", "1", order="server_id")
            if node is None:
                raise not_found()
            chain.mail_server = node
        return chain.mail_server

    def mail(self, name, user=None, vars=None):
        """TransactionChain#mail: the mail_logs row, a Mail::Send on the mail server, the log
        pointed at it."""
        log = self.api.send_mail(name, user, vars)
        server = self.find_mail_server()
        self.append(MAIL_SEND, lambda: (server.id, None, {
            "to": log["to"], "cc": log["cc"], "bcc": log["bcc"], "from": log["from"],
            "reply_to": log["reply_to"], "return_path": log["return_path"],
            "message_id": None, "in_reply_to": None, "references": None,
            "subject": log["subject"], "text_plain": log["text_plain"], "text_html": log["text_html"]}))
        self.db.update("mail_logs", f"id = {log.id}", {"transaction_id": self.last_id,
                                                       "updated_at": self.api.now_db()})
        return log


def link(klass):
    """Marks a function as the link_chain of the chain class `klass`."""
    def mark(function):
        function.klass = klass
        return function
    return mark


def fire(api, linker, *args, allow_empty=False):
    """TransactionChain.fire: one DB transaction; the chain staged, linked, then queued; an
    empty chain is destroyed when the class allows it."""
    db = api.db
    db.begin()
    try:
        chain = Chain(api, linker.klass)
        now = api.now_db()
        chain.id = db.insert("transaction_chains", {
            "name": chain_name(linker.klass), "type": f"TransactionChains::{linker.klass}",
            "state": 0, "size": 0, "progress": 0, "user_id": None, "user_session_id": None,
            "urgent_rollback": 0, "concern_type": 0, "created_at": now, "updated_at": now})
        ret = linker(chain, *args)
        if chain.empty():
            if not allow_empty:
                raise RubyError("RuntimeError", "empty")
            chain.release_locks()
            db.run(f"DELETE FROM transaction_chains WHERE id = {chain.id}")
        else:
            db.update("transaction_chains", f"id = {chain.id}", {
                "state": 1, "size": chain.size, "concern_type": chain.concern_type,
                "updated_at": api.now_db()})
        db.commit()
        return ret
    except BaseException:
        db.rollback()
        raise


# -- lifetimes ---------------------------------------------------------------------------------

def state_name(rec):
    value = rec["object_state"]
    return STATES[value] if value is not None and 0 <= value < len(STATES) else None


def set_object_state(api, obj, state, reason=None, expiration=None, chain=None):
    """Lifetimes::Model#set_object_state (no current user)."""
    meta = obj.meta
    if state not in meta.states:
        raise RubyError("RuntimeError", f"{obj.model} does not have state '{state}'")
    states = meta.states
    current = state_name(obj)
    t_i = states.index(state)
    if current not in states:
        raise RubyError("ArgumentError", "comparison of Fixnum with nil failed")
    o_i = states.index(current)
    enter = t_i > o_i
    state_chain = list(states[o_i + 1:t_i + 1]) if enter else list(reversed(states[t_i + 1:o_i + 1]))
    limit = states.index("hard_delete") if "hard_delete" in states else states.index("deleted")
    if not enter and o_i >= limit:
        raise RubyError("VpsAdmin::API::Exceptions::CannotLeaveState", f"cannot leave state '{current}'")
    if not reason and expiration is None:
        env = api.environment(obj)
        env_cond = f"environment_id = {env.id}" if env is not None else "environment_id IS NULL"
        default = api.db.record("DefaultLifetimeValue", f"{env_cond} AND class_name = {quote(obj.model)} "
                                f"AND direction = {1 if enter else 0} AND state = {STATES.index(state)}")
        if default is not None:
            reason = default["reason"]
            if default["add_expiration"] is None:
                raise RubyError("TypeError", "nil can't be coerced into Time")
            expiration = api.now() + dt.timedelta(seconds=int(default["add_expiration"]))
    if reason is None:
        reason = ""
    log = Rec("ObjectState", {"class_name": obj.model, "row_id": obj.id, "state": STATES.index(state),
                              "user_id": None, "reason": reason, "expiration_date": expiration})
    args = (obj, state, state_chain, enter, STATE_CHANGES[obj.model], log)
    if chain is not None:
        return chain.use_chain(wrapper, *args)
    return fire(api, wrapper, *args, allow_empty=True)


def progress_object_state(api, obj, reason=None, expiration=None):
    """Lifetimes::Model#progress_object_state(:enter, ...)."""
    states = obj.meta.states
    current = state_name(obj)
    if current not in states:
        raise no_method("+")
    i = states.index(current)
    if i + 1 >= len(states):
        raise RubyError("RuntimeError", "cannot progress state in chosen direction (enter)")
    return set_object_state(api, obj, states[i + 1], reason=reason, expiration=expiration)


def save_log(api, log):
    """ObjectState#save! of a new log."""
    now = api.now_db()
    log.update(created_at=now, updated_at=now)
    row = {k: v for k, v in log.items() if k != "id"}
    log["id"] = api.db.insert("object_states", row)
    return log


@link("Lifetimes::Wrapper")
def wrapper(c, obj, target, states, enter, chains, log):
    api = c.api
    c.concerns("affect", (obj.model, obj.id))
    c.lock(obj)
    save_log(api, log)
    direction = "enter" if enter else "leave"
    for s in states:
        last = s == states[-1]
        default = True
        linker = chains.get((s, direction))
        if linker is not None:
            default = c.use_chain(linker, obj, last, states[-1], log)
        if last:
            if c.empty():
                direct_update(api, obj, {"object_state": STATES.index(target),
                                         "expiration_date": log["expiration_date"]})
            else:
                def confirm(cf, default=default):
                    if default is not False:
                        cf.edit(obj, {"object_state": STATES.index(target),
                                      "expiration_date": log["expiration_date"]})
                    cf.just_create(log)
                c.noop(c.find_node_id(), confirm)


def direct_update(api, obj, changes):
    """obj.update!(object_state:, expiration_date:) of an empty Wrapper (paper_trail records
    User and Vps)."""
    before = dict(obj)
    api.save(obj, {k: db_time(v) if isinstance(v, dt.datetime) else v for k, v in changes.items()})
    if obj.model in ("User", "Vps") and api.db.columns("versions"):
        api.db.insert("versions", {
            "item_type": obj.model, "item_id": obj.id, "event": "update", "whodunnit": None,
            "object": yaml_dump({k: v for k, v in before.items()}, symbol_keys=False),
            "created_at": api.now_db()})


@link("Lifetimes::NotImplemented")
def not_implemented(c, obj, target, state, log):
    raise RubyError("NotImplementedError", f"Transition to state '{state}' is not implemented")


def user_vpses(api, user, states_sql):
    """user.vpses.where(object_state: %i(...)) as AR 4.1 sends it: the symbols as strings."""
    return api.where("Vps", f"m_id = {user.id} AND object_state IN ({states_sql})")


@link("User::Suspend")
def user_suspend(c, user, target, state, log):
    if target:
        c.mail("user_suspend", user=user, vars={"user": user, "state": log})
    for vps in user_vpses(c.api, user, "'active', 'suspended'"):
        c.use_chain(vps_stop, vps)
    return True


@link("User::SoftDelete")
def user_soft_delete(c, user, target, state, log):
    c.mail("user_soft_delete", user=user, vars={"user": user, "state": log})
    for vps in user_vpses(c.api, user, "'active', 'suspended'"):
        set_object_state(c.api, vps, "soft_delete", reason="User was soft deleted", chain=c)
    return True


@link("User::HardDelete")
def user_hard_delete(c, user, target, state, log):
    api = c.api
    for vps in user_vpses(api, user, "'active', 'suspended', 'soft_delete'"):
        set_object_state(api, vps, "hard_delete", reason="User was hard deleted", chain=c)
    for ds in api.db.records("Dataset", f"user_id = {user.id} AND expiration IS NULL",
                             order="full_name DESC"):
        c.use_chain(dataset_in_pool_destroy, api.primary_dataset_in_pool(ds), True)
    for dl in api.db.records("SnapshotDownload", f"user_id = {user.id}", order="id"):
        c.use_chain(remove_download, dl)
    ips = api.db.records("IpAddress", f"user_id = {user.id}", order="ip_id")
    c.noop(c.find_node_id(), lambda cf: [cf.edit(ip, {"user_id": None}) for ip in ips])
    return True


@link("Vps::Stop")
def vps_stop(c, vps):
    c.lock(vps)
    c.concerns("affect", ("Vps", vps.id))
    return c.append(VPS_STOP, lambda: (vps["vps_server"], vps.id, {}))


@link("Vps::Block")
def vps_block(c, vps, target, state, log):
    ret = c.use_chain(vps_stop, vps)
    if target:
        ret = c.mail("vps_suspend", user=c.api.assoc(vps, "User", "m_id"), vars={"vps": vps, "state": log})
    return ret


@link("Vps::SoftDelete")
def vps_soft_delete(c, vps, target, state, log):
    api = c.api
    dip = api.find("DatasetInPool", vps["dataset_in_pool_id"])
    c.lock(dip)
    c.lock(vps)
    c.concerns("affect", ("Vps", vps.id))
    c.use_chain(vps_stop, vps)
    uses = []
    if target:
        uses = [u for u in (free_resource(c, vps, "ipv4"), free_resource(c, vps, "ipv6")) if u is not None]

    def confirm(cf):
        if target:
            for use in uses:
                cf.destroy(use)
        for obj in [vps, dip] + api.subdatasets_in_pool(dip):
            c.lock(obj)
            for use in resource_uses_of(api, obj):
                c.lock(api.find("UserClusterResource", use["user_cluster_resource_id"]))
                cf.edit(use, {"enabled": 0})
    return c.noop(vps["vps_server"], confirm)


@link("Vps::Destroy")
def vps_destroy(c, vps, target, state, log):
    api = c.api
    dip = api.find("DatasetInPool", vps["dataset_in_pool_id"])
    c.lock(dip)
    c.lock(vps)
    c.concerns("affect", ("Vps", vps.id))
    c.use_chain(vps_stop, vps)
    resources = free_resources(c, vps)
    mounts = api.db.records("Mount", f"vps_id = {vps.id}", order="id")
    for mnt in mounts:
        if mnt["snapshot_in_pool_id"]:
            c.use_chain(vps_umount_snapshot, vps, mnt, False)
        else:
            c.use_chain(vps_umount_dataset, vps, mnt, False)
    if mounts:
        c.use_chain(vps_mounts, vps)
    c.append(VPS_DESTROY, lambda: (vps["vps_server"], vps.id, {}),
             lambda cf: [cf.destroy(r) for r in resources])
    c.use_chain(dataset_in_pool_destroy, dip, True)
    return c.noop(c.find_node_id(), lambda cf: cf.edit(vps, {"dataset_in_pool_id": None}))


@link("Vps::Mounts")
def vps_mounts(c, vps, mounts=None):
    api = c.api
    c.lock(vps)
    c.concerns("affect", ("Vps", vps.id))
    if mounts is None:
        mounts = api.db.records("Mount", f"vps_id = {vps.id} AND enabled = 1 AND master_enabled = 1 "
                                         f"AND confirmed != {CONFIRM_DESTROY}", order="dst ASC")
    return c.append(VPS_MOUNTS, lambda: (vps["vps_server"], vps.id,
                                         {"mounts": [mount_params(api, m) for m in mounts]}))


@link("Vps::Umount")
def vps_umount(c, vps, mounts):
    c.lock(vps)
    c.concerns("affect", ("Vps", vps.id))
    for mnt in mounts:
        if mnt.model == "DatasetInPool":
            raise not_simulated("Vps::Umount of a dataset in pool")
    return c.append(VPS_UMOUNT, lambda: (vps["vps_server"], vps.id,
                                         {"mounts": [mount_params(c.api, m) for m in mounts]}))


@link("Vps::UmountDataset")
def vps_umount_dataset(c, vps, mount, regenerate=True):
    c.lock(vps)
    c.concerns("affect", ("Vps", vps.id))
    c.api.save(mount, {"confirmed": CONFIRM_DESTROY})
    if regenerate:
        c.use_chain(vps_mounts, vps)
    c.use_chain(vps_umount, vps, [mount])
    return c.noop(vps["vps_server"], lambda cf: cf.destroy(mount))


@link("Vps::UmountSnapshot")
def vps_umount_snapshot(c, vps, mount, regenerate=True):
    api = c.api
    c.lock(vps)
    c.concerns("affect", ("Vps", vps.id))
    api.save(mount, {"confirmed": CONFIRM_DESTROY})
    sip = api.find("SnapshotInPool", mount["snapshot_in_pool_id"])
    sip_dip = api.find("DatasetInPool", sip["dataset_in_pool_id"])
    remote = api.find("Pool", sip_dip["pool_id"])["node_id"] != vps["vps_server"]
    if regenerate:
        c.use_chain(vps_mounts, vps)
    c.use_chain(vps_umount, vps, [mount])

    def cleanup(cf):
        cf.destroy(mount)
        cf.decrement(sip, "reference_count")
        cf.edit(sip, {"mount_id": None})
    if remote:
        return c.append(STORAGE_REMOVE_CLONE, lambda: remove_clone_params(api, sip), cleanup)
    return c.noop(vps["vps_server"], cleanup)


@link("Vps::DestroyMount")
def vps_destroy_mount(c, mnt, *args):
    api = c.api
    c.lock(mnt)
    c.concerns("affect", ("Mount", mnt.id))
    vps = api.find("Vps", mnt["vps_id"])
    if vps is None:
        raise no_method("vps_server")
    if mnt["snapshot_in_pool_id"] and api.find("SnapshotInPool", mnt["snapshot_in_pool_id"]):
        return c.use_chain(vps_umount_snapshot, vps, mnt)
    return c.use_chain(vps_umount_dataset, vps, mnt)


def mount_params(api, mnt):
    """Transactions::Utils::Mounts#mount_params."""
    m = {"id": mnt.id, "on_start_fail": enum_name(mnt, "on_start_fail")}
    vps = api.find("Vps", mnt["vps_id"])
    if vps is None:
        raise no_method("vps_server")
    if mnt["dataset_in_pool_id"] and not mnt["snapshot_in_pool_id"]:
        dip = api.find("DatasetInPool", mnt["dataset_in_pool_id"])
        pool = api.find("Pool", dip["pool_id"])
        if pool["node_id"] == vps["vps_server"]:
            m["type"] = "dataset_local"
        else:
            m["type"] = "dataset_remote"
            m["src_node_addr"] = api.find("Node", pool["node_id"])["server_ip4"]
        m.update(pool_fs=pool["filesystem"], dataset_name=api.find("Dataset", dip["dataset_id"])["full_name"],
                 dst=mnt["dst"], mount_opts=mnt["mount_opts"], umount_opts=mnt["umount_opts"],
                 mode=mnt["mode"])
    elif mnt["snapshot_in_pool_id"]:
        sip = api.find("SnapshotInPool", mnt["snapshot_in_pool_id"])
        dip = api.find("DatasetInPool", sip["dataset_in_pool_id"])
        pool = api.find("Pool", dip["pool_id"])
        if pool["node_id"] == vps["vps_server"]:
            m["type"] = "snapshot_local"
        else:
            m["type"] = "snapshot_remote"
            m["src_node_addr"] = api.find("Node", pool["node_id"])["server_ip4"]
        m.update(pool_fs=pool["filesystem"], dataset_name=api.find("Dataset", dip["dataset_id"])["full_name"],
                 snapshot_id=sip["snapshot_id"], snapshot=api.find("Snapshot", sip["snapshot_id"])["name"],
                 dst=mnt["dst"], mount_opts=mnt["mount_opts"], umount_opts=mnt["umount_opts"],
                 mode=mnt["mode"])
        if pool["role"] == 2:
            branch = api.db.record(
                "Branch", f"sipib.snapshot_in_pool_id = {sip.id} AND t.dataset_in_pool_id = {dip.id}",
                alias="b", joins="INNER JOIN snapshot_in_pool_in_branches sipib ON sipib.branch_id = b.id "
                                 "INNER JOIN dataset_trees t ON t.id = b.dataset_tree_id")
            if branch is None:
                raise not_found()
            tree = api.find("DatasetTree", branch["dataset_tree_id"])
            m.update(dataset_tree=f"tree.{tree['index']}", branch=f"branch-{branch['name']}.{branch['index']}")
    return m


def enum_name(rec, column):
    value = rec.get(column)
    names = rec.meta.enums.get(column)
    if names is None or value is None or not 0 <= int(value) < len(names):
        return value
    return names[int(value)]


def remove_clone_params(api, sip):
    dip = api.find("DatasetInPool", sip["dataset_in_pool_id"])
    pool = api.find("Pool", dip["pool_id"])
    return (pool["node_id"], None, {
        "pool_fs": pool["filesystem"], "dataset_name": api.find("Dataset", dip["dataset_id"])["full_name"],
        "snapshot_id": sip["snapshot_id"], "snapshot": api.find("Snapshot", sip["snapshot_id"])["name"]})


# cluster resources (lib/vpsadmin/api/cluster_resources.rb) -------------------------------------

def resource_uses_of(api, obj):
    """ClusterResourceUse.for_obj."""
    return api.db.records("ClusterResourceUse", f"class_name = {quote(obj.model)} AND "
                          f"table_name = {quote(obj.meta.table)} AND row_id = {obj.id}", order="id")


def _environment_id(api, obj):
    env = api.environment(obj)
    if env is None:
        raise no_method("id")
    return env.id


def free_resource(c, obj, resource, use=None, free_object=True):
    api = c.api
    if use is None:
        resource_obj = api.db.record("ClusterResource", f"name = {quote(resource)}")
        if resource_obj is None:
            raise not_found()
        use = api.db.record(
            "ClusterResourceUse",
            f"ucr.environment_id = {_environment_id(api, obj)} AND cr.name = {quote(resource)} AND "
            f"u.class_name = {quote(obj.model)} AND u.table_name = {quote(obj.meta.table)} AND "
            f"u.row_id = {obj.id}", alias="u",
            joins="INNER JOIN user_cluster_resources ucr ON ucr.id = u.user_cluster_resource_id "
                  "INNER JOIN cluster_resources cr ON cr.id = ucr.cluster_resource_id")
        if use is None:
            return None
    else:
        ucr = api.find("UserClusterResource", use["user_cluster_resource_id"])
        resource_obj = api.find("ClusterResource", ucr["cluster_resource_id"])
    c.lock(api.find("UserClusterResource", use["user_cluster_resource_id"]))
    if resource_obj["resource_type"] == 1 and free_object:
        free_chain = resource_obj["free_chain"]
        if free_chain != "Ip::Free" or obj.model != "Vps":
            raise not_simulated(f"{free_chain}#free_from_{obj.meta.underscore}")
        c.use_chain(ip_free_from_vps, resource_obj, obj)
    api.save(use, {"confirmed": CONFIRM_DESTROY})
    return use


def free_resources(c, obj):
    api = c.api
    uses = api.db.records(
        "ClusterResourceUse", f"u.class_name = {quote(obj.model)} AND u.table_name = {quote(obj.meta.table)} "
                              f"AND u.row_id = {obj.id} AND ucr.environment_id = {_environment_id(api, obj)}",
        order="u.id", alias="u",
        joins="INNER JOIN user_cluster_resources ucr ON ucr.id = u.user_cluster_resource_id")
    return [free_resource(c, obj, None, use=use) for use in uses]


@link("Ip::Free")
def ip_free_from_vps(c, resource, vps):
    version = 4 if resource["name"] == "ipv4" else 6
    for ip in c.api.db.records("IpAddress", f"vps_id = {vps.id} AND ip_v = {version}", order="ip_id"):
        c.lock(ip)
        c.append(VPS_IP_DEL, lambda ip=ip: (vps["vps_server"], vps.id, {
            "addr": ip["ip_addr"], "version": ip["ip_v"], "unregister": True,
            "shaper": {"class_id": ip["class_id"], "max_tx": ip["max_tx"], "max_rx": ip["max_rx"]}}),
            lambda cf, ip=ip: cf.edit(ip, {"vps_id": None}))


# datasets ------------------------------------------------------------------------------------

@link("DatasetInPool::Destroy")
def dataset_in_pool_destroy(c, dip, recursive=False, top=True, tasks=True, detach_backups=True):
    api = c.api
    c.lock(dip)
    c.concerns("affect", ("Dataset", dip["dataset_id"]))
    if not recursive:
        raise RubyError("RuntimeError", "not implemented")
    datasets = []

    def destroy_recursive(node):
        ds, children = node
        for child in children:
            destroy_recursive(child)
        found = api.db.record("DatasetInPool", f"dataset_id = {ds.id} AND pool_id = {dip['pool_id']}")
        if found is not None:
            datasets.append(found)
    for root in api.subtree(api.find("Dataset", dip["dataset_id"])):
        destroy_recursive(root)
    for d in datasets:
        c.lock(d)
    affected = {}
    for d in datasets:
        for vps, mounts in mounts_to_umount(c, d):
            key = vps.id if vps is not None else None
            if key in affected:
                affected[key][1].extend(mounts)
            else:
                affected[key] = (vps, list(mounts))
    for vps, _ in affected.values():
        if vps is None:
            raise no_method("vps_server")
        c.use_chain(vps_mounts, vps)
    for vps, mounts in affected.values():
        c.append(VPS_UMOUNT, lambda vps=vps, mounts=mounts: (
            vps["vps_server"], vps.id, {"mounts": [mount_params(api, m) for m in mounts]}),
            lambda cf, mounts=mounts: [cf.destroy(m) for m in mounts])
    if not datasets:
        raise no_method("pool")
    top_level = datasets.pop()
    for d in datasets:
        destroy_dataset(c, d, True, tasks, detach_backups)
    return destroy_dataset(c, top_level, top, tasks, detach_backups)


def mounts_to_umount(c, dip):
    """[(vps, [mounts])] of a dataset in pool, its mounts marked confirm_destroy."""
    api = c.api
    ret = {}
    for mnt in api.db.records("Mount", f"dataset_in_pool_id = {dip.id}", order="id"):
        vps = api.find("Vps", mnt["vps_id"])
        c.lock(vps)
        c.lock(mnt)
        api.save(mnt, {"confirmed": CONFIRM_DESTROY})
        ret.setdefault(vps.id, (vps, []))[1].append(mnt)
    for sip in api.db.records("SnapshotInPool", f"dataset_in_pool_id = {dip.id} AND mount_id IS NOT NULL",
                              order="id"):
        mnt = api.find("Mount", sip["mount_id"])
        c.lock(mnt)
        vps = api.find("Vps", mnt["vps_id"]) if mnt is not None else None
        ret.setdefault(vps.id if vps is not None else None, (vps, []))[1].append(mnt)
    return list(ret.values())


def destroy_dataset(c, dip, destroy_top, tasks=True, detach_backups=True):
    api = c.api
    pool = api.find("Pool", dip["pool_id"])
    if pool["role"] == 2:
        for tree in api.db.records("DatasetTree", f"dataset_in_pool_id = {dip.id}", order="id"):
            c.use_chain(dataset_tree_destroy, tree)
    else:
        for sip in api.db.records("SnapshotInPool", f"dataset_in_pool_id = {dip.id}",
                                  order="id, reference_count"):
            c.use_chain(snapshot_in_pool_destroy, sip)
    dataset = api.find("Dataset", dip["dataset_id"])

    def confirm(cf):
        if detach_backups and pool["role"] in (0, 1):
            for backup in api.db.records("DatasetInPool", f"d.dataset_id = {dip['dataset_id']} AND p.role = 2",
                                         order="d.id", alias="d",
                                         joins="INNER JOIN pools p ON p.id = d.pool_id"):
                for tree in api.db.records("DatasetTree", f"dataset_in_pool_id = {backup.id}", order="id"):
                    cf.edit(tree, {"head": False})
                    for branch in api.db.records("Branch", f"dataset_tree_id = {tree.id} AND head = 1", order="id"):
                        cf.edit(branch, {"head": False})
        if not destroy_top:
            return
        if tasks:
            for use in free_resources(c, dip):
                cf.destroy(use)
            api.db.run(f"UPDATE dataset_properties SET confirmed = {CONFIRM_DESTROY} "
                       f"WHERE dataset_in_pool_id = {dip.id}")
            for prop in api.db.records("DatasetProperty", f"dataset_in_pool_id = {dip.id}", order="id"):
                cf.destroy(prop)
            for group in api.db.records("GroupSnapshot", f"dataset_in_pool_id = {dip.id}", order="id"):
                cf.just_destroy(group)
            for act in api.db.records("DatasetAction", f"src_dataset_in_pool_id = {dip.id} OR "
                                                       f"dst_dataset_in_pool_id = {dip.id}", order="id"):
                cf.just_destroy(act)
                task = api.db.record("RepeatableTask", "class_name = 'DatasetAction' AND "
                                     f"table_name = 'dataset_actions' AND row_id = {act.id}")
                if task is None:
                    raise not_found()
                cf.just_destroy(task)
        cf.destroy(dip)
        api.update_columns(dip, {"confirmed": CONFIRM_DESTROY})
        left = api.db.scalar(f"SELECT COUNT(*) FROM dataset_in_pools WHERE dataset_id = {dataset.id} "
                             f"AND confirmed != {CONFIRM_DESTROY}")
        if left == 0:
            api.save(dataset, {"confirmed": CONFIRM_DESTROY})
            cf.destroy(dataset)
        elif api.db.scalar(f"SELECT COUNT(*) FROM dataset_in_pools d INNER JOIN pools p ON p.id = d.pool_id "
                           f"WHERE d.dataset_id = {dataset.id} AND d.confirmed != {CONFIRM_DESTROY} "
                           "AND p.role != 2") == 0:
            # only in backups now: Dataset#set_expiration (saved at once) and the confirmations
            expiration = api.now() + dt.timedelta(days=30)
            log = save_log(api, Rec("ObjectState", {
                "class_name": "Dataset", "row_id": dataset.id, "state": dataset["object_state"],
                "user_id": None, "reason": None, "expiration_date": expiration}))
            api.save(dataset, {"expiration_date": db_time(expiration)})
            cf.just_create(log, {"reason": "Dataset on the primary pool was deleted."})
            cf.edit(dataset, {"expiration_date": expiration})
    return c.append(STORAGE_DESTROY_DATASET, lambda: (pool["node_id"], None, {
        "pool_fs": pool["filesystem"], "name": dataset["full_name"]}), confirm)


@link("DatasetTree::Destroy")
def dataset_tree_destroy(c, tree):
    api = c.api
    c.lock(tree)
    api.save(tree, {"confirmed": CONFIRM_DESTROY})
    for sip in api.db.records("SnapshotInPool", f"dataset_in_pool_id = {tree['dataset_in_pool_id']}",
                              order="reference_count, id"):
        c.use_chain(snapshot_in_pool_destroy, sip)
    for branch in api.db.records("Branch", f"dataset_tree_id = {tree.id}", order="id"):
        c.use_chain(branch_destroy, branch)
    dip = api.find("DatasetInPool", tree["dataset_in_pool_id"])
    pool = api.find("Pool", dip["pool_id"])
    return c.append(STORAGE_DESTROY_TREE, lambda: (pool["node_id"], None, {
        "pool_fs": pool["filesystem"], "dataset_name": api.find("Dataset", dip["dataset_id"])["full_name"],
        "tree": f"tree.{tree['index']}"}), lambda cf: cf.destroy(tree))


@link("Branch::Destroy")
def branch_destroy(c, branch):
    api = c.api
    c.lock(branch)
    api.save(branch, {"confirmed": CONFIRM_DESTROY})
    tree = api.find("DatasetTree", branch["dataset_tree_id"])
    dip = api.find("DatasetInPool", tree["dataset_in_pool_id"])
    pool = api.find("Pool", dip["pool_id"])
    return c.append(STORAGE_DESTROY_BRANCH, lambda: (pool["node_id"], None, {
        "pool_fs": pool["filesystem"], "dataset_name": api.find("Dataset", dip["dataset_id"])["full_name"],
        "tree": f"tree.{tree['index']}", "branch": f"branch-{branch['name']}.{branch['index']}"}),
        lambda cf: cf.destroy(branch))


@link("SnapshotInPool::Destroy")
def snapshot_in_pool_destroy(c, sip):
    """The SnapshotInPool half (a SnapshotInPoolInBranch never reaches it from lifetimes)."""
    api = c.api
    c.lock(sip)
    api.save(sip, {"confirmed": CONFIRM_DESTROY})
    cleanup = api.db.scalar(
        f"SELECT COUNT(*) FROM snapshots s INNER JOIN snapshot_in_pools sip ON sip.snapshot_id = s.id "
        f"WHERE s.id = {sip['snapshot_id']} AND sip.confirmed != {CONFIRM_DESTROY}") == 0
    dip = api.find("DatasetInPool", sip["dataset_in_pool_id"])
    pool = api.find("Pool", dip["pool_id"])
    snapshot = api.find("Snapshot", sip["snapshot_id"])
    if cleanup:
        downloads = api.db.records("SnapshotDownload", f"snapshot_id = {sip['snapshot_id']}", order="id")
        c.noop(pool["node_id"], lambda cf: [cf.edit(dl, {"snapshot_id": None}) for dl in downloads])

    def confirm(cf):
        cf.destroy(sip)
        if cleanup:
            cf.destroy(snapshot)
    return c.append(STORAGE_DESTROY_SNAPSHOT, lambda: (pool["node_id"], None, {
        "pool_fs": pool["filesystem"], "dataset_name": api.find("Dataset", dip["dataset_id"])["full_name"],
        "snapshot": {"id": sip["snapshot_id"], "name": snapshot["name"],
                     "confirmed": enum_name(snapshot, "confirmed")}}), confirm)


@link("Dataset::Destroy")
def dataset_destroy(c, ds, target, state, log):
    c.lock(ds)
    for dip in c.api.db.records("DatasetInPool", f"dataset_id = {ds.id} AND confirmed != {CONFIRM_DESTROY}",
                                order="id"):
        c.use_chain(dataset_in_pool_destroy, dip, True)
    return True


@link("Dataset::RemoveDownload")
def remove_download(c, dl, *args):
    api = c.api
    c.lock(dl)
    c.concerns("affect", ("SnapshotDownload", dl.id))
    api.save(dl, {"confirmed": CONFIRM_DESTROY})
    pool = api.find("Pool", dl["pool_id"])
    snapshot = api.find("Snapshot", dl["snapshot_id"])

    def confirm(cf):
        if snapshot is not None:
            cf.edit(snapshot, {"snapshot_download_id": None})
        cf.destroy(dl)
    return c.append(STORAGE_REMOVE_DOWNLOAD, lambda: (pool["node_id"], None, {
        "pool_fs": pool["filesystem"], "secret_key": dl["secret_key"], "file_name": dl["file_name"]}), confirm)


STATE_CHANGES = {
    "User": {("suspended", "enter"): user_suspend, ("soft_delete", "enter"): user_soft_delete,
             ("hard_delete", "enter"): user_hard_delete, ("deleted", "enter"): not_implemented},
    "Vps": {("suspended", "enter"): vps_block, ("soft_delete", "enter"): vps_soft_delete,
            ("hard_delete", "enter"): vps_destroy, ("deleted", "enter"): not_implemented},
    "Dataset": {("deleted", "enter"): dataset_destroy},
    "SnapshotDownload": {("deleted", "enter"): remove_download},
    "Mount": {("deleted", "enter"): vps_destroy_mount},
}
for _model, _changes in STATE_CHANGES.items():  # the leave chains (Resume, Revive, Unblock) are not simulated
    for _state in MODELS[_model].states:
        _changes.setdefault((_state, "leave"), None)


@link("Lifetimes::ExpirationWarning")
def expiration_warning(c, model, objects):
    api = c.api
    for obj in objects:
        user = api.owner(obj)
        if user is None:
            raise no_method("m_mailer_enable")
        if user["m_mailer_enable"]:
            c.mail(f"expiration_{MODELS[model].underscore}_{state_name(obj)}", user=user,
                   vars={"object": obj, "state": api.current_state(obj), MODELS[model].underscore: obj})
    return True


# -- the daily report ----------------------------------------------------------------------

class Relation:
    """An ActiveRecord relation the report's template counts."""

    def __init__(self, db, table, where, joins="", group=None):
        self.db, self.table, self.where, self.joins, self.group = db, table, where, joins, group

    def count(self):
        if self.group:
            out = self.db.lines(f"SELECT {self.group}, COUNT(*) FROM `{self.table}` {self.joins} "
                                f"WHERE {self.where} GROUP BY {self.group}")
            return {int(k): int(v) for k, v in (line.split("\t") for line in out)}
        return int(self.db.scalar(f"SELECT COUNT(*) FROM `{self.table}` {self.joins} WHERE {self.where}"))


@link("Mail::DailyReport")
def daily_report(c):
    api, db = c.api, c.db
    now = api.now()
    t = quote(now.strftime("%Y-%m-%d %H:%M:%S"))

    def rel(table, where, joins="", group=None):
        return Relation(db, table, where, joins, group)

    def lifetime(model, table, pk):
        result = {"new": {"changed": rel(table, f"object_state = 0 AND DATE_ADD(created_at, INTERVAL 1 DAY) >= {t}")}}
        for key, state in (("active", 0), ("soft_deleted", 2), ("hard_deleted", 3), ("suspended", 1)):
            joins = f"INNER JOIN object_states s ON s.class_name = '{model}' AND `{table}`.`{pk}` = s.row_id"
            where = (f"`{table}`.object_state = {state} AND s.state = {state} AND "
                     f"DATE_ADD(s.created_at, INTERVAL 1 DAY) >= {t}")
            if key == "active":
                where += f" AND s.created_at != `{table}`.created_at"
            result[key] = {"all": rel(table, f"object_state = {state}"), "changed": rel(table, where, joins)}
        return result

    def by_role(table, joins, role, group):
        return rel(table, f"pools.role = {role}", joins, group)

    ds_joins = ("INNER JOIN dataset_in_pools ON dataset_in_pools.dataset_id = datasets.id "
                "INNER JOIN pools ON pools.id = dataset_in_pools.pool_id")
    snap_joins = ("INNER JOIN datasets ON datasets.id = snapshots.dataset_id " + ds_joins)
    dl_joins = "INNER JOIN pools ON pools.id = snapshot_downloads.pool_id"
    chains = f"DATE_ADD(created_at, INTERVAL 1 DAY) >= {t}"
    trans = f"DATE_ADD(created_at, INTERVAL 1 DAY) > {t}"
    report = {
        "base_url": api.sysconfig("general_base_url"),
        "date": {"start": now - dt.timedelta(days=1), "end": now},
        "users": lifetime("User", "members", "m_id"),
        "vps": lifetime("Vps", "vps", "vps_id"),
        "datasets": {"all": rel("datasets", "1"), **{
            role: by_role("datasets", ds_joins, i, "datasets.id") for i, role in enumerate(POOL_ROLES)}},
        "snapshots": {"all": rel("snapshots", "1"),
                      "new": rel("snapshots", f"DATE_ADD(created_at, INTERVAL 1 DAY) >= {t}"), **{
                          role: by_role("snapshots", snap_joins, i, "snapshots.id")
                          for i, role in enumerate(POOL_ROLES)}},
        "downloads": {"all": rel("snapshot_downloads", "1"),
                      "new": rel("snapshot_downloads", f"DATE_ADD(snapshot_downloads.created_at, INTERVAL 1 DAY) >= {t}"),
                      **{role: by_role("snapshot_downloads", dl_joins, i, None) for i, role in enumerate(POOL_ROLES)}},
        "chains": {"total": rel("transaction_chains", chains),
                   "done": rel("transaction_chains", f"{chains} AND state = 2"),
                   "failed": rel("transaction_chains", f"{chains} AND state = 4"),
                   "fatal": rel("transaction_chains", f"{chains} AND state = 5"),
                   "resolved": rel("transaction_chains", f"{chains} AND state = 6"),
                   "all_failed": rel("transaction_chains", f"{chains} AND state >= 4")},
        "transactions": {"total": rel("transactions", trans),
                         "done": rel("transactions", f"{trans} AND t_done = 1"),
                         "rollbacked": rel("transactions", f"{trans} AND t_done = 2"),
                         "successful": rel("transactions", f"{trans} AND t_done = 1 AND t_success = 1"),
                         "failed": rel("transactions", f"{trans} AND t_done = 1 AND t_success = 0"),
                         "warning": rel("transactions", f"{trans} AND t_done = 1 AND t_success = 2"),
                         "pending": rel("transactions", f"{trans} AND t_done = 0")},
    }
    return c.mail("daily_report", vars=report)


# -- ERB -----------------------------------------------------------------------------------------

ERB_TAG = re.compile(r"<%(=|#|-)?(.*?)-?%>", re.S)
ERB_EXPR = re.compile(r"@([A-Za-z_]\w*)((?:\.[A-Za-z_]\w*[?!]?|\[:[A-Za-z_]\w*\]|\['[^']*'\]|\[\"[^\"]*\"\])*)")
ERB_STEP = re.compile(r"\.([A-Za-z_]\w*[?!]?)|\[:([A-Za-z_]\w*)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")


class Erb:
    """MailTemplate::TemplateBuilder#build over the subset the lab's templates use."""

    def __init__(self, api, vars):
        self.api, self.vars = api, vars

    def render(self, template):
        out, pos = [], 0
        for tag in ERB_TAG.finditer(template):
            out.append(template[pos:tag.start()])
            pos = tag.end()
            kind, code = tag.group(1), tag.group(2).strip()
            if kind == "#":
                continue
            if kind != "=":
                raise not_simulated(f"ERB code <%{kind or ''} {code} %>")
            out.append(ruby_to_s(self.evaluate(code)))
        out.append(template[pos:])
        return "".join(out)

    def evaluate(self, code):
        found = ERB_EXPR.fullmatch(code)
        if not found:
            raise not_simulated(f"the ERB expression `{code}`")
        value = self.vars.get(found.group(1))
        for step in ERB_STEP.finditer(found.group(2)):
            if value is None:
                return None  # see the module docstring: nil steps render ''
            method, sym, key1, key2 = step.groups()
            if method is None:
                key = sym if sym is not None else (key1 if key1 is not None else key2)
                if not isinstance(value, dict) or isinstance(value, Rec):
                    raise not_simulated(f"`[{key!r}]` on {type(value).__name__} in `{code}`")
                value = value.get(key) if sym is not None else None
            else:
                value = self.call(value, method, code)
        return value

    def call(self, value, method, code):
        if isinstance(value, Rec):
            return attribute(self.api, value, method)
        if isinstance(value, Relation):
            if method in ("count", "size", "length"):
                return value.count()
            raise not_simulated(f"`.{method}` of a relation in `{code}`")
        if isinstance(value, (list, dict, str)) and method in ("count", "size", "length"):
            return len(value)
        if method == "to_s":
            return ruby_to_s(value)
        raise not_simulated(f"`.{method}` of {type(value).__name__} in `{code}`")


ALIASES = {
    "User": {"login": "m_nick", "role": "m_level", "id": "m_id"},
    "Vps": {"hostname": "vps_hostname", "veid": "vps_id", "user_id": "m_id", "id": "vps_id"},
    "Node": {"name": "server_name", "addr": "server_ip4", "vps_max": "max_vps", "id": "server_id"},
    "IpAddress": {"addr": "ip_addr", "version": "ip_v", "id": "ip_id"},
    "SysConfig": {"name": "cfg_name", "value": "cfg_value"},
}
ASSOCIATIONS = {
    ("Vps", "user"): ("User", "m_id"), ("Vps", "node"): ("Node", "vps_server"),
    ("Vps", "dataset_in_pool"): ("DatasetInPool", "dataset_in_pool_id"),
    ("Node", "environment"): ("Environment", "environment_id"),
    ("Node", "location"): ("Location", "server_location"),
    ("ObjectState", "user"): ("User", "user_id"),
    ("Dataset", "user"): ("User", "user_id"), ("SnapshotDownload", "user"): ("User", "user_id"),
    ("SnapshotDownload", "snapshot"): ("Snapshot", "snapshot_id"),
    ("SnapshotDownload", "pool"): ("Pool", "pool_id"), ("Snapshot", "dataset"): ("Dataset", "dataset_id"),
    ("Mount", "vps"): ("Vps", "vps_id"), ("DatasetInPool", "dataset"): ("Dataset", "dataset_id"),
    ("DatasetInPool", "pool"): ("Pool", "pool_id"), ("Pool", "node"): ("Node", "node_id"),
    ("MailLog", "user"): ("User", "user_id"),
}


def attribute(api, rec, method):
    """rec.method as the model answers it: associations, aliases, a few methods, columns
    (typed as ActiveRecord reads them)."""
    model = rec.model
    if (model, method) in ASSOCIATIONS:
        target, column = ASSOCIATIONS[(model, method)]
        return api.find(target, rec.get(column))
    if model == "User":
        if method == "full_name":
            return rec["m_nick"] if not rec["m_name"] else rec["m_name"]
        if method in ("first_name", "last_name"):
            parts = (rec["m_name"] or "").split(" ")
            return parts[0] if method == "first_name" else parts[-1]
        if method == "role":
            level = rec["m_level"]
            return "admin" if level >= 90 else "support" if level >= 21 else "user" if level >= 1 else None
    if model == "Mount" and method in ("dataset", "snapshot"):
        if method == "dataset":
            dip = api.find("DatasetInPool", rec["dataset_in_pool_id"])
            return dip and api.find("Dataset", dip["dataset_id"])
        sip = api.find("SnapshotInPool", rec["snapshot_in_pool_id"])
        return sip and api.find("Snapshot", sip["snapshot_id"])
    if model == "SnapshotDownload" and method == "url":
        pool = api.find("Pool", rec["pool_id"])
        node = api.find("Node", pool["node_id"])
        location = api.find("Location", node["server_location"])
        env = api.find("Environment", node["environment_id"])
        if location is None or env is None:
            raise no_method("domain")
        fqdn = f"{node['server_name']}.{location['domain']}.{env['domain']}"
        base = api.sysconfig("snapshot_download_base_url") or ""
        return "/".join(p.strip("/") for p in (base, fqdn, pool["filesystem"].split("/")[-1],
                                                rec["secret_key"], rec["file_name"]))
    if model == "Node" and method == "fqdn":
        location = api.find("Location", rec["server_location"])
        env = api.find("Environment", rec["environment_id"])
        if location is None or env is None:
            raise no_method("domain")
        return f"{rec['server_name']}.{location['domain']}.{env['domain']}"
    column = ALIASES.get(model, {}).get(method, method)
    if method == "id":
        column = rec.meta.pk
    cols = api.db.columns(rec.meta.table)
    if column not in cols:
        raise no_method(method, f"{rec.inspect()}")
    value = rec.get(column)
    if column in rec.meta.enums:
        return enum_name(rec, column)
    if value is not None and cols[column][1].startswith("tinyint(1)"):
        return bool(value)
    return value


# -- the tasks ----------------------------------------------------------------------------------

def required_env(env, names, line_of_task):
    for name in names:
        if env.get(name):
            continue
        raise RubyError("RuntimeError", f"Missing required environment variable {name}", [
            f"{TASKS_RB}:90:in `block in required_env'", f"{TASKS_RB}:87:in `each'",
            f"{TASKS_RB}:87:in `required_env'", f"{TASKS_RB}:{line_of_task}"])


def get_objects(db, env, line_of_task):
    if env.get("OBJECTS") == "all":
        return [m for m in LIFETIME_MODELS if db.has_column(MODELS[m].table, "object_state")]
    classes = []
    for name in ruby_split(env["OBJECTS"]):
        where = [f"{TASKS_RB}:100:in `const_get'", f"{TASKS_RB}:100:in `block in get_objects'",
                 f"{TASKS_RB}:99:in `each'", f"{TASKS_RB}:99:in `get_objects'", f"{TASKS_RB}:{line_of_task}"]
        if not re.fullmatch(r"(::)?[A-Z]\w*(::[A-Z]\w*)*", name):
            raise RubyError("NameError", f"wrong constant name {name}", where)
        if name.lstrip(":") not in MODELS:
            raise RubyError("NameError", f"uninitialized constant {name}", where)
        classes.append(name.lstrip(":"))
    return classes


def get_states(env, line_of_task):
    if env.get("STATES") is None:
        return None
    states = []
    for name in ruby_split(env["STATES"]):
        if name not in STATES:
            raise RubyError("RuntimeError", f"Invalid object state '{name}'", [
                f"{TASKS_RB}:117:in `block in get_states'", f"{TASKS_RB}:113:in `map'",
                f"{TASKS_RB}:113:in `get_states'", f"{TASKS_RB}:{line_of_task}"])
        states.append(STATES.index(name))
    return states


def select_expired(db, model, time, states, order=None):
    """cls.where('expiration_date < ?', time)[.where(object_state: states)] under the default
    scope."""
    meta = MODELS[model]
    where = f"expiration_date < {quote(time)}"
    if not meta.states:
        statement = f"SELECT `{meta.table}`.* FROM `{meta.table}`  WHERE ({where})"
        raise RubyError("ActiveRecord::StatementInvalid",
                        f"Mysql2::Error: Unknown column 'expiration_date' in 'where clause': {statement}")
    if states is not None:
        where += f" AND `{meta.table}`.`object_state` IN ({', '.join(map(str, states)) or 'NULL'})"
    return db.records(model, f"({where}) AND {meta.scope()}", order or f"`{meta.pk}`")


def task(function):
    """Runs a task with its own database session; RubyError and ResourceLocked propagate."""
    def run(config, env, out):
        db = Db(config)
        try:
            return function(Api(db), env, out)
        finally:
            db.close()
    return run


@task
def lifetimes_progress(api, env, out):
    out("Progress lifetimes")
    required_env(env, ["OBJECTS"], "20:in `progress'")
    now = api.now()
    time = now - dt.timedelta(seconds=to_i(env["GRACE"])) if env.get("GRACE") is not None else now
    expiration = None
    if env.get("NEW_EXPIRATION") is not None:
        expiration = api.now() + dt.timedelta(seconds=to_i(env["NEW_EXPIRATION"]))
    out(f"Progressing objects having expiration date older than {ruby_time(time)}")
    states = get_states(env, "32:in `progress'")
    for model in get_objects(api.db, env, "34:in `progress'"):
        out(f"Model {model}")
        query = select_expired(api.db, model, time, states,
                               "full_name DESC" if model == "Dataset" else None)
        for instance in query:
            out(f"  id={instance.id}")
            if env.get("EXECUTE") != "yes":
                continue
            try:
                progress_object_state(api, instance, reason=env.get("REASON"), expiration=expiration)
            except ResourceLocked:
                out("    resource locked")


@task
def lifetimes_mail(api, env, out):
    out("Mail users regarding expiring objects")
    required_env(env, ["OBJECTS", "DAYS"], "70:in `mail_expiration'")
    classes = get_objects(api.db, env, "72:in `mail_expiration'")
    days = to_i(env["DAYS"])
    states = get_states(env, "74:in `mail_expiration'")
    time = api.now() + dt.timedelta(days=days)
    for model in classes:
        fire(api, expiration_warning, model, select_expired(api.db, model, time, states),
             allow_empty=True)


@task
def mail_daily_report(api, env, out):
    out("Mail daily report")
    fire(api, daily_report, allow_empty=True)


TASKS = {
    "vpsadmin:lifetimes:progress": lifetimes_progress,
    "vpsadmin:lifetimes:mail": lifetimes_mail,
    "vpsadmin:mail_daily_report": mail_daily_report,
}
