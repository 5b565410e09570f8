"""The ZFS pools of the v1.22 world, laid out from the seeded database (after world.py).

- every hypervisor: pool `vz`, `vz/private` and `vz/private/<veid>` per VPS on it (the
  datasets adopt the directories world.py already wrote) with the refquota its disk config
  set; sharenfs left unset there;
- every storage root's node: the pool, the root dataset with sharenfs = share_options, and
  one dataset per export (`default` = 'no') with the export's quota;
- the pools' file systems and the top-level NAS datasets carry POOL_PROPERTIES, the other
  datasets of hypervisor and NAS pools their quota and refquota;
- NAS exports hold real files (hidden ones, a subdirectory tree, names with a space and a
  newline), deterministic per export id;
- backup exports get one snapshot per vps_backups row, oldest first, named as vpsAdmind 1.22
  named them (`backup-%Y-%m-%dT%H:%M:%S`, Europe/Prague local time of the timestamp), with
  files that change between snapshots.

Everything goes through `lab.core.tools.zfs.Zfs` in one batch per node: one state.json write.
"""

from __future__ import annotations

import random
import re
from datetime import datetime
from zoneinfo import ZoneInfo

from lab.core.config import LabConfig
from lab.core.nodes import write_file
from lab.core.tools.zfs import Zfs
from lab.core.topology import HOSTS

PRAGUE = ZoneInfo("Europe/Prague")
# vpsAdmin 2.0's add_storage migration records, for every pool's file system and every
# top-level NAS dataset, each property of its registrator as set there (inherited = false) with
# its default (API 5d85ee934 config/dataset_properties.rb), and quota/refquota as set on every
# dataset; the 2.0 integrity check compares value and inheritance with `zfs get`. The world's
# file systems carry them set, so that the check of a correct upgrade finds them (an unset
# quota is a "default" one to `zfs get`, an explicit none a "local" one). Not sharenfs: its
# default '' is no value ZFS takes, and the storage roots keep their share options.
POOL_PROPERTIES = {"atime": "off", "compression": "on", "recordsize": "131072", "relatime": "off",
                   "sync": "standard", "quota": "none", "refquota": "none"}
BACKUP_SNAPSHOT_FORMAT = "backup-%Y-%m-%dT%H:%M:%S"


def backup_snapshot_name(timestamp: int) -> str:
    """The snapshot vpsAdmind 1.22 made for a vps_backups row."""
    return datetime.fromtimestamp(timestamp, PRAGUE).strftime(BACKUP_SNAPSHOT_FORMAT)


def _rows(conn, sql: str, params=None) -> list[dict]:
    cur = conn.cursor()
    cur.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _node_root(cfg: LabConfig, server_id: int):
    host = next(h for h in HOSTS if h.server and h.server["server_id"] == server_id)
    return cfg.node_root(host.name)


def lay_out(cfg: LabConfig, conn) -> None:
    for server in _rows(conn, "SELECT server_id FROM servers WHERE server_type = 'node' "
                              "ORDER BY server_id"):
        _hypervisor_pool(Zfs(_node_root(cfg, server["server_id"])), server["server_id"], conn)
    for root in _rows(conn, "SELECT * FROM storage_root ORDER BY id"):
        _storage_root(Zfs(_node_root(cfg, root["node_id"])), root, conn)


def _hypervisor_pool(z: Zfs, server_id: int, conn) -> None:
    veids = [r["vps_id"] for r in _rows(
        conn, "SELECT vps_id FROM vps WHERE vps_server = %s ORDER BY vps_id", (server_id,))]
    with z.batch():
        z.create_pool("vz")
        z.create("vz/private", props=POOL_PROPERTIES)
        for veid in veids:
            z.create(f"vz/private/{veid}", props={"quota": "none", "refquota": _vps_refquota(z.root, veid)})


def _vps_refquota(node_root, veid: int) -> str:
    """What vpsAdmind 1.22's applyconfig sets on a ZFS node after `vzctl set --applyconfig`
    (handlers/zfsvps.rb): refquota = the DISKSPACE limit vzctl saved (1 KiB blocks)."""
    conf = (node_root / f"etc/vz/conf/{veid}.conf").read_text()
    found = re.search(r'^DISKSPACE="\d+:(\d+)"', conf, re.MULTILINE)
    return f"{int(found.group(1)) * 1024}" if found else "none"


