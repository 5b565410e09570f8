"""The vpsAdmin 2.0 integrity check in the lab (research/vpsadmin.md §6).

Two halves, as upstream:
- `schedule()` is what the API's `POST integrity_checks` does (IntegrityCheck.schedule,
  TransactionChains::IntegrityCheck::Cluster/Node, Transactions::IntegrityCheck::*): the
  integrity_checks row, one queued chain with 6005 Storage per node, 6006 Vps per hypervisor
  and 6001 Finalize, each transaction depending on the one before, integrity_objects
  pre-created while the t_param is built (register_object!), resource_locks for the locked
  datasets in pools, VPSes and IPs.
- `check_storage()`, `check_vps()`, `finalize()` are vpsAdmind 2.0's handlers 6005/6006/6001
  (commands/integrity_check/*.rb, utils/integrity.rb): they run `zfs get` / `vzlist` inside the
  node and write integrity_facts, including upstream's quirks (onboot is compared with the
  status, object status counts every severity > 0 fact whatever its status, the ancestry of
  objects created for stray things is the parent's ancestry or the parent's id).
Fact values are stored as Ruby's YAML.dump of the value, as upstream.
"""

from __future__ import annotations

import json
import re

from lab.vpsadmin.daemon import CommandFailed, utc_now

ZFS_PROPERTIES = ("type,mounted,mountpoint,origin,clones,quota,refquota,compression,recordsize,"
                  "sync,atime,relatime,sharenfs")
VZLIST_FIELDS = "veid,status,onboot,private,root,hostname,ostemplate,physpages,swappages,cpus,cpulimit,ip"
SEVERITY = {"low": 0, "normal": 1, "high": 2}


# -- Ruby YAML ---------------------------------------------------------------------------

_PLAIN = re.compile(r"^[A-Za-z_/.][A-Za-z0-9_ ./:@,-]*$")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~", ""}


def yaml_dump(value) -> str:
    """Psych's YAML.dump of a scalar or a list of scalars."""
    if isinstance(value, list):
        if not value:
            return "--- []\n"
        return "---\n" + "".join(f"- {_scalar(v)}\n" for v in value)
    if value is None:
        return "--- \n...\n"
    return f"--- {_scalar(value)}\n...\n"


def _scalar(value) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return ""
    if isinstance(value, (int, float)):
        return str(value)
    text = str(value)
    if (_PLAIN.match(text) and text.lower() not in _RESERVED and not text.endswith(" ")
            and ": " not in text and " #" not in text):
        return text
    return "'" + text.replace("'", "''") + "'"


def yaml_load(text):
    """The scalars dataset_properties.value holds (ActiveRecord `serialize :value`)."""
    if text is None:
        return None
    body = text.strip()
    if body.startswith("---"):
        body = body[3:].strip()
    if body.endswith("..."):
        body = body[:-3].strip()
    if body in ("", "~", "null"):
        return None if text.strip().startswith("---") else ""
    if body in ("true", "false"):
        return body == "true"
    if re.fullmatch(r"-?\d+", body):
        return int(body)
    if len(body) >= 2 and body[0] == body[-1] and body[0] in "'\"":
        return body[1:-1].replace("''", "'") if body[0] == "'" else json.loads(body)
    return body


# -- scheduling (the API side) -----------------------------------------------------------

