"""The Pithos commands of the lab's `snf-manage` (Synnefo 0.13, snf-pithos-app) on the backend
database PITHOS_BACKEND_DB_CONNECTION names: `pithos-manage-accounts`, `pithos-export-quota`
and `pithos-usage`. Standard library only (it runs inside a node sandbox).

Facts: shared research synnefo.md §1 "Pithos backend DB", §3, §4, §5, read against the 0.13
sources they cite (pithos/api/swiss_army, pithos/backends/modular.py and lib/sqlalchemy/*.py).

An account is a node with parent 0 (path = the account name); its containers are its children
(account/container), their objects theirs (account/container/name); an object's versions are
in CLUSTER_NORMAL (0, the current one), HISTORY (1) or DELETED (2).

pithos-manage-accounts works as the 0.13 backend does, call by call (Backend below): a merge
gives S's objects read permission for D, copies each (its current version, a new uuid, muser D)
into the same container under D (created with the default policy if missing; an object D has
already passes to history), re-points S's history versions to D's object and marks D's copy
public where S's was, then copies S's groups to D (a group of that name D had is replaced).
S is kept. A delete marks every object deleted, purges the containers' history and deleted
versions, removes the containers, the account node and the account's groups. Statistics move
as the backend moves them (its quirks too: re-pointed history versions stay counted under S).

One thing of 0.13 the runbook's order runs into: the backend reads `public.url`, which only
alembic 27381099d477 (pithos-migrate, runbook 6.4) adds; on the 0.12 table every object a merge
copies fails on it (SQLAlchemy's AttributeError: `Error: url`), before anything is committed.
"""

import optparse
import os
import re
import secrets
import sys
import time
import uuid as uuidlib

if __package__:  # imported on the host (lab.synnefo.tools.snf_pithos)
    from lab.core.tools import toolbox
    from lab.synnefo.tools import snf_common
    from lab.synnefo.tools.snf_cyclades import Exit, no_args, parse_options, py2_repr, raw_input, uncaught
else:  # run as a program: the modules are next to it
    import snf_common
    import toolbox
    from snf_cyclades import Exit, no_args, parse_options, py2_repr, raw_input, uncaught

CommandError = snf_common.CommandError
lit = snf_common.lit
INF = str(10 ** 30)  # the export file's import and export limits (research §4)
RESOURCE = "pithos+.diskspace"
ROOTNODE = 0
CLUSTER_NORMAL, CLUSTER_HISTORY, CLUSTER_DELETED = 0, 1, 2
CLUSTERS = (CLUSTER_NORMAL, CLUSTER_HISTORY, CLUSTER_DELETED)
# pithos/api/settings.py defaults (0.13)
DEFAULTS = {
    "PITHOS_BACKEND_QUOTA": 50 * 1024 ** 3,
    "PITHOS_BACKEND_VERSIONING": "auto",
    "PITHOS_BACKEND_FREE_VERSIONING": True,
    "PITHOS_USE_QUOTAHOLDER": False,
    "PITHOS_QUOTAHOLDER_URL": "",
    "PITHOS_QUOTAHOLDER_TOKEN": "",
    "PITHOS_PUBLIC_URL_SECURITY": 16,
    "PITHOS_PUBLIC_URL_ALPHABET": "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
}


def setting(settings, name):
    return settings.get(name, DEFAULTS.get(name))


def quote(name):
    return '"' + name + '"'


# -- the backend's rows, changed as the 0.13 backend changes them --------------------------------
class BackendError(Exception):
    """What the backend raises (NameError, ItemNotExists, QuotaError, ...): the command turns
    every exception into CommandError(e)."""


# table: (key columns, other columns, integer columns)
TABLES = {
    "nodes": (("node",), ("parent", "latest_version", "path"), {"node", "parent", "latest_version"}),
    "versions": (("serial",), ("node", "hash", "size", "type", "source", "mtime", "muser", "uuid", "checksum",
                               "cluster"), {"serial", "node", "size", "source", "cluster"}),
    "statistics": (("node", "cluster"), ("population", "size", "mtime"), {"node", "cluster", "population", "size"}),
    "policy": (("node", "key"), ("value",), {"node"}),
    "attributes": (("serial", "domain", "key"), ("value",), {"serial"}),
    "xfeatures": (("feature_id",), ("path",), {"feature_id"}),
    "xfeaturevals": (("feature_id", "key", "value"), (), {"feature_id", "key"}),
    "public": (("public_id",), ("path", "active"), {"public_id"}),
    "groups": (("owner", "name", "member"), (), set()),
}
# Deletes children first, inserts and updates parents first (foreign keys).
DELETE_ORDER = ("attributes", "xfeaturevals", "public", "groups", "policy", "statistics", "versions", "xfeatures",
                "nodes")
