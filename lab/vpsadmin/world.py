"""The files of the v1.22 world on the lab's nodes, laid out from the seeded database.

The database is the source of truth (lab/vpsadmin/v1_22/seed.py writes it); this
module gives every node what a real v1.22 cluster had on disk so the node tools and daemons
agree with it: container configs and states, the mount table and the 1.22 mount scripts on
the hypervisors, vpsAdmind's init script and config on every vpsAdmin server, the cluster
crontab and the web interface config on the API/web host, client credentials on the DB host.
"""

from __future__ import annotations

from pathlib import Path

from lab.core.config import LabConfig
from lab.core.nodes import write_file
from lab.core.topology import HOSTS, host_with_role
from lab.vpsadmin import checkouts
from lab.vpsadmin import pools as zfs_pools
from lab.vpsadmin.vpsadmind_v1_22 import mount_scripts

# The cluster crontab of a v1.22 installation (jobs named by the runbook's "Cron jobs").
CLUSTER_CRONTAB = """\
# vpsAdmin cluster jobs
MAILTO=root
*/5 * * * * php /var/www/vpsadmin/cron_mailer.php >> /var/log/vpsadmin/cron_mailer.log 2>&1
0 3 * * * php /var/www/vpsadmin/cron_delete.php >> /var/log/vpsadmin/cron_delete.log 2>&1
30 3 * * * php /var/www/vpsadmin/cron_nonpayers.php >> /var/log/vpsadmin/cron_nonpayers.log 2>&1
0 1 * * * ruby /opt/vpsadmind/backup.rb >> /var/log/vpsadmin/backup.log 2>&1
*/10 * * * * ruby /opt/vpsadmind/bin/savetransfers.rb
0 7 * * * ruby /opt/vpsadmind/daily_report.rb
"""



def site_crontab(cfg: LabConfig) -> str:
    """A site's own job in the same crontab (not the runbook's: the upgrade leaves it alone),
    with the database password on its command line, as such jobs often have it."""
    return (f"# site jobs\n15 2 * * * mysqldump -u{cfg.app_user} -p{cfg.app_password} {cfg.vpsadmin_db} "
            "| gzip > /root/nightly.sql.gz\n")


VPSADMIND_INIT = """\
#!/bin/bash
# vpsadmind        vpsAdmin node daemon
# chkconfig: 2345 99 01
# lab: `service vpsadmind ...` keeps the state the lab's vpsAdmind honours
exec service vpsadmind "$@"
"""

DB_BACKUP_DIR = "/var/backups/vpsadmin"

# `vzctl set --applyconfig <name> --save` (how vpsAdmind 1.22 applies a VPS's configs) saves
# sizes as numbers in vzctl's units: pages for the *PAGES beancounters, 1 KiB blocks for
# DISKSPACE.
VZCTL_UNITS = {"PHYSPAGES": 4096, "SWAPPAGES": 4096, "PRIVVMPAGES": 4096, "DISKSPACE": 1024}
SIZE_SUFFIXES = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _rows(conn, sql: str, params=None) -> list[dict]:
    cur = conn.cursor()
    cur.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=False)) for row in cur.fetchall()]