class Chain:
    """TransactionChain#append for one chain: each transaction depends on the previous one."""

    def __init__(self, cur, name: str, klass: str, user_id):
        self.cur, self.last_id, self.last_node_id, self.size = cur, None, None, 0
        cur.execute("INSERT INTO transaction_chains (name, type, state, size, progress, user_id, "
                    "created_at, updated_at) VALUES (%s, %s, 0, 0, 0, %s, %s, %s)",
                    (name, klass, user_id, utc_now(), utc_now()))
        self.id = cur.lastrowid
        cur.execute("SHOW COLUMNS FROM transactions")
        self.columns = {r[0] for r in cur.fetchall()}

    def append(self, t_type: int, t_server: int, t_vps, user_id, params_fn) -> int:
        cols = {"transaction_chain_id": self.id, "t_server": t_server, "t_vps": t_vps,
                "t_type": t_type, "t_depends_on": self.last_id, "t_urgent": 0, "t_priority": 0,
                "t_success": 0, "t_done": 2, "t_m_id": user_id, "t_param": "{}",
                "t_fallback": "{}", "reversible": 1, "created_at": utc_now()}
        if "queue" in self.columns:
            cols["queue"] = "general"
        cols = {k: v for k, v in cols.items() if k in self.columns}
        self.cur.execute(f"INSERT INTO transactions ({', '.join(cols)}) "
                         f"VALUES ({', '.join(['%s'] * len(cols))})", list(cols.values()))
        t_id = self.cur.lastrowid
        params = params_fn()
        self.cur.execute("UPDATE transactions SET t_param = %s, t_done = 0 WHERE t_id = %s",
                         (json.dumps(params), t_id))
        self.last_id, self.last_node_id = t_id, t_server
        self.size += 1
        return t_id

    def lock(self, resource: str, row_id: int) -> None:
        self.cur.execute("INSERT INTO resource_locks (resource, row_id, transaction_chain_id, "
                         "created_at, updated_at) VALUES (%s, %s, %s, %s, %s)",
                         (resource, row_id, self.id, utc_now(), utc_now()))

    def queue(self) -> None:
        self.cur.execute("UPDATE transaction_chains SET state = 1, size = %s WHERE id = %s",
                         (self.size, self.id))


class ResourceLocked(Exception):
    pass


def _rows(cur, sql: str, params=None) -> list[dict]:
    cur.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=False)) for r in cur.fetchall()]


def schedule(conn, user_id: int, storage: bool = False, vps: bool = False,
             skip_maintenance: bool = False, node_id: int | None = None) -> int:
    """IntegrityCheck.schedule: returns the new integrity_checks id."""
    cur = conn.cursor()
    try:
        conn.begin()
        now = utc_now()
        cur.execute("INSERT INTO integrity_checks (user_id, status, created_at, updated_at) "
                    "VALUES (%s, 0, %s, %s)", (user_id, now, now))
        check_id = cur.lastrowid
        if node_id is not None:
            chain = Chain(cur, "node", "TransactionChains::IntegrityCheck::Node", user_id)
            nodes = _rows(cur, "SELECT server_id, server_type FROM servers WHERE server_id = %s",
                          (node_id,))
        else:
            chain = Chain(cur, "cluster", "TransactionChains::IntegrityCheck::Cluster", user_id)
            where = " WHERE maintenance_lock = 0" if skip_maintenance else ""
            nodes = _rows(cur, f"SELECT server_id, server_type FROM servers{where} ORDER BY server_id")
        cur.execute("UPDATE transaction_chains SET concern_type = 0 WHERE id = %s", (chain.id,))
        cur.execute("INSERT INTO transaction_chain_concerns (transaction_chain_id, class_name, row_id) "
                    "VALUES (%s, 'IntegrityCheck', %s)", (chain.id, check_id))
        builder = _Params(cur, chain, check_id)
        for node in nodes:
            if storage:
                chain.append(6005, node["server_id"], None, user_id,
                             lambda n=node: builder.storage(n["server_id"]))
            if vps and node["server_type"] == "node":
                chain.append(6006, node["server_id"], None, user_id,
                             lambda n=node: builder.vpses(n["server_id"]))
        finalize_node = chain.last_node_id or _first_available_node(cur)
        chain.append(6001, finalize_node, None, user_id, lambda: {"integrity_check_id": check_id})
        chain.queue()
        conn.commit()
        return check_id
    except Exception:
        conn.rollback()
        raise
    finally:
        cur.close()


def _first_available_node(cur) -> int:
    """Node.first_available: the server that reported its status last."""
    rows = _rows(cur, "SELECT server_id FROM servers_status ORDER BY created_at DESC LIMIT 1")
    if not rows:
        raise LookupError("no node has reported its status (servers_status is empty)")
    return rows[0]["server_id"]