WRITE_ORDER = ("nodes", "versions", "attributes", "policy", "statistics", "xfeatures", "xfeaturevals", "public",
               "groups")
SEQUENCES = {"nodes": "node", "versions": "serial", "xfeatures": "feature_id", "public": "public_id"}


class Backend:
    """The rows of two accounts' trees (and the root's statistics, their permissions, public
    paths and groups) in memory, changed by the backend's calls and written back as one
    transaction (`commit`). New ids come from the tables' sequences."""

    def __init__(self, db, settings, accounts):
        self.db, self.settings = db, settings
        self.has_url = bool(db.value(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = 'public' AND column_name = 'url'"))
        columns = dict((name, (key, other + (("url",) if name == "public" and self.has_url else ())))
                       for name, (key, other, _ints) in TABLES.items())
        self.columns = columns
        under = " OR ".join(f"path = {lit(a)} OR left(path, {len(a) + 1}) = {lit(a + '/')}" for a in accounts)
        node_set = f"SELECT node FROM nodes WHERE node = {ROOTNODE} OR {under}"
        where = {
            "nodes": f"node IN ({node_set})",
            "versions": f"node IN ({node_set})",
            "statistics": f"node IN ({node_set})",
            "policy": f"node IN ({node_set})",
            "attributes": f"serial IN (SELECT serial FROM versions WHERE node IN ({node_set}))",
            "xfeatures": under,
            "xfeaturevals": f"feature_id IN (SELECT feature_id FROM xfeatures WHERE {under})",
            "public": under,
            "groups": "owner IN (" + ", ".join(lit(a) for a in accounts) + ")",
        }
        self.tables, self.loaded = {}, {}
        for name, (key, other) in columns.items():
            ints = TABLES[name][2]
            rows = {}
            for values in db.rows(f"SELECT {', '.join(map(quote, key + other))} FROM {quote(name)} WHERE {where[name]}"):
                row = {c: (int(v) if c in ints and v is not None else v) for c, v in zip(key + other, values,
                                                                                             strict=True)}
                if "active" in row:
                    row["active"] = row["active"] == "t"
                rows[tuple(row[c] for c in key)] = row
            self.tables[name] = rows
            self.loaded[name] = {k: dict(v) for k, v in rows.items()}
        self.free_ids = {}

    # -- ids, time, policy
    def new_id(self, table):
        """The next value of the table's serial sequence (fetched 32 at a time: a rolled back or
        dry run leaves gaps, as it does with the real backend)."""
        if not self.free_ids.get(table):
            column = SEQUENCES[table]
            self.free_ids[table] = [int(r[0]) for r in self.db.rows(
                f"SELECT nextval(pg_get_serial_sequence({lit(table)}, {lit(column)})) FROM generate_series(1, 32)")]
        return self.free_ids[table].pop(0)

    @staticmethod
    def now():
        return f"{time.time():.6f}"

    def get_policy(self, node):
        policy = {"quota": setting(self.settings, "PITHOS_BACKEND_QUOTA"),
                  "versioning": setting(self.settings, "PITHOS_BACKEND_VERSIONING")}
        policy.update({key: row["value"] for (n, key), row in self.tables["policy"].items() if n == node})
        return policy

    # -- nodes (lib/sqlalchemy/node.py)
    def node_lookup(self, path):
        return next((n for (n,), row in self.tables["nodes"].items() if row["path"] == path), None)

    def node_children(self, node):
        return [n for (n,), row in self.tables["nodes"].items() if row["parent"] == node and n != ROOTNODE]

    def node_create(self, parent, path):
        node = self.new_id("nodes")
        self.tables["nodes"][(node,)] = {"node": node, "parent": parent, "latest_version": None, "path": path}
        return node

    def node_versions(self, node):
        return sorted((v for v in self.tables["versions"].values() if v["node"] == node), key=lambda v: v["serial"])

    def _drop_node(self, node):
        """The node's row and what its foreign keys cascade to."""
        for version in self.node_versions(node):
            self._drop_version(version["serial"])
        for table in ("policy", "statistics"):
            for key in [k for k in self.tables[table] if k[0] == node]:
                del self.tables[table][key]
        del self.tables["nodes"][(node,)]

    def _drop_version(self, serial):
        del self.tables["versions"][(serial,)]
        for key in [k for k in self.tables["attributes"] if k[0] == serial]:
            del self.tables["attributes"][key]

    def node_remove(self, node):
        if self.node_children(node):
            return False
        mtime, by_cluster = self.now(), {}
        for version in self.node_versions(node):
            count, size = by_cluster.get(version["cluster"], (0, 0))
            by_cluster[version["cluster"]] = (count + 1, size + version["size"])
        for cluster, (count, size) in by_cluster.items():
            self.statistics_update_ancestors(node, -count, -size, mtime, cluster)
        self._drop_node(node)
        return True

    def node_purge_children(self, parent, cluster):
        children = set(self.node_children(parent))
        purged = [v for v in self.tables["versions"].values() if v["node"] in children and v["cluster"] == cluster]
        count, size, mtime = len(purged), sum(v["size"] for v in purged), self.now()
        self.statistics_update(parent, -count, -size, mtime, cluster)
        self.statistics_update_ancestors(parent, -count, -size, mtime, cluster)
        for version in purged:
            self._drop_version(version["serial"])
        for node in children:
            if not self.node_versions(node):
                self._drop_node(node)

    def statistics_update(self, node, population, size, mtime, cluster):
        row = self.tables["statistics"].get((node, cluster))
        before = (row["population"], row["size"]) if row else (0, 0)
        self.tables["statistics"][(node, cluster)] = {
            "node": node, "cluster": cluster, "population": max(before[0] + population, 0),
            "size": before[1] + size, "mtime": mtime}

    def statistics_update_ancestors(self, node, population, size, mtime, cluster):
        while node != ROOTNODE:
            row = self.tables["nodes"].get((node,))
            if row is None:
                break
            self.statistics_update(row["parent"], population, size, mtime, cluster)
            node, population = row["parent"], 0  # population isn't recursive

    def statistics(self, node, cluster=CLUSTER_NORMAL):
        row = self.tables["statistics"].get((node, cluster))
        return (row["population"], row["size"]) if row else (0, 0)

    def version_create(self, node, hash, size, type, source, muser, uuid, checksum, cluster):
        serial, mtime = self.new_id("versions"), self.now()
        self.tables["versions"][(serial,)] = {
            "serial": serial, "node": node, "hash": hash, "size": size, "type": type, "source": source,
            "mtime": mtime, "muser": muser, "uuid": uuid, "checksum": checksum, "cluster": cluster}
        self.statistics_update_ancestors(node, 1, size, mtime, cluster)
        self.tables["nodes"][(node,)]["latest_version"] = serial
        return serial

    def version_lookup(self, node, cluster=CLUSTER_NORMAL):
        """The node's current version if it is in `cluster`."""
        latest = self.tables["nodes"][(node,)]["latest_version"]
        version = self.tables["versions"].get((latest,))
        return version if version and version["cluster"] == cluster else None

    def version_recluster(self, serial, cluster):
        version = self.tables["versions"][(serial,)]
        if version["cluster"] == cluster:
            return
        mtime = self.now()
        self.statistics_update_ancestors(version["node"], -1, -version["size"], mtime, version["cluster"])
        self.statistics_update_ancestors(version["node"], 1, version["size"], mtime, cluster)
        version["cluster"] = cluster

    def version_remove(self, serial):
        version = self.tables["versions"][(serial,)]
        self.statistics_update_ancestors(version["node"], -1, -version["size"], self.now(), version["cluster"])
        self._drop_version(serial)
        if self.version_lookup(version["node"], version["cluster"]):  # node.py's own quirk, kept
            self.tables["nodes"][(version["node"],)]["latest_version"] = serial
        return version["size"]

    # -- listings (latest_version_list: the current version not in the deleted cluster)
    def listed_children(self, node):
        paths = []
        for child in self.node_children(node):
            row = self.tables["nodes"][(child,)]
            version = self.tables["versions"].get((row["latest_version"],))
            if version and version["cluster"] != CLUSTER_DELETED:
                paths.append(row["path"])
        return sorted(paths)

    def list_containers(self, account):
        node = self.node_lookup(account)
        return [path[len(account) + 1:] for path in self.listed_children(node)] if node is not None else []

    def list_objects(self, account, container):
        node = self.node_lookup(f"{account}/{container}")
        if node is None:
            raise BackendError("Container does not exist")
        return [path[len(account) + len(container) + 2:] for path in self.listed_children(node)]

    def list_all_objects(self, account):
        return [os.path.join(c, name) for c in self.list_containers(account) for name in self.list_objects(account, c)]

    def lookup_object(self, account, container, name):
        path = f"{account}/{container}/{name}"
        node = self.node_lookup(path)
        if node is None:
            raise BackendError("Object does not exist")
        return path, node

    # -- permissions, public paths, groups (permissions.py, xfeatures.py, public.py, groups.py)
    def xfeature_get(self, path):
        return next((fid for (fid,), row in self.tables["xfeatures"].items() if row["path"] == path), None)

    def xfeature_destroy(self, path):
        feature = self.xfeature_get(path)
        if feature is not None:
            del self.tables["xfeatures"][(feature,)]
            for key in [k for k in self.tables["xfeaturevals"] if k[0] == feature]:
                del self.tables["xfeaturevals"][key]

    def access_get(self, path):
        feature = self.xfeature_get(path) if path is not None else None
        if feature is None:
            return {}
        permissions = {}
        for fid, key, value in sorted(self.tables["xfeaturevals"]):
            if fid == feature:
                permissions.setdefault("read" if key == 0 else "write", []).append(value)
        return permissions

    def access_set(self, path, permissions):
        read, write = permissions.get("read", []), permissions.get("write", [])
        if not read and not write:
            self.xfeature_destroy(path)
            return
        feature = self.xfeature_get(path)
        if feature is None:
            feature = self.new_id("xfeatures")
            self.tables["xfeatures"][(feature,)] = {"feature_id": feature, "path": path}
        for key in [k for k in self.tables["xfeaturevals"] if k[0] == feature]:
            del self.tables["xfeaturevals"][key]
        for key, members in ((0, read), (1, write)):
            for member in members:
                self.tables["xfeaturevals"][(feature, key, member)] = {"feature_id": feature, "key": key,
                                                                       "value": member}

    def permissions_path(self, account, container, name):
        """_get_permissions_path: the object's own permissions, or a directory object's above it
        (a container's are never inherited: fewer than two slashes)."""
        path = f"{account}/{container}/{name}"
        parts = path.rstrip("/").split("/")
        valid = []
        for i in range(1, len(parts)):
            sub = "/".join(parts[:i + 1])
            valid.append(sub)
            if sub != path:
                valid.append(sub + "/")
        for candidate in sorted((p for p in valid if self.xfeature_get(p) is not None), reverse=True):
            if candidate == path:
                return candidate
            if candidate.count("/") < 2:
                continue
            node = self.node_lookup(candidate)
            version = self.version_lookup(node) if node is not None else None
            if version and version["type"].split(";", 1)[0].strip() in ("application/directory",
                                                                         "application/folder"):
                return candidate
        return None

    def public_get(self, path):
        if not self.has_url:  # public.py selects public.c.url on the reflected 0.12 table
            raise BackendError("url")
        return next((row["url"] for row in self.tables["public"].values() if row["path"] == path and row["active"]),
                    None)

    def public_set(self, path):
        if any(row["path"] == path for row in self.tables["public"].values()):
            return
        # get_random_word(PUBLIC_URL_SECURITY) (random_word.py), unique among the urls
        alphabet = setting(self.settings, "PITHOS_PUBLIC_URL_ALPHABET")
        number, word = secrets.randbits(8 * int(setting(self.settings, "PITHOS_PUBLIC_URL_SECURITY"))), ""
        while True:
            number, digit = divmod(number, len(alphabet))
            word += alphabet[digit]
            if number <= 0:
                break
        public_id = self.new_id("public")
        self.tables["public"][(public_id,)] = {"public_id": public_id, "path": path, "active": True, "url": word}

    def public_unset_bulk(self, paths):
        for key in [k for k, row in self.tables["public"].items() if row["path"] in paths]:
            del self.tables["public"][key]

    def group_dict(self, owner):
        groups = {}
        for o, name, member in sorted(self.tables["groups"]):
            if o == owner:
                groups.setdefault(name, []).append(member)
        return groups

    def group_delete(self, owner, name):
        for key in [k for k in self.tables["groups"] if k[0] == owner and (name is None or k[1] == name)]:
            del self.tables["groups"][key]

    def group_add(self, owner, name, member):
        self.tables["groups"][(owner, name, member)] = {"owner": owner, "name": name, "member": member}

    # -- modular.py's calls
    def put_container(self, account, container):
        account_node = self.node_lookup(account)
        node = self.node_create(account_node, f"{account}/{container}")
        self.version_create(node, None, 0, "", None, account, str(uuidlib.uuid4()), "", CLUSTER_NORMAL)
        for key, value in (("quota", setting(self.settings, "PITHOS_BACKEND_QUOTA")),
                           ("versioning", setting(self.settings, "PITHOS_BACKEND_VERSIONING"))):
            self.tables["policy"][(node, key)] = {"node": node, "key": key, "value": str(value)}

    def apply_versioning(self, container_node, serial):
        """The size the replaced version `serial` frees: removed when the container does not
        keep versions, else counted when versioning is free."""
        if serial is None:
            return 0
        if self.get_policy(container_node)["versioning"] != "auto":
            return self.version_remove(serial)
        if setting(self.settings, "PITHOS_BACKEND_FREE_VERSIONING"):
            return self.tables["versions"][(serial,)]["size"]
        return 0

    def copy_object(self, src_node, account, container, name, permissions):
        """copy_object(user=account, ... into account/container/name) as _update_object_hash
        does it for a copy: the source's current version, a new uuid, muser = the account."""
        source = self.version_lookup(src_node)
        if source is None:
            raise BackendError("Object does not exist")
        account_node = self.node_lookup(account)
        container_node = self.node_lookup(f"{account}/{container}")
        path = f"{account}/{container}/{name}"
        node = self.node_lookup(path)
        if node is None:
            node = self.node_create(container_node, path)
        previous = self.version_lookup(node)
        if previous is not None:
            self.version_recluster(previous["serial"], CLUSTER_HISTORY)
        serial = self.version_create(node, source["hash"], source["size"], source["type"], source["serial"],
                                     account, str(uuidlib.uuid4()), source["checksum"], CLUSTER_NORMAL)
        for (src_serial, domain, key), row in list(self.tables["attributes"].items()):
            if src_serial == source["serial"]:
                self.tables["attributes"][(serial, domain, key)] = {"serial": serial, "domain": domain, "key": key,
                                                                    "value": row["value"]}
        size_delta = source["size"] - self.apply_versioning(container_node, previous and previous["serial"])
        checks = [(container_node, "container")]
        if not setting(self.settings, "PITHOS_USE_QUOTAHOLDER") and size_delta > 0:
            checks.insert(0, (account_node, "account"))
        for quota_node, what in checks:
            quota = int(self.get_policy(quota_node)["quota"])
            usage = self.statistics(quota_node)[1] + size_delta
            if quota > 0 and usage > quota:
                raise BackendError(f"{what} quota exceeded: limit: {quota}, usage: {usage}")
        self.access_set(path, permissions)
        return node

    # -- the swiss army knife (pithos/api/swiss_army)
    def merge_account(self, src, dest):
        for container_name in self.list_containers(src):
            for name in self.list_objects(src, container_name):
                path, src_node = self.lookup_object(src, container_name, name)
                # give read permissions to the dest account
                permissions = self.access_get(self.permissions_path(src, container_name, name))
                permissions["read"] = permissions.get("read", []) + [dest]
                self.access_set(path, permissions)
                # _copy_object
                if self.version_lookup(src_node) is None:
                    raise BackendError("Object does not exist")
                history = [v["serial"] for v in self.node_versions(src_node) if v["cluster"] != CLUSTER_DELETED][:-1]
                permissions = self.access_get(path)
                public = self.public_get(path)
                if container_name not in self.list_containers(dest):
                    self.put_container(dest, container_name)
                dest_node = self.copy_object(src_node, dest, container_name, name, permissions)
                for serial in history:  # version_put_property(serial, 'node', dest_node): no statistics
                    self.tables["versions"][(serial,)]["node"] = dest_node
                if public:
                    self.public_set(f"{dest}/{container_name}/{name}")
        for name, members in self.group_dict(src).items():
            self.group_delete(dest, name)
            for member in members:
                self.group_add(dest, name, member)

    def delete_account(self, account):
        for container_name in self.list_containers(account):
            container_node = self.node_lookup(f"{account}/{container_name}")
            paths = []
            for name in self.list_objects(account, container_name):  # delete_container(delimiter='/')
                path, node = self.lookup_object(account, container_name, name)
                current = self.version_lookup(node)
                if current is not None:
                    self.version_recluster(current["serial"], CLUSTER_HISTORY)
                self.version_create(node, None, 0, "", current and current["serial"], account,
                                    current["uuid"] if current else str(uuidlib.uuid4()), "", CLUSTER_DELETED)
                self.apply_versioning(container_node, current and current["serial"])
                paths.append(path)
            for path in paths:  # access_clear_bulk: permissions and public paths
                self.xfeature_destroy(path)
            self.public_unset_bulk(set(paths))
            if self.statistics(container_node)[0] > 0:  # delete_container()
                raise BackendError("Container is not empty")
            self.node_purge_children(container_node, CLUSTER_HISTORY)
            self.node_purge_children(container_node, CLUSTER_DELETED)
            self.node_remove(container_node)
        node = self.node_lookup(account)
        if node is None:
            return
        if not self.node_remove(node):
            raise BackendError("Account is not empty")
        self.group_delete(account, None)

    # -- writing back
    def changes(self):
        """The SQL that turns the loaded rows into the current ones."""
        statements = []

        def match(name, key):
            return " AND ".join(f"{quote(c)} = {lit(v)}" for c, v in zip(self.columns[name][0], key, strict=True))

        for name in DELETE_ORDER:
            for key in sorted(set(self.loaded[name]) - set(self.tables[name])):
                statements.append(f"DELETE FROM {quote(name)} WHERE {match(name, key)}")
        for name in WRITE_ORDER:
            key_columns, other = self.columns[name]
            for key in sorted(self.tables[name]):
                row, before = self.tables[name][key], self.loaded[name].get(key)
                if before is None:
                    columns = key_columns + other
                    statements.append(f"INSERT INTO {quote(name)} ({', '.join(map(quote, columns))}) "
                                      f"VALUES ({', '.join(lit(row.get(c)) for c in columns)})")
                elif row != before:
                    changed = ", ".join(f"{quote(c)} = {lit(row[c])}" for c in other if row[c] != before[c])
                    statements.append(f"UPDATE {quote(name)} SET {changed} WHERE {match(name, key)}")
        return statements

    def commit(self):
        statements = self.changes()
        if statements:
            self.db.run(";\n".join(statements))


# -- pithos-manage-accounts -------------------------------------------------------------------
def existing_accounts(db):
    """node_accounts(): the account paths, sorted."""
    return sorted(r[0] for r in db.rows("SELECT path FROM nodes WHERE node != 0 AND parent = 0"))


def duplicate_accounts(accounts):
    """SwissArmy.duplicate_accounts: each account taken as a regular expression (re.IGNORECASE)
    matched against the later accounts of the same length (`.` and `+` in an email match more
    than themselves; a later member of a group starts a group of its own too)."""
    duplicates = []
    for i, account in enumerate(accounts):
        matcher = re.compile(account, re.IGNORECASE)
        found = [a for a in accounts[i + 1:] if len(a) == len(account) and matcher.match(a)]
        if found:
            duplicates.append([account, *found])
    return duplicates


def show_entries(backend, account, heading):
    toolbox.out(heading)
    toolbox.out(f"Objects: {py2_repr(backend.list_all_objects(account))}")
    toolbox.out(f"Groups: {py2_repr(sorted(backend.group_dict(account)))}")


MANAGE_ACCOUNTS_OPTIONS = (
    ("--list-duplicate", {"dest": "duplicate_accounts", "action": "store_true", "default": False,
                          "help": "Display case insensitive duplicate accounts."}),
    ("--list-all", {"dest": "existing_accounts", "action": "store_true", "default": False,
                    "help": "Display existing accounts."}),
    ("--merge-accounts", {"dest": "merge_accounts", "action": "store_true", "default": False,
                          "help": "Merge SRC_ACCOUNT and DEST_ACCOUNT."}),
    ("--delete-account", {"dest": "delete_account", "action": "store", "help": "Delete DELETE_ACCOUNT."}),
    ("--src-account", {"dest": "src_account", "action": "store", "help": "Account to be merged and then deleted."}),
    ("--dest-account", {"dest": "dest_account", "action": "store",
                        "help": "Account where SRC_ACCOUNT contents will be copied."}),
    ("--dry", {"dest": "dry", "action": "store_true", "default": False, "help": "Do not commit database changes."}),
)


def manage_accounts(argv, settings):
    """`snf-manage pithos-manage-accounts` (research §3): every failure is `Error: <msg>`."""
    options = [optparse.make_option(flag, **kwargs) for flag, kwargs in MANAGE_ACCOUNTS_OPTIONS]
    try:
        opts, _args = parse_options(argv, "pithos-manage-accounts", "Quotas migration helper", options)
    except Exit as exc:
        return exc.status
    db = snf_common.pithos_db(settings)
    dry = opts.dry
    try:
        if not (opts.duplicate_accounts or opts.existing_accounts or opts.merge_accounts or opts.delete_account):
            # self.print_help('pithos-manage-accounts', ''): the command name as the program
            try:
                parse_options(["--help"], "", "Quotas migration helper", options, prog="pithos-manage-accounts")
            except Exit:
                pass
        if opts.duplicate_accounts and not (opts.existing_accounts or opts.merge_accounts or opts.delete_account):
            duplicates = duplicate_accounts(existing_accounts(db))
            if duplicates:
                raise CommandError("The following case insensitive duplicates found:\n"
                                   + "\n".join(", ".join(group) for group in duplicates))
            toolbox.out("No duplicate accounts are found.")
        if opts.existing_accounts and not (opts.merge_accounts or opts.delete_account):
            toolbox.out("The following accounts found:")
            toolbox.out("\n".join(existing_accounts(db)))
        if opts.merge_accounts:
            src, dest = opts.src_account, opts.dest_account
            if not src:
                raise CommandError("Please specify a source account")
            if not dest:
                raise CommandError("Please specify a destination account")
            backend = _accounts_backend(db, settings, src, dest)
            show_entries(backend, src, f"The following {src}'s entries will be moved to {dest}:")
            if raw_input(f"Type 'yes' if you are sure you want to move those entries to {dest}: ") != "yes":
                return 0
            backend.merge_account(src, dest)
            _finish(backend, dry, f"{src} merged into {dest}.")
            return 0
        if opts.delete_account:
            account = opts.delete_account
            backend = _accounts_backend(db, settings, account)
            show_entries(backend, account, f"The following {account}'s entries will be removed:")
            if raw_input("Type 'yes' if you are sure you want to remove those entries: ") != "yes":
                return 0
            backend.delete_account(account)
            _finish(backend, dry, f"{account} is deleted.")
            return 0
    except CommandError:
        raise
    except (BackendError, EOFError, re.error, snf_common.DatabaseError) as exc:  # `except Exception, e: raise CommandError(e)`
        raise CommandError(str(exc)) from None
    return 0


def _accounts_backend(db, settings, *accounts):
    existing = set(existing_accounts(db))
    for account in accounts:
        if account not in existing:
            raise CommandError(f"{account} does not exist")
    return Backend(db, settings, accounts)


def _finish(backend, dry, message):
    """One transaction: rolled back with --dry (the lab writes nothing then)."""
    if dry:
        toolbox.out("Skipping database commit.")
        return
    backend.commit()
    toolbox.out(message)


# -- pithos-export-quota --------------------------------------------------------------------
def export_quota(argv, settings):
    """`snf-manage pithos-export-quota [--location FILE]` (research §4): every account's
    explicit quota policy row, silent on success."""
    try:
        opts, args = parse_options(argv, "pithos-export-quota", "Export account quota policies", [
            optparse.make_option("--location", dest="location", default="exported_policies",
                                 help="Where to save the output file")])
    except Exit as exc:
        return exc.status
    no_args(args)
    db = snf_common.pithos_db(settings)
    location = os.path.abspath(opts.location)
    try:
        f = open(location, "w")  # opened (emptied) before the query, as the command does
    except OSError as exc:
        raise CommandError(str(exc)) from None
    with f:
        for path, value in db.rows("SELECT nodes.path, policy.value FROM nodes, policy WHERE nodes.node != 0 "
                                   "AND nodes.parent = 0 AND nodes.node = policy.node AND policy.key = 'quota'"):
            f.write(" ".join([path, RESOURCE, value, "0", INF, INF]) + "\n")
    return 0


# -- pithos-usage ---------------------------------------------------------------------------
def account_usage(db, users=None):
    """[(node, account, {cluster: size summed over the account's containers' and objects'
    versions}, {cluster: statistics' size})] in the nodes' order (_compute_statistics)."""
    only = f" AND path IN ({', '.join(lit(u) for u in users)})" if users else ""
    accounts = [(int(node), path) for node, path in db.rows(
        f"SELECT node, path FROM nodes WHERE node != 0 AND parent = 0{only} ORDER BY node")]
    if not accounts:
        return []
    sums, stats = {}, {}
    for account, cluster, size in db.rows(f"""
            WITH account AS (SELECT node FROM nodes WHERE node != 0 AND parent = 0{only}),
                 child AS (SELECT c.node, a.node AS account FROM account a JOIN nodes c ON c.parent = a.node),
                 descendant AS (SELECT node, account FROM child
                                UNION SELECT n.node, child.account FROM nodes n JOIN child ON n.parent = child.node)
            SELECT d.account, v.cluster, sum(v.size) FROM descendant d JOIN versions v ON v.node = d.node
            GROUP BY d.account, v.cluster"""):
        sums[(int(account), int(cluster))] = int(size)
    nodes = ", ".join(str(node) for node, _ in accounts)
    for node, cluster, size in db.rows(f"SELECT node, cluster, size FROM statistics WHERE node IN ({nodes})"):
        stats[(int(node), int(cluster))] = int(size)
    return [(node, path, {c: sums.get((node, c), 0) for c in CLUSTERS},
             {c: stats[(node, c)] for c in CLUSTERS if (node, c) in stats}) for node, path in accounts]


def usage(argv, settings):
    """`snf-manage pithos-usage [--list] [--reset] [--user U ...]` (research §5)."""
    try:
        opts, args = parse_options(argv, "pithos-usage", "List and reset pithos usage", [
            optparse.make_option("--list", dest="list", action="store_true", default=True,
                                 help="List usage for all or specified user"),
            optparse.make_option("--reset", dest="reset", action="store_true", default=False,
                                 help="Reset usage for all or specified users"),
            optparse.make_option("--user", dest="users", action="append", metavar="USER_UUID",
                                 help="Specify which users --list or --reset applies. This option can be repeated "
                                      "several times. If no user is specified --list or --reset will be applied "
                                      "globally.")])
    except Exit as exc:
        return exc.status
    no_args(args)
    db = snf_common.pithos_db(settings)
    accounts = account_usage(db, opts.users)
    if not accounts:
        raise CommandError("No users found.")
    reset_holding = []
    for node, path, sums, stats in accounts:
        for cluster in CLUSTERS:
            if cluster not in stats:  # no statistics row: neither checked nor sent
                continue
            if sums[cluster] != stats[cluster]:
                toolbox.out(f"{node}[{path}][{cluster}], size: {sums[cluster]} != {stats[cluster]}")
            if cluster == CLUSTER_NORMAL:
                reset_holding.append([path, RESOURCE, "1", sums[cluster], 0, 0, 0])
    toolbox.out("\n".join(f"{row[0]}: {row[3]}" for row in reset_holding))
    if not opts.reset:
        return 0
    if not setting(settings, "PITHOS_USE_QUOTAHOLDER"):
        raise CommandError("Quotaholder component is not enabled")
    url, token = setting(settings, "PITHOS_QUOTAHOLDER_URL"), setting(settings, "PITHOS_QUOTAHOLDER_TOKEN")
    if not url:
        raise CommandError("Quotaholder url is not set")
    if not token:
        raise CommandError("Quotaholder token is not set")
    while True:
        try:
            rejected = snf_common.astakos_call(url, token, "reset_holding", reset_holding)
        except snf_common.ApiError as exc:  # the quotaholder client's CallError: nothing catches it
            return uncaught("snf-manage", f"CallError: {exc.data} (HTTP {exc.status})")
        if not rejected:
            break
        sys.stdout.write(f"Unknown quotaholder users: {', '.join(reset_holding[i][0] for i in rejected)}\n")
        sys.stdout.write("Retrying sending quota usage for the rest...\n")
        rejected = set(rejected)
        reset_holding = [row for i, row in enumerate(reset_holding) if i not in rejected]
    sys.stdout.flush()
    return 0