def _storage_root(z: Zfs, root: dict, conn) -> None:
    exports = _rows(conn, "SELECT id, dataset, quota FROM storage_export "
                          "WHERE root_id = %s AND `default` = 'no' ORDER BY dataset",
                    (root["id"],))
    backups: dict[int, list[int]] = {}
    if root["storage_layout"] == "per_vps":
        for row in _rows(conn, "SELECT vps_id, timestamp FROM vps_backups "
                               "ORDER BY vps_id, timestamp"):
            backups.setdefault(int(row["vps_id"]), []).append(int(row["timestamp"]))
    base = root["root_dataset"]
    with z.batch():
        pool = base.split("/", 1)[0]
        if not z.exists(pool):
            z.create_pool(pool)
        z.create(base, parents=True, props={**POOL_PROPERTIES, "sharenfs": root["share_options"]})
        for export in exports:
            name = f"{base}/{export['dataset']}"
            quota = str(export["quota"]) if export["quota"] else "none"
            if root["storage_layout"] != "per_member":  # backups: 2.0 records no properties
                props = {"quota": quota} if export["quota"] else {}
            elif "/" not in export["dataset"]:
                props = {**POOL_PROPERTIES, "quota": quota}
            else:
                props = {"quota": quota, "refquota": "none"}
            z.create(name, parents=True, props=props)
            if root["storage_layout"] == "per_member":
                _nas_files(z, name, export["id"], private=export["dataset"].endswith("/private"))
            else:
                _backup_snapshots(z, name, int(export["dataset"]),
                                  backups.get(int(export["dataset"]), []))


def _nas_files(z: Zfs, name: str, export_id: int, private: bool) -> None:
    """A member's NAS data: what a naive copy (no dotfiles, no odd names) would lose."""
    rng = random.Random(export_id)
    top = z.path(name)
    if private:
        write_file(top / "notes.txt", f"private notes of export {export_id}\n")
        write_file(top / ".secret", f"token-{rng.getrandbits(64):016x}\n", 0o600)
        write_file(top / "keys/id_backup", f"key {rng.getrandbits(128):032x}\n", 0o600)
        return
    write_file(top / "README.txt", f"NAS export {export_id}\n")
    write_file(top / ".profile", "export PATH=$HOME/bin:$PATH\n")
    write_file(top / ".config/app.ini", f"[app]\nid = {export_id}\nseed = {rng.random()}\n")
    for i in range(rng.randint(2, 4)):
        write_file(top / f"data/report-{i}.csv",
                   "day,bytes\n" + "".join(f"{d},{rng.randint(0, 10**9)}\n" for d in range(5)))
    write_file(top / "projects/web/index.html", f"<h1>member site {export_id}</h1>\n")
    write_file(top / "projects/web/css/site.css", "body { margin: 0 }\n")
    write_file(top / "projects/web/.htaccess", "Options -Indexes\n")
    write_file(top / "photo album 2016/trip to Brno.txt", "a name with spaces\n")
    write_file(top / "line\nbreak.txt", "a name with a newline in it\n")
    (top / "empty dir").mkdir(exist_ok=True)
    (top / "latest-report").symlink_to("data/report-0.csv")


def _backup_snapshots(z: Zfs, name: str, vps_id: int, timestamps: list[int]) -> None:
    """A VPS's backup dataset as vpsAdmind 1.22 left it: rsync'd files, one snapshot a day."""
    top = z.path(name)
    write_file(top / "etc/hostname", f"vps{vps_id}\n")
    for n, ts in enumerate(timestamps):
        snap = backup_snapshot_name(ts)
        write_file(top / "var/log/backup-time", f"{snap}\n")
        write_file(top / "var/log/messages",
                   "".join(f"day {d} of vps {vps_id}\n" for d in range(n + 1)))
        z.snapshot(f"{name}@{snap}", creation=ts)