class _Params:
    """Transactions::IntegrityCheck::Storage / Vps params, with register_object!."""

    def __init__(self, cur, chain: Chain, check_id: int):
        self.cur, self.chain, self.check_id = cur, chain, check_id

    def register(self, class_name: str, row_id, parent: dict | None, node_id: int) -> dict:
        if parent is None:
            ancestry, depth = None, 0
        else:
            ancestry = (f"{parent['ancestry']}/{parent['integrity_object_id']}" if parent["ancestry"]
                        else str(parent["integrity_object_id"]))
            depth = ancestry.count("/") + 1
        now = utc_now()
        self.cur.execute(
            "INSERT INTO integrity_objects (integrity_check_id, node_id, class_name, row_id, "
            "ancestry, ancestry_depth, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (self.check_id, node_id, class_name, row_id, ancestry, depth, now, now))
        return {"integrity_object_id": self.cur.lastrowid, "ancestry": ancestry}

    def serialize(self, rows, class_name, parent, node_id, fn) -> list[dict]:
        out = []
        for row in rows:
            obj = self.register(class_name, row["id"], parent, node_id)
            item = fn(row, obj, node_id)
            item.update(obj)
            out.append(item)
        return out

    def lock(self, resource: str, row_id: int) -> None:
        try:
            self.chain.lock(resource, row_id)
        except Exception as e:
            if "Duplicate entry" in str(e):
                raise ResourceLocked(f"{resource} {row_id} is locked") from e
            raise

    # storage ------------------------------------------------------------------------------
    def storage(self, node_id: int) -> dict:
        pools = _rows(self.cur, "SELECT * FROM pools WHERE node_id = %s ORDER BY id", (node_id,))
        return {"pools": self.serialize(pools, "Pool", None, node_id, self.pool),
                "integrity_check_id": self.check_id}

    def properties(self, where: str, value, obj, node_id) -> list[dict]:
        rows = _rows(self.cur, f"SELECT * FROM dataset_properties WHERE {where} = %s ORDER BY id",
                     (value,))
        return self.serialize(rows, "DatasetProperty", obj, node_id, lambda p, o, n: {
            "name": p["name"], "value": yaml_load(p["value"]), "inherited": bool(p["inherited"])})

    def pool(self, pool, obj, node_id) -> dict:
        has_downloads = bool(_rows(self.cur, "SHOW TABLES LIKE 'snapshot_downloads'"))
        downloads = _rows(self.cur, "SELECT * FROM snapshot_downloads WHERE pool_id = %s ORDER BY id",
                          (pool["id"],)) if has_downloads else []
        roots = _rows(self.cur, """
            SELECT dip.*, d.full_name, d.id AS dataset_id FROM dataset_in_pools dip
            INNER JOIN datasets d ON d.id = dip.dataset_id
            WHERE dip.pool_id = %s AND d.ancestry IS NULL ORDER BY dip.id""", (pool["id"],))
        return {
            "filesystem": pool["filesystem"],
            "properties": self.properties("pool_id", pool["id"], obj, node_id),
            "downloads": self.serialize(downloads, "SnapshotDownload", obj, node_id,
                                        lambda d, o, n: {"secret_key": d["secret_key"],
                                                         "file_name": d["file_name"]}),
            "mount_clones": self.mount_clones(pool, obj, node_id),
            "datasets": self.serialize(roots, "DatasetInPool", obj, node_id,
                                       lambda d, o, n: self.dataset(d, o, n, pool)),
        }

    def mount_clones(self, pool, obj, node_id) -> list[dict]:
        rows = _rows(self.cur, """
            SELECT sip.id, s.id AS snapshot_id, s.name, d.full_name FROM snapshot_in_pools sip
            INNER JOIN dataset_in_pools dip ON dip.id = sip.dataset_in_pool_id
            INNER JOIN snapshots s ON s.id = sip.snapshot_id
            INNER JOIN datasets d ON d.id = s.dataset_id
            INNER JOIN mounts m ON m.snapshot_in_pool_id = sip.id
            INNER JOIN vps v ON v.vps_id = m.vps_id
            WHERE dip.pool_id = %s AND v.vps_server != %s""", (pool["id"], pool["node_id"]))
        return self.serialize(rows, "SnapshotInPool", obj, node_id, lambda s, o, n: {
            "id": s["snapshot_id"], "dataset": s["full_name"], "name": s["name"]})

    def dataset(self, dip, obj, node_id, pool) -> dict:
        self.lock("DatasetInPool", dip["id"])
        trees = _rows(self.cur, "SELECT * FROM dataset_trees WHERE dataset_in_pool_id = %s ORDER BY id",
                      (dip["id"],))
        snapshots = [] if pool["role"] == 2 else _rows(self.cur, """
            SELECT sip.id, sip.reference_count, s.name FROM snapshot_in_pools sip
            INNER JOIN snapshots s ON s.id = sip.snapshot_id
            WHERE sip.dataset_in_pool_id = %s ORDER BY sip.id""", (dip["id"],))
        children = _rows(self.cur, """
            SELECT dip.*, d.full_name FROM dataset_in_pools dip
            INNER JOIN datasets d ON d.id = dip.dataset_id
            WHERE dip.pool_id = %s AND (d.ancestry = %s OR d.ancestry LIKE %s) ORDER BY dip.id""",
            (pool["id"], str(dip["dataset_id"]), f"%/{dip['dataset_id']}"))
        return {
            "name": dip["full_name"],
            "properties": self.properties("dataset_in_pool_id", dip["id"], obj, node_id),
            "trees": self.serialize(trees, "DatasetTree", obj, node_id, self.tree),
            "snapshots": self.serialize(snapshots, "SnapshotInPool", obj, node_id, lambda s, o, n: {
                "name": s["name"], "reference_count": s["reference_count"]}),
            "datasets": self.serialize(children, "DatasetInPool", obj, node_id,
                                       lambda d, o, n: self.dataset(d, o, n, pool)),
        }

    def tree(self, tree, obj, node_id) -> dict:
        branches = _rows(self.cur, "SELECT * FROM branches WHERE dataset_tree_id = %s ORDER BY id",
                         (tree["id"],))
        return {"name": f"tree.{tree['index']}",
                "branches": self.serialize(branches, "Branch", obj, node_id, self.branch)}

    def branch(self, branch, obj, node_id) -> dict:
        snaps = _rows(self.cur, """
            SELECT sipb.id, sipb.snapshot_in_pool_in_branch_id, s.name, sip.reference_count
            FROM snapshot_in_pool_in_branches sipb
            INNER JOIN snapshot_in_pools sip ON sip.id = sipb.snapshot_in_pool_id
            INNER JOIN snapshots s ON s.id = sip.snapshot_id
            WHERE sipb.branch_id = %s ORDER BY sipb.id""", (branch["id"],))
        # Clones and origins of branches (rollbacks) do not exist in a freshly migrated world;
        # they are listed empty rather than guessed.
        return {"name": f"branch-{branch['name']}.{branch['index']}",
                "snapshots": self.serialize(snaps, "SnapshotInPoolInBranch", obj, node_id,
                                            lambda s, o, n: {"name": s["name"], "clones": [],
                                                             "origin": None,
                                                             "reference_count": s["reference_count"]})}

    # vps ----------------------------------------------------------------------------------
    def vpses(self, node_id: int) -> dict:
        vpses = _rows(self.cur, """
            SELECT v.vps_id AS id, v.vps_hostname, COALESCE(st.vps_up, 0) AS up, t.templ_name
            FROM vps v
            LEFT JOIN vps_status st ON st.vps_id = v.vps_id
            LEFT JOIN cfg_templates t ON t.templ_id = v.vps_template
            WHERE v.vps_server = %s AND v.object_state != 3 ORDER BY v.vps_id""", (node_id,))
        return {"vpses": self.serialize(vpses, "Vps", None, node_id, self.vps),
                "integrity_check_id": self.check_id}

    def resource(self, vps_id: int, name: str):
        rows = _rows(self.cur, """
            SELECT u.value FROM cluster_resource_uses u
            INNER JOIN user_cluster_resources ucr ON ucr.id = u.user_cluster_resource_id
            INNER JOIN cluster_resources r ON r.id = ucr.cluster_resource_id
            WHERE u.class_name = 'Vps' AND u.row_id = %s AND r.name = %s""", (vps_id, name))
        return int(rows[0]["value"]) if rows else None

    def vps(self, vps, obj, node_id) -> dict:
        self.lock("Vps", vps["id"])
        ips = _rows(self.cur, "SELECT ip_id AS id, ip_addr, ip_v FROM vps_ip WHERE vps_id = %s "
                              "ORDER BY ip_id", (vps["id"],))

        def ip(row, o, n):
            self.lock("IpAddress", row["id"])
            return {"addr": row["ip_addr"], "version": row["ip_v"]}

        return {"vps_id": vps["id"], "status": bool(vps["up"]), "hostname": vps["vps_hostname"],
                "os_template": vps["templ_name"], "memory": self.resource(vps["id"], "memory"),
                "swap": self.resource(vps["id"], "swap"), "cpu": self.resource(vps["id"], "cpu"),
                "ip_addresses": self.serialize(ips, "IpAddress", obj, node_id, ip)}


# -- the daemon side (6005, 6006, 6001) --------------------------------------------------

class _Facts:
    """Utils::Integrity: state_fact and create_integrity_object."""

    def __init__(self, daemon, check_id: int):
        self.daemon, self.check_id, self.now = daemon, check_id, utc_now()

    def fact(self, obj, name, expected, actual, severity="normal", message=None) -> None:
        # Ruby's ==: true is not 1
        ok = expected == actual and isinstance(expected, bool) == isinstance(actual, bool)
        object_id = obj if isinstance(obj, int) else obj["integrity_object_id"]
        self.daemon.execute_sql(
            "INSERT INTO integrity_facts (integrity_object_id, name, expected_value, actual_value, "
            "status, severity, message, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (object_id, name, yaml_dump(expected)[:255], yaml_dump(actual)[:255], 1 if ok else 0,
             SEVERITY[severity], None if ok else (message or "")[:1000], utc_now()))

    def new_object(self, parent, class_name: str) -> int:
        ancestry = parent and (parent.get("ancestry") or str(parent["integrity_object_id"]))
        depth = (len(parent["ancestry"].split("/")) if parent.get("ancestry") else 1) if parent else 0
        return self.daemon.execute_sql(
            "INSERT INTO integrity_objects (integrity_check_id, node_id, class_name, ancestry, "
            "ancestry_depth, created_at) VALUES (%s, %s, %s, %s, %s, %s)",
            (self.check_id, self.daemon.server_id, class_name, ancestry, depth, utc_now()))