def lay_out(cfg: LabConfig, conn, pools: bool = True) -> None:
    """Write every node's v1.22 files (the ZFS pools only with `pools`); `conn` is a utf8
    MySQLdb connection to the world DB."""
    for host in HOSTS:
        if host.server:
            _vpsadmind_files(cfg, host, conn)
    for server in _rows(conn, "SELECT server_id FROM servers WHERE server_type = 'node'"):
        node = next(h for h in HOSTS if h.server and h.server["server_id"] == server["server_id"])
        _hypervisor_files(cfg.node_root(node.name), server["server_id"], conn)
    api = cfg.node_root(host_with_role("api").name)
    write_file(api / "var/spool/cron/root", CLUSTER_CRONTAB + site_crontab(cfg), 0o600)
    write_file(api / "var/www/vpsadmin/config.php",
           "<?php\ndefine('DB_HOST', 'db');\ndefine('DB_USER', 'vpsadmin');\n"
           f"define('DB_NAME', '{cfg.vpsadmin_db}');\ndefine('WWW_ROOT', '/var/www/vpsadmin/');\n")
    (api / "var/log/vpsadmin").mkdir(parents=True, exist_ok=True)
    db = cfg.node_root(host_with_role("db").name)
    write_file(db / "root/.my.cnf",
           f"[client]\nhost={cfg.mysql_host}\nport={cfg.mysql_port}\nuser={cfg.app_user}\n"
           f"password={cfg.app_password}\n", 0o600)
    (db / DB_BACKUP_DIR.lstrip("/")).mkdir(parents=True, exist_ok=True)
    checkouts.lay_out(cfg, conn)  # git checkouts of 1.22 and their 2.0 remotes
    # Last: the ZFS datasets adopt the directories written above (vz/private/<veid>).
    if pools:
        zfs_pools.lay_out(cfg, conn)


def _vpsadmind_files(cfg: LabConfig, host, conn) -> None:
    root = cfg.node_root(host.name)
    write_file(root / "etc/init.d/vpsadmind", VPSADMIND_INIT, 0o755)
    write_file(root / "var/lib/lab/services/vpsadmind", "running\n")
    write_file(root / "opt/vpsadmind/VERSION", "1.22.0\n")
    write_file(root / "opt/vpsadmind/vpsadmind.rb", "#!/usr/bin/env ruby\n# vpsAdmind 1.22 (lab)\n", 0o755)
    # The 1.22 layout of /etc/vpsadmin/vpsadmind.yml (threads, handlers, backuper; no queues).
    write_file(root / "etc/vpsadmin/vpsadmind.yml",
           f":db:\n  :host: {cfg.mysql_host}:{cfg.mysql_port}\n  :user: {cfg.app_user}\n"
           f"  :pass: '{cfg.app_password}'\n  :name: {cfg.vpsadmin_db}\n"
           f":vpsadmin:\n  :server_id: {host.server['server_id']}\n  :domain: vpsfree.cz\n"
           "  :threads: 6\n  :check_interval: 1\n  :status_interval: 30\n"
           ":backuper:\n  :lock_interval: 30\n  :mountpoint: /mnt/vpsadmin-backup\n", 0o600)