def _clean_value(key: str, value: str):
    if value in ("-", "none"):
        return None
    if key in ("quota", "refquota"):
        return int(value) // 1024 // 1024
    if key == "clones":
        return value.split(",") if value else []
    if re.fullmatch(r"\d+", value):
        return int(value)
    if value == "on":
        return True
    if value == "off":
        return False
    return value


def parse_pool(daemon, filesystem: str) -> list[dict]:
    """StorageCheck#parse_pool: `zfs get` output as objects named relative to the pool."""
    output = daemon.sh(f"zfs get -r -t all -Hp -o name,property,value,source {ZFS_PROPERTIES} "
                       f"{filesystem}")
    objects, current = [], None
    for line in output.splitlines():
        parts = line.split("\t")
        if len(parts) < 4:
            continue
        name = parts[0].replace(filesystem, "", 1) if filesystem in parts[0] else ""
        name = name[1:] if name.startswith("/") else name
        if current is None or current["name"] != name:
            current = {"name": name}
            objects.append(current)
        current[parts[1]] = {"value": _clean_value(parts[1], parts[2]),
                             "inherited": parts[3].startswith("inherited") or parts[3] == "default"}
    return objects


class _StorageCheck:
    def __init__(self, daemon, params: dict):
        self.facts = _Facts(daemon, params["integrity_check_id"])
        self.daemon, self.params = daemon, params

    def take(self, name: str):
        for i, o in enumerate(self.objects):
            if o["name"] == name:
                return self.objects.pop(i)
        return None

    def full(self, name: str) -> str:
        return f"{self.pool['filesystem']}/{name}"

    def run(self) -> None:
        for pool in self.params["pools"]:
            self.pool = pool
            try:
                self.objects = parse_pool(self.daemon, pool["filesystem"])
                exists, msg = True, None
            except CommandFailed as e:
                exists, msg = False, str(e)
            self.facts.fact(pool, "exists", True, exists, "high", msg)
            if not exists:
                continue
            real_pool = self.take("")
            for p in pool["properties"]:
                self.property(real_pool, p)
            special = {}
            for name in ("vpsadmin", "vpsadmin/download", "vpsadmin/mount"):
                special[name] = self.take(name)
                self.facts.fact(pool, name, True, special[name] is not None, "high",
                                f"dataset '{self.full(name)}' does not exist")
            if special["vpsadmin/download"] is not None:
                self.downloads(special["vpsadmin/download"]["mountpoint"]["value"], pool["downloads"])
            for clone in pool["mount_clones"]:
                name = f"vpsadmin/mount/{clone['id']}.snapshot"
                real = self.take(name)
                self.facts.fact(clone, "exists", True, real is not None, "high",
                                f"mount clone '{name}' of '{self.full(clone['dataset'])}@{clone['name']}' "
                                "does not exist")
            for ds in pool["datasets"]:
                self.dataset(ds)
            self.stray()

    def downloads(self, mountpoint: str, downloads: list[dict]) -> None:
        """check_download for every snapshot download of the pool, then every other entry of
        the download dataset (Dir.glob: dot entries not included) as stray, low severity."""
        directory = self.daemon.node_root / str(mountpoint).lstrip("/")
        entries = sorted(p.name for p in directory.glob("*"))
        for dl in downloads:
            found = dl["secret_key"] in entries
            self.facts.fact(dl, "dir_exists", True, found, "normal",
                            f"download '{dl['secret_key']}' does not exist")
            file_exists = (directory / dl["secret_key"] / dl["file_name"]).exists()
            self.facts.fact(dl, "file_exists", True, found and file_exists, "normal",
                            f"file '{dl['file_name']}' does not exist")
            if found:
                entries.remove(dl["secret_key"])
        for entry in entries:
            self.facts.fact(self.facts.new_object(self.pool, "SnapshotDownload"), "exists", False, True,
                            "low", f"download '{entry}' exists while it shouldn't")

    def property(self, real, p) -> None:
        if real is None or p["name"] not in real:
            return  # not all properties are supported everywhere
        real_p = real[p["name"]]
        self.facts.fact(p, "is", p["value"], real_p["value"], "normal",
                        f"{p['name']} is {_ruby_s(real_p['value'])}")
        self.facts.fact(p, "inherited", p["inherited"], real_p["inherited"], "normal",
                        "inheritance does not match")

    def dataset(self, ds) -> None:
        real = self.take(ds["name"])
        self.facts.fact(ds, "exists", True, real is not None, "high",
                        f"dataset '{self.full(ds['name'])}' does not exist")
        if real is None:
            return
        for p in ds["properties"]:
            self.property(real, p)
        for snap in ds["snapshots"]:
            real_snap = self.take(f"{ds['name']}@{snap['name']}")
            self.facts.fact(snap, "exists", True, real_snap is not None, "high",
                            f"snapshot '{self.full(ds['name'])}@{snap['name']}' does not exist")
            if real_snap is not None:
                count = len((real_snap.get("clones") or {}).get("value") or [])
                self.facts.fact(snap, "reference_count", snap["reference_count"], count, "high",
                                f"reference_count of '{self.full(ds['name'])}@{snap['name']}' is {count}")
        for tree in ds["trees"]:
            tree_name = f"{ds['name']}/{tree['name']}"
            real_tree = self.take(tree_name)
            self.facts.fact(tree, "exists", True, real_tree is not None, "high",
                            f"dataset tree '{self.full(tree_name)}' does not exist")
            if real_tree is None:
                continue
            for branch in tree["branches"]:
                branch_name = f"{tree_name}/{branch['name']}"
                real_branch = self.take(branch_name)
                self.facts.fact(branch, "exists", True, real_branch is not None, "high",
                                f"dataset branch '{self.full(branch_name)}' does not exist")
                if real_branch is None:
                    continue
                for snap in branch["snapshots"]:
                    real_snap = self.take(f"{branch_name}@{snap['name']}")
                    self.facts.fact(snap, "exists", True, real_snap is not None, "high",
                                    f"snapshot '{self.full(branch_name)}@{snap['name']}' does not exist")
                    clones = list((real_snap or {}).get("clones", {}).get("value") or [])
                    for c in clones:
                        self.facts.fact(self.facts.new_object(snap, "Branch"), "exists", False, True,
                                        "high", f"unexpected clone '{c}' of "
                                        f"'{self.full(branch_name)}@{snap['name']}'")
        for sub in ds["datasets"]:
            self.dataset(sub)

    def stray(self) -> None:
        for o in self.objects:
            if o["name"].startswith("@") or o["name"].startswith("vpsadmin/"):
                parent = self.pool
            else:
                parent = self.object_parent(o)
            kind = (o.get("type") or {}).get("value")
            self.facts.fact(self.facts.new_object(parent, "DatasetInPool" if kind == "filesystem"
                                                  else "SnapshotInPool"),
                            "exists", False, True, "normal", f"object '{o['name']}' should not exist")

    def object_parent(self, o) -> dict:
        parts = o["name"].split("@")[0].split("/")
        parent, search = self.pool, "datasets"
        for name in parts:
            if re.search(r"tree\.\d+", name):
                search = "trees"
            elif name.startswith("branch-"):
                search = "branches"
            if not parent.get(search):
                break
            found = next((d for d in parent[search] if d["name"].split("/")[-1] == name), None)
            if found is None:
                break
            parent = found
        return parent


def _ruby_s(value) -> str:
    """Ruby's string interpolation of a value (nil is empty)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def check_storage(daemon, params: dict) -> None:
    with daemon.transaction():
        _StorageCheck(daemon, params).run()


def check_vps(daemon, params: dict) -> None:
    facts = _Facts(daemon, params["integrity_check_id"])
    real_vpses = json.loads(daemon.sh(f"vzlist -aj -o {VZLIST_FIELDS}"))
    with daemon.transaction():
        for vps in params["vpses"]:
            real = next((r for r in real_vpses if r["veid"] == vps["vps_id"]), None)
            facts.fact(vps, "exists", True, real is not None, "high",
                       f"VPS {vps['vps_id']} does not exist")
            if real is None:
                continue
            real_vpses.remove(real)
            _check_one_vps(daemon, facts, vps, real)
        for real in real_vpses:
            facts.fact(facts.new_object(None, "Vps"), "exists", False, True, "high",
                       f"VPS {real['veid']} should not exist")


def _check_one_vps(daemon, facts: _Facts, vps: dict, real: dict) -> None:
    veid = vps["vps_id"]
    ve_private = daemon.ve_private(veid)
    status = {"running": True, "stopped": False}.get(real["status"])
    facts.fact(vps, "status", vps["status"], status, "normal", f"Status is '{real['status']}'")
    # upstream compares the expected *status* with onboot
    facts.fact(vps, "onboot", vps["status"], real.get("onboot"), "normal",
               f"Onboot is '{_ruby_s(real.get('onboot'))}'")
    facts.fact(vps, "private", ve_private, real.get("private"), "high",
               f"Private is '{_ruby_s(real.get('private'))}'")
    facts.fact(vps, "root", f"/vz/root/{veid}", real.get("root"), "high",
               f"Root is '{_ruby_s(real.get('root'))}'")
    facts.fact(vps, "hostname", vps["hostname"], real.get("hostname"), "low",
               f"Hostname is '{_ruby_s(real.get('hostname'))}'")
    facts.fact(vps, "os_template", vps["os_template"], real.get("ostemplate"), "normal",
               f"OS template is '{_ruby_s(real.get('ostemplate'))}'")
    memory = real["physpages"]["limit"] * 4 // 1024
    facts.fact(vps, "memory", vps["memory"], memory, "normal", f"Memory (physpages) is '{memory}'")
    swap = real["swappages"]["limit"] * 4 // 1024
    facts.fact(vps, "swap", vps["swap"], swap, "normal", f"Swap (swappages) is '{swap}'")
    facts.fact(vps, "cpu", vps["cpu"], real.get("cpus"), "normal", f"CPU is '{_ruby_s(real.get('cpus'))}'")
    cpu_limit = vps["cpu"] * 100 if vps["cpu"] is not None else None
    facts.fact(vps, "cpu", cpu_limit, real.get("cpulimit"), "normal",
               f"CPU limit is '{_ruby_s(real.get('cpulimit'))}'")
    real_ips = list(real.get("ip") or [])
    for ip in vps["ip_addresses"]:
        present = ip["addr"] in real_ips
        facts.fact(ip, "exists", True, present, "high", f"IP address '{ip['addr']}' is not present")
        if present:
            real_ips.remove(ip["addr"])
    for addr in real_ips:
        facts.fact(facts.new_object(vps, "IpAddress"), "exists", False, True, "normal",
                   f"IP address '{addr}' should not be present")


def finalize(daemon, params: dict) -> None:
    """6001: object and check statuses and counters (upstream SQL, quirks included)."""
    check_id, now = params["integrity_check_id"], utc_now()
    with daemon.transaction():
        daemon.execute_sql("""
            UPDATE integrity_objects o SET
              status = IF((SELECT COUNT(*) FROM integrity_facts f
                           WHERE f.integrity_object_id = o.id AND severity > 0) > 0, 2, 1),
              checked_facts = (SELECT COUNT(*) FROM integrity_facts WHERE integrity_object_id = o.id),
              true_facts = (SELECT COUNT(*) FROM integrity_facts
                            WHERE integrity_object_id = o.id AND status = 1),
              false_facts = (SELECT COUNT(*) FROM integrity_facts
                             WHERE integrity_object_id = o.id AND status = 0),
              updated_at = %s
            WHERE integrity_check_id = %s""", (now, check_id))
        failed = daemon.rows("""
            SELECT COUNT(*) AS n FROM integrity_facts f
            INNER JOIN integrity_objects o ON f.integrity_object_id = o.id
            WHERE o.integrity_check_id = %s AND f.status = 0 AND f.severity > 0""", (check_id,))[0]["n"]
        facts_of = ("FROM integrity_facts f INNER JOIN integrity_objects o "
                    "ON f.integrity_object_id = o.id WHERE o.integrity_check_id = %s")
        daemon.execute_sql(f"""
            UPDATE integrity_checks SET status = %s,
              checked_objects = (SELECT COUNT(*) FROM integrity_objects WHERE integrity_check_id = %s),
              integral_objects = (SELECT COUNT(*) FROM integrity_objects
                                  WHERE integrity_check_id = %s AND status = 1),
              broken_objects = (SELECT COUNT(*) FROM integrity_objects
                                WHERE integrity_check_id = %s AND status = 2),
              checked_facts = (SELECT COUNT(*) {facts_of}),
              true_facts = (SELECT COUNT(*) {facts_of} AND f.status = 1),
              false_facts = (SELECT COUNT(*) {facts_of} AND f.status = 0),
              updated_at = %s, finished_at = %s
            WHERE id = %s""",
            (2 if failed else 1, check_id, check_id, check_id, check_id, check_id, check_id,
             now, now, check_id))