def _hypervisor_files(root: Path, server_id: int, conn) -> None:
    write_file(root / "etc/vz/vz.conf", 'VE_ROOT=/vz/root/$VEID\nVE_PRIVATE=/vz/private/$VEID\n')
    vpses = _rows(conn, """
        SELECT v.vps_id, v.vps_hostname, COALESCE(s.vps_up, 0) AS up,
               t.templ_name, GROUP_CONCAT(ip.ip_addr ORDER BY ip.ip_id SEPARATOR ' ') AS ips
        FROM vps v
        LEFT JOIN vps_status s ON s.vps_id = v.vps_id
        LEFT JOIN cfg_templates t ON t.templ_id = v.vps_template
        LEFT JOIN vps_ip ip ON ip.vps_id = v.vps_id
        WHERE v.vps_server = %s GROUP BY v.vps_id""", (server_id,))
    configs = applied_configs(conn, server_id)
    for vps in vpses:
        veid = vps["vps_id"]
        # vpsAdmind 1.22 sets ONBOOT with every start ("yes") and stop ("no") it makes
        # (handlers/vps.rb), so it follows the VPS's state.
        write_file(root / f"etc/vz/conf/{veid}.conf",
               f'ONBOOT="{"yes" if vps["up"] else "no"}"\n'
               f'VE_ROOT="/vz/root/$VEID"\nVE_PRIVATE="/vz/private/$VEID"\n'
               f'OSTEMPLATE="{vps["templ_name"] or "scientific-6-x86_64"}"\n'
               f'HOSTNAME="{vps["vps_hostname"]}"\nIP_ADDRESS="{vps["ips"] or ""}"\n'
               + "".join(f'{name}="{value}"\n' for name, value in configs.get(veid, {}).items()))
        write_file(root / f"var/lib/lab/vz/{veid}", "running\n" if vps["up"] else "stopped\n")
        write_file(root / f"vz/private/{veid}/etc/hostname", f"{vps['vps_hostname']}\n")
        (root / f"vz/root/{veid}").mkdir(parents=True, exist_ok=True)
    mounts = _rows(conn, """
        SELECT m.id, m.vps_id, m.dst, m.mount_opts, m.umount_opts, m.mode, COALESCE(st.vps_up, 0) AS up,
               IF(m.storage_export_id IS NULL, m.src,
                  CONCAT(es.server_ip4, ':', r.root_path, '/', e.path)) AS src
        FROM vps_mount m
        INNER JOIN vps v ON v.vps_id = m.vps_id
        LEFT JOIN vps_status st ON st.vps_id = m.vps_id
        LEFT JOIN storage_export e ON e.id = m.storage_export_id
        LEFT JOIN storage_root r ON r.id = e.root_id
        LEFT JOIN servers es ON es.server_id = r.node_id
        WHERE m.`default` = 0 AND v.vps_server = %s ORDER BY m.vps_id, m.id""", (server_id,))
    mtab, by_vps = [], {}
    for m in mounts:
        by_vps.setdefault(m["vps_id"], []).append(m)
        target = f"/vz/root/{m['vps_id']}/{m['dst'].lstrip('/')}"
        (root / target.lstrip("/")).mkdir(parents=True, exist_ok=True)
        if m["up"]:
            mtab.append(f"{m['src']}\t{target}\tnfs\t{m['mode']},vers=3\n")
    write_file(root / "var/lib/lab/mounts", "".join(mtab))
    for veid, vps_mounts in by_vps.items():
        for suffix, text in zip(("mount", "umount"), mount_scripts(vps_mounts), strict=False):
            write_file(root / f"etc/vz/conf/{veid}.{suffix}", text, 0o755)


def applied_configs(conn, server_id: int) -> dict[int, dict[str, str]]:
    """{veid: {parameter: value}} as vzctl saved each VPS's config chain (vps_has_config in
    its order, a later config overriding an earlier one) into /etc/vz/conf/<veid>.conf."""
    rows = _rows(conn, """
        SELECT h.vps_id, c.config FROM vps_has_config h
        INNER JOIN config c ON c.id = h.config_id
        INNER JOIN vps v ON v.vps_id = h.vps_id
        WHERE v.vps_server = %s ORDER BY h.vps_id, h.`order`""", (server_id,))
    saved: dict[int, dict[str, str]] = {}
    for row in rows:
        for line in (row["config"] or "").splitlines():
            name, _, value = line.partition("=")
            if value:
                saved.setdefault(row["vps_id"], {})[name.strip()] = _vzctl_saved(name.strip(), value.strip('"'))
    return saved


def _vzctl_saved(name: str, value: str) -> str:
    """A parameter as `vzctl --save` writes it: "0:4G" of PHYSPAGES becomes "0:1048576"."""
    unit = VZCTL_UNITS.get(name)
    if unit is None:
        return value
    return ":".join(str(int(part[:-1]) * SIZE_SUFFIXES[part[-1]] // unit) if part[-1:] in SIZE_SUFFIXES
                    else part for part in value.split(":"))


def summary(conn) -> dict:
    """A few counts `lab status` shows."""
    counts = {}
    for name, sql in (("vps", "SELECT COUNT(*) FROM vps"), ("members", "SELECT COUNT(*) FROM members"),
                      ("vps_ip", "SELECT COUNT(*) FROM vps_ip"),
                      ("pending_transactions", "SELECT COUNT(*) FROM transactions WHERE t_done = 0")):
        cur = conn.cursor()
        cur.execute(sql)
        counts[name] = int(cur.fetchone()[0])
    return counts
