"""The vpsAdmin v1.22 world: a production-like database for the v2.0 upgrade runbook.

Facts: shared/research/vpsadmin.md §1 (schema, encoding, transactions) and the runbook
shared/seeds/001_*.txt, sections "Prerequisites" and "Database". The seed plants every mess
those sections exist for:

- stray VPSes: lazily deleted VPSes whose node was deleted from `servers`;
- `vps_ip.vps_id = 0` (the legacy "free"), IPs of VPSes that no longer exist, and NULLs;
- backup mounts (`vps_mount` -> `storage_export.data_type = 'backup'`) on running and
  stopped VPSes, one VPS with two of them, and a mount template (`default` = 1);
- a NAS dataset named `private` (a reserved name in 2.0);
- `log`, `node_pubkey`, `transactions` as MyISAM (see schema.sql);
- pending transactions (`t_done = 0`), one depending on another;
- double-encoded UTF-8 in members, members_changes, sysconfig and vps, written the way the
  v1.22 PHP wrote it: UTF-8 bytes over a latin1 connection into utf8 columns (§1.4).

Only stdlib + MySQLdb; no Airflow. Deterministic: random.Random(42) and a fixed `now`.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import random
import re
import time
from collections import defaultdict
from pathlib import Path

SCHEMA_SQL = Path(__file__).with_name("schema.sql")

# Rows per executemany() call.
BATCH_ROWS = 5000

# Locations of the vpsfree.cz cluster: id -> (label, domain).
LOCATIONS = {1: ("Praha", "prg"), 2: ("Brno", "brq")}

# A hypervisor that was removed from `servers` while VPSes still pointed at it.
DELETED_NODE_ID = 9

FIRST_VPS_ID = 101

# API migrations the v1.22 production DB had applied (research §1.1). Upstream 15.sql
# registers only 20140227150154, which would make `rake db:migrate` re-run Setup.
SCHEMA_MIGRATIONS = ("20140208170244", "20140227150154", "20140615185520", "20140815161745")

# Per unit of `scale` (scale=4200 gives ~109k VPSes, ~300k vps_ip rows, ~22k members).
HYPERVISOR_VPS_PER_SCALE = 24  # includes the lazily deleted ones
LAZILY_DELETED_VPS_PER_SCALE = 2
STOPPED_VPS_PER_SCALE = 3  # vps_up = 0, not deleted
STRAY_VPS_PER_SCALE = 2
HARD_DELETED_VPS_PER_SCALE = 2  # gaps in vps_id; orphan IPs still point at them
ZERO_IPS_PER_SCALE = 3
NULL_IPS_PER_SCALE = 3
NAS_MEMBERS_PER_SCALE = 6
PRIVATE_DATASETS_PER_SCALE = 1
BACKUP_MOUNTED_RUNNING_VPS_PER_SCALE = 4
BACKUP_MOUNTED_STOPPED_VPS_PER_SCALE = 2
DOUBLE_BACKUP_MOUNTED_VPS_PER_SCALE = 1  # of the running ones, these get a second mount
FINISHED_TRANSACTIONS_PER_SCALE = 40
LOG_ROWS_PER_SCALE = 20

DAY = 86400

# --- Fixed text (what KNOWN_TEXT promises) -------------------------------------------------

# The first members; generated members follow at scale > 1.
FIXED_MEMBERS = [
    dict(m_id=1, m_nick="admin", m_name="Vojtěch Král", m_level=99, m_state="active",
         m_address="Náměstí Míru 5, 120 00 Praha 2", m_info="Správce clusteru.",
         m_suspend_reason=""),
    dict(m_id=2, m_nick="jdvorak", m_name="Jiří Dvořák", m_level=1, m_state="active",
         m_address="Údolní 33, 602 00 Brno", m_info="Platí převodem, variabilní symbol 2.",
         m_suspend_reason=""),
    dict(m_id=3, m_nick="snovakova", m_name="Šárka Nováková", m_level=1, m_state="active",
         m_address="Křížová 12, 150 00 Praha 5", m_info="Člen spolku od roku 2011.",
         m_suspend_reason=""),
    dict(m_id=4, m_nick="zcermakova", m_name="Žofie Čermáková", m_level=1, m_state="active",
         m_address="Palackého třída 8, 612 00 Brno", m_info="Žádá fakturu na firmu.",
         m_suspend_reason=""),
    dict(m_id=5, m_nick="trehor", m_name="Tomáš Řehoř", m_level=1, m_state="active",
         m_address="Čechova 21, 370 01 České Budějovice", m_info="", m_suspend_reason=""),
    dict(m_id=6, m_nick="pkucera", m_name="Petr Kučera", m_level=21, m_state="active",
         m_address="Škroupova 4, 301 00 Plzeň", m_info="Podpora, noční služby.",
         m_suspend_reason=""),
    dict(m_id=7, m_nick="lhorak", m_name="Lukáš Horák", m_level=1, m_state="suspended",
         m_address="Vinohradská 110, 130 00 Praha 3", m_info="Dlužné příspěvky za 3 měsíce.",
         m_suspend_reason="Neuhrazené členské příspěvky"),
    dict(m_id=8, m_nick="mruzickova", m_name="Markéta Růžičková", m_level=1, m_state="active",
         m_address="Třída Svobody 2, 779 00 Olomouc", m_info="", m_suspend_reason=""),
    dict(m_id=9, m_nick="onemec", m_name="Ondřej Němec", m_level=1, m_state="deleted",
         m_address="Dlouhá 7, 110 00 Praha 1", m_info="Odešel k jinému poskytovateli.",
         m_suspend_reason="Zrušení členství na vlastní žádost"),
    dict(m_id=10, m_nick="kstastna", m_name="Kateřina Šťastná", m_level=1, m_state="active",
         m_address="Husova 17, 602 00 Brno", m_info="", m_suspend_reason=""),
    dict(m_id=11, m_nick="dpokorny", m_name="Dušan Pokorný", m_level=1, m_state="active",
         m_address="Žižkova 9, 586 01 Jihlava", m_info="Student, sleva na příspěvku.",
         m_suspend_reason=""),
    dict(m_id=12, m_nick="mvesely", m_name="Matěj Veselý", m_level=1, m_state="active",
         m_address="Jiráskova 3, 500 02 Hradec Králové", m_info="", m_suspend_reason=""),
]

# vps_info / vps_config of the first VPSes (never stray, deleted or a gap).
FIXED_VPS_TEXT = {
    101: dict(vps_info="Webový server spolku – neřešit výpadky v noci",
              vps_config='# zvýšeno na žádost člena, schválil Král\nNUMPROC="4000:4000"\n'),
    102: dict(vps_info="Poštovní server, důležité! Kontakt: Jiří Dvořák", vps_config=""),
    103: dict(vps_info="Herní server (Minecraft) pro kroužek v Třebíči", vps_config=""),
}

MEMBERS_CHANGES = [
    dict(m_id=1, m_type="add", m_state="awaiting", m_applicant=None, m_nick="zmarkova",
         m_name="Zdeňka Marková", m_mail="zdenka.markova@example.cz",
         m_address="Štefánikova 41, 150 00 Praha 5", m_year=1987,
         m_how="Doporučení od kamaráda ze spolku", m_note="Chci provozovat blog a e-mail.",
         m_reason="", m_admin_response=None),
    dict(m_id=2, m_type="add", m_state="approved", m_applicant=None, m_nick="dpokorny",
         m_name="Dušan Pokorný", m_mail="dusan.pokorny@example.cz",
         m_address="Žižkova 9, 586 01 Jihlava", m_year=1995,
         m_how="Přednáška na LinuxAltu", m_note="Jsem student, mohu platit čtvrtletně?",
         m_reason="", m_admin_response="Schváleno, vítejte ve spolku."),
    dict(m_id=3, m_type="change", m_state="approved", m_applicant=4, m_nick="zcermakova",
         m_name="Žofie Čermáková", m_mail="zofie.cermakova@example.cz",
         m_address="Palackého třída 8, 612 00 Brno", m_year=None,
         m_how=None, m_note=None,
         m_reason="Přestěhování do Brna, změna adresy.", m_admin_response="Změněno."),
    dict(m_id=4, m_type="change", m_state="denied", m_applicant=5, m_nick="trehor",
         m_name="Tomáš Řehoř", m_mail="tomas.rehor@example.cz",
         m_address="Čechova 21, 370 01 České Budějovice", m_year=None,
         m_how=None, m_note=None,
         m_reason="Změna jména na přezdívku „Řehy“.",
         m_admin_response="Jméno musí odpovídat občanskému průkazu."),
]


def _json(value, *, unescaped_unicode: bool = False) -> str:
    """PHP json_encode. Plain json_encode escapes non-ASCII as \\uXXXX (like
    json.dumps); with JSON_UNESCAPED_UNICODE the raw UTF-8 stays in the string."""
    return json.dumps(value, ensure_ascii=not unescaped_unicode, separators=(",", ":"))


# Non-ASCII sysconfig values: json_encode(..., JSON_UNESCAPED_UNICODE).
SYSCONFIG_TEXT = {
    "page_title": _json("vpsAdmin – správa virtuálních serverů", unescaped_unicode=True),
    "noticeboard": _json("Plánovaná údržba uzlu node2.brq proběhne v sobotu od 22:00. "
                         "Děkujeme za trpělivost.", unescaped_unicode=True),
    "mailer_tpl_payment_warning_subj": _json("[vpsFree.cz] Upozornění na platbu členského "
                                             "příspěvku", unescaped_unicode=True),
    "mailer_tpl_payment_warning": _json(
        "Dobrý den, %member%,\n\nváš členský příspěvek je uhrazen do %expiration%. "
        "Prosíme o včasnou platbu.\n\nS pozdravem\nvpsFree.cz", unescaped_unicode=True),
    "mailer_tpl_member_suspended_subj": _json("[vpsFree.cz] Pozastavení účtu",
                                              unescaped_unicode=True),
}

# (table, column, key_column, key_value, correct_text): cells the seed writes
# double-encoded and that must read back as correct_text after the encoding fix.
KNOWN_TEXT: list[tuple[str, str, str, int | str, str]] = (
    [("members", col, "m_id", m["m_id"], m[col])
     for m in FIXED_MEMBERS for col in ("m_name", "m_address", "m_info", "m_suspend_reason")
     if not m[col].isascii()]
    + [("members_changes", col, "m_id", c["m_id"], c[col])
       for c in MEMBERS_CHANGES for col in ("m_name", "m_address", "m_reason", "m_admin_response")
       if c[col] and not c[col].isascii()]
    + [("sysconfig", "cfg_value", "cfg_name", name, value)
       for name, value in SYSCONFIG_TEXT.items()]
    + [("vps", col, "vps_id", vps_id, text[col])
       for vps_id, text in FIXED_VPS_TEXT.items() for col in ("vps_info", "vps_config")
       if not text[col].isascii()]
)

# Name pools for generated members and VPS descriptions.
FIRST_NAMES_M = ["Jiří", "Tomáš", "Petr", "Lukáš", "Ondřej", "Matěj", "Radek", "Štěpán", "Dušan"]
LAST_NAMES_M = ["Dvořák", "Řehoř", "Novák", "Černý", "Procházka", "Kučera", "Veselý", "Němec"]
FIRST_NAMES_F = ["Šárka", "Žofie", "Lucie", "Tereza", "Kateřina", "Markéta", "Jiřina", "Zdeňka"]
LAST_NAMES_F = ["Nováková", "Čermáková", "Dvořáková", "Králová", "Růžičková", "Šťastná"]
STREETS = ["Náměstí Míru", "Vinohradská", "Údolní", "Křížová", "Škroupova", "Čechova", "Žižkova"]
CITIES = ["120 00 Praha 2", "602 00 Brno", "370 01 České Budějovice", "779 00 Olomouc",
          "301 00 Plzeň", "460 01 Liberec"]
MEMBER_INFOS = ["", "", "Platí převodem.", "Člen spolku od roku 2012.", "Žádá fakturu.",
                "Sleva pro studenty."]
VPS_INFOS = ["", "", "Webový server", "Poštovní server", "Testovací stroj – nic důležitého",
             "Git a CI pro projekt Žížala", "Domácí cloud (Nextcloud)", "Zálohy kanceláře"]
HOSTNAME_WORDS = ["web", "mail", "git", "db", "dev", "vpn", "cloud", "game"]

# Configs: (name, label, vzctl snippet). Resource names as research §1.2 / runbook.
RAM_GB = (1, 2, 4, 6, 8, 12)
SWAP_GB = (0, 1, 2, 4)
CPU_CORES = (1, 2, 4, 8)
HDD_GB = (10, 20, 40, 60, 120, 250)
CONFIGS = (
    [(f"ram-vswap-{n}g-swap-0g", f"RAM {n} GB", f'PHYSPAGES="0:{n}G"\nSWAPPAGES="0:0"\n')
     for n in RAM_GB]
    + [(f"swap-{n}g", f"Swap {n} GB", f'SWAPPAGES="0:{n}G"\n') for n in SWAP_GB]
    + [(f"cpu-{c}c-{c * 100}", f"CPU {c} cores, {c * 100} %", f'CPUS="{c}"\nCPULIMIT="{c * 100}"\n')
       for c in CPU_CORES]
    + [(f"hdd-{n}g", f"Disk {n} GB",
        f'DISKSPACE="{n}G:{n}G"\nDISKINODES="{n * 200000}:{n * 200000}"\n') for n in HDD_GB]
    + [("nfs", "NFS", 'FEATURES="nfs:on"\n'),
       ("tun", "TUN/TAP", 'DEVICES="c:10:200:rw"\nCAPABILITY="NET_ADMIN:on"\n'),
       ("privvmpages-4g-6g", "Privvmpages 4G/6G", 'PRIVVMPAGES="4G:6G"\n')]
)
CONFIG_IDS = {name: i for i, (name, _, _) in enumerate(CONFIGS, start=1)}

NFS_MOUNT_OPTS = "-t nfs -overs=3"
NFS_UMOUNT_OPTS = "-f"

T_START, T_STOP, T_RESTART, T_APPLYCONFIG, T_NAS_VE_MOUNT_GEN, T_MAIL = (
    1001, 1002, 1003, 2008, 5301, 9001)


def seed_database(conn_kwargs: dict, db_name: str, topology: list[dict], scale: int = 1,
                  *, now: int | None = None) -> dict:
    """Create db_name fresh (DROP IF EXISTS first), load schema.sql, insert the v1.22 world.

    conn_kwargs: MySQLdb.connect kwargs without db/charset. topology: the vpsAdmin servers,
    dicts with server_id, server_name, server_type, location_id, ip, role (hypervisor, nas,
    backup, mailer). now: unix time the world is "as of" (default: today 00:00 UTC).
    Returns a summary of counts and ids for tests."""
    import MySQLdb

    if not re.fullmatch(r"[A-Za-z0-9_]+", db_name):
        raise ValueError(f"bad database name {db_name!r}")
    if scale < 1:
        raise ValueError("scale must be >= 1")
    if now is None:
        now = int(time.time()) // DAY * DAY

    world = _World(topology, scale, now)
    world.build()

    # latin1, as the v1.22 PHP (mysqli, no SET NAMES); sql_mode '' as MySQL 5.5.
    conn = MySQLdb.connect(**conn_kwargs, charset="latin1")
    try:
        cur = conn.cursor()
        cur.execute("SET SESSION sql_mode = ''")
        cur.execute(f"DROP DATABASE IF EXISTS `{db_name}`")
        cur.execute(f"CREATE DATABASE `{db_name}` CHARACTER SET utf8 COLLATE utf8_general_ci")
        conn.select_db(db_name)
        for statement in _schema_statements():
            cur.execute(statement)
        _insert_all(conn, world.rows)
    finally:
        conn.close()

    world.summary["db_name"] = db_name
    world.summary["counts"] = {table: len(rows) for table, rows in world.rows.items()}
    return world.summary


def _schema_statements() -> list[str]:
    """schema.sql split into statements (it has no ';' inside strings)."""
    lines = SCHEMA_SQL.read_text(encoding="utf-8").splitlines()
    body = "\n".join(line for line in lines if not line.lstrip().startswith("--"))
    return [s.strip() for s in body.split(";") if s.strip()]


def _as_sent_by_php(value):
    """A str as the v1.22 PHP put it on the wire: its raw UTF-8 bytes, which the server
    reads as latin1 and converts to utf8 (double encoding). Passed as bytes, because
    MySQLdb encodes str for a 'latin1' connection with Python's cp1252, which cannot
    encode some bytes (0x81, 0x8D, 0x8F, 0x90, 0x9D: e.g. in 'Á', 'ď', 'Ý') and would
    mangle others; bytes go over the wire untouched. ASCII text is the same either way."""
    if isinstance(value, str):
        return value.encode("utf-8")
    return value


def _insert_all(conn, rows: dict[str, list[dict]]) -> None:
    cur = conn.cursor()
    # Let executemany send a whole batch as one multi-row INSERT (default cap is 64 KiB).
    cur.max_stmt_length = 8 << 20
    for table, table_rows in rows.items():
        columns = list(table_rows[0])
        sql = "INSERT INTO `{}` ({}) VALUES ({})".format(
            table, ", ".join(f"`{c}`" for c in columns), ", ".join(["%s"] * len(columns)))
        for start in range(0, len(table_rows), BATCH_ROWS):
            batch = [tuple(_as_sent_by_php(row[c]) for c in columns)
                     for row in table_rows[start:start + BATCH_ROWS]]
            cur.executemany(sql, batch)
        conn.commit()


class _World:
    """Builds every row in memory (table -> list of dicts) plus the summary."""

    def __init__(self, topology: list[dict], scale: int, now: int):
        self.rng = random.Random(42)
        self.scale = scale
        self.now = now
        self.rows: dict[str, list[dict]] = defaultdict(list)
        self.summary: dict = {"scale": scale, "now": now}

        self.servers = list(topology)
        self.hypervisors = [s for s in topology if s["role"] == "hypervisor"]
        by_role = {s["role"]: s for s in reversed(topology)}  # first server of each role
        missing = {"hypervisor", "nas", "backup", "mailer"} - by_role.keys()
        if missing:
            raise ValueError(f"topology lacks roles: {sorted(missing)}")
        self.nas, self.backup, self.mailer = by_role["nas"], by_role["backup"], by_role["mailer"]
        server_ids = {s["server_id"] for s in topology}
        self.deleted_node_id = (DELETED_NODE_ID if DELETED_NODE_ID not in server_ids
                                else max(server_ids) + 1)
        self.location_ids = sorted({s["location_id"] for s in topology})
        self.ipv4_next = int(ipaddress.IPv4Address("37.205.8.10"))
        self.ipv6_next = defaultdict(lambda: 1)

    def build(self) -> None:
        self.build_cluster()
        self.build_members()
        self.build_vpses()
        self.build_ips()
        self.build_storage()
        self.build_backups()
        self.build_transactions()
        self.build_misc()

    def days_ago(self, low: int, high: int) -> int:
        return self.now - self.rng.randint(low * DAY, high * DAY)

    # --- cluster: environments, locations, servers, configs ---------------------------------

    def build_cluster(self) -> None:
        rows, now_dt = self.rows, _datetime(self.now - 400 * DAY)
        rows["environments"].append(dict(id=1, label="Production", domain="vpsfree.cz",
                                         created_at=now_dt, updated_at=now_dt))
        for loc_id in self.location_ids:
            label, domain = LOCATIONS.get(loc_id, (f"Location {loc_id}", f"loc{loc_id}"))
            rows["locations"].append(dict(
                location_id=loc_id, location_label=label, location_type="production",
                location_has_ipv6=1, location_vps_onboot=1,
                location_remote_console_server=f"https://console.{domain}.vpsfree.cz",
                environment_id=1, domain=domain, created_at=now_dt, updated_at=now_dt))
            rows["transaction_groups"].append(dict(
                id=len(rows["transaction_groups"]) + 1, is_clusterwide=0, is_locationwide=1,
                location_id=loc_id))
        rows["transaction_groups"].append(dict(
            id=len(rows["transaction_groups"]) + 1, is_clusterwide=1, is_locationwide=0,
            location_id=0))

        for s in self.servers:
            rows["servers"].append(dict(
                server_id=s["server_id"], server_name=s["server_name"],
                server_type=s["server_type"], server_location=s["location_id"],
                server_availstat=None, server_ip4=s["ip"], server_maintenance=0,
                max_vps=50, ve_private="/vz/private/%veid%", fstype="zfs",
                net_interface="eth0", max_tx=235929600, max_rx=235929600))
            rows["servers_status"].append(dict(
                server_id=s["server_id"], timestamp=self.now - self.rng.randint(0, 30),
                ram_free_mb=self.rng.randint(2000, 60000),
                disk_vz_free_gb=float(self.rng.randint(200, 4000)),
                cpu_load=round(self.rng.uniform(0.1, 8.0), 2), daemon=0,
                vpsadmin_version="1.22.0", kernel="2.6.32-042stab093.5"))
            rows["node_pubkey"].append(dict(
                node_id=s["server_id"], type="rsa", key=self.ssh_rsa_key(s["server_name"])))

        # One resolver for each of the first two locations.
        for loc_id, ip in zip(self.location_ids, ("37.205.9.100", "37.205.10.88"), strict=False):
            rows["cfg_dns"].append(dict(
                dns_id=len(rows["cfg_dns"]) + 1, dns_ip=ip,
                dns_label=f"{LOCATIONS.get(loc_id, ('Location',))[0]} DNS",
                dns_is_universal=0, dns_location=loc_id))
        self.dns_by_location = {r["dns_location"]: r["dns_id"] for r in rows["cfg_dns"]}

        for templ_id, (name, label) in enumerate(
                [("scientific-6-x86_64", "Scientific Linux 6"),
                 ("debian-7.0-x86_64", "Debian 7.0 Wheezy"),
                 ("ubuntu-14.04-x86_64", "Ubuntu 14.04 LTS")], start=1):
            rows["cfg_templates"].append(dict(
                templ_id=templ_id, templ_name=name, templ_label=label,
                templ_info=f"{label}, 64-bit", templ_enabled=1, templ_supported=1,
                templ_order=templ_id))
        for config_id, (name, label, snippet) in enumerate(CONFIGS, start=1):
            rows["config"].append(dict(id=config_id, name=name, label=label, config=snippet))

        self.summary["server_ids"] = {
            "hypervisors": [s["server_id"] for s in self.hypervisors],
            "nas": self.nas["server_id"], "backup": self.backup["server_id"],
            "mailer": self.mailer["server_id"]}
        self.summary["deleted_node_id"] = self.deleted_node_id

    def ssh_rsa_key(self, server_name: str) -> str:
        # The wire format of an RSA public key (e=65537, 2048-bit n) with a random modulus.
        blob = (b"\x00\x00\x00\x07ssh-rsa\x00\x00\x00\x03\x01\x00\x01\x00\x00\x01\x01\x00"
                + self.rng.randbytes(256))
        return f"ssh-rsa {base64.b64encode(blob).decode()} root@{server_name}"

    # --- members ------------------------------------------------------------------------------

    def build_members(self) -> None:
        rng = self.rng
        total_vps = (HYPERVISOR_VPS_PER_SCALE + STRAY_VPS_PER_SCALE) * self.scale
        count = max(len(FIXED_MEMBERS), total_vps // 5)
        members = [dict(m) for m in FIXED_MEMBERS]
        for m_id in range(len(FIXED_MEMBERS) + 1, count + 1):
            female = rng.random() < 0.3
            first = rng.choice(FIRST_NAMES_F if female else FIRST_NAMES_M)
            last = rng.choice(LAST_NAMES_F if female else LAST_NAMES_M)
            roll = rng.random()
            state = "suspended" if roll < 0.02 else "deleted" if roll < 0.03 else "active"
            members.append(dict(
                m_id=m_id, m_nick=f"user{m_id}", m_name=f"{first} {last}", m_level=1,
                m_state=state,
                m_address=f"{rng.choice(STREETS)} {rng.randint(1, 120)}, {rng.choice(CITIES)}",
                m_info=rng.choice(MEMBER_INFOS),
                m_suspend_reason={"active": "", "suspended": "Neuhrazené příspěvky",
                                  "deleted": "Zrušení členství"}[state]))

        for m in members:
            m_id, nick, state = m["m_id"], m["m_nick"], m["m_state"]
            created = self.days_ago(100, 2500)
            if m_id == 1:
                paid_until = ""  # the admin never paid: an empty string, not NULL
            elif m_id == 6:
                paid_until = None
            elif state != "active":
                paid_until = str(self.days_ago(30, 200))  # unix ts as a string
            else:
                paid_until = str(self.now + rng.randint(-30, 365) * DAY)
            self.rows["members"].append(dict(
                m_info=m["m_info"], m_id=m_id, m_created=created,
                m_deleted=self.days_ago(20, 60) if state == "deleted" else None,
                m_level=m["m_level"], m_nick=nick, m_name=m["m_name"],
                m_pass=hashlib.md5(f"{nick}:heslo{m_id}".encode()).hexdigest(),
                m_mail=f"{nick}@example.cz", m_address=m["m_address"],
                m_lang=rng.choice(["cs_CZ.utf8", "cs_CZ.utf8", "en_US.utf8"]),
                m_paid_until=paid_until, m_last_activity=self.days_ago(0, 90),
                m_monthly_payment=rng.choice([300, 300, 300, 900]), m_mailer_enable=1,
                m_playground_enable=rng.randint(0, 1), m_state=state,
                m_suspend_reason=m["m_suspend_reason"],
                login_count=0, failed_login_count=0, last_request_at=None,
                current_login_at=None, last_login_at=None, current_login_ip=None,
                last_login_ip=None, created_at=None, updated_at=None))

        self.member_ids = [m["m_id"] for m in members]
        self.deleted_member_ids = [m["m_id"] for m in members if m["m_state"] == "deleted"]
        self.owner_pool = [m["m_id"] for m in members if m["m_state"] != "deleted"]
        self.summary.update(
            member_ids=self.member_ids, admin_member_id=1,
            suspended_member_ids=[m["m_id"] for m in members if m["m_state"] == "suspended"],
            deleted_member_ids=self.deleted_member_ids)

    # --- VPSes --------------------------------------------------------------------------------

    def build_vpses(self) -> None:
        rng, scale = self.rng, self.scale
        n_hypervisor = HYPERVISOR_VPS_PER_SCALE * scale
        n_stray, n_gaps = STRAY_VPS_PER_SCALE * scale, HARD_DELETED_VPS_PER_SCALE * scale
        n_lazy, n_stopped = LAZILY_DELETED_VPS_PER_SCALE * scale, STOPPED_VPS_PER_SCALE * scale
        all_ids = range(FIRST_VPS_ID, FIRST_VPS_ID + n_hypervisor + n_stray + n_gaps)

        # The fixed-text VPSes stay ordinary and running.
        candidates = all_ids[len(FIXED_VPS_TEXT):]
        picked = rng.sample(candidates, n_stray + n_gaps + n_lazy + n_stopped)
        stray = set(picked[:n_stray])
        gaps = set(picked[n_stray:n_stray + n_gaps])
        lazy = set(picked[n_stray + n_gaps:n_stray + n_gaps + n_lazy])
        stopped = set(picked[n_stray + n_gaps + n_lazy:])

        self.vpses = []  # dicts with id, server, location, owner, up (None = no status row)
        stray_location = self.location_ids[0]
        hv_index = 0
        for vps_id in all_ids:
            if vps_id in gaps:
                continue
            if vps_id in stray:
                server_id, location_id, up = self.deleted_node_id, stray_location, None
            else:
                hv = self.hypervisors[hv_index % len(self.hypervisors)]
                hv_index += 1
                server_id, location_id = hv["server_id"], hv["location_id"]
                up = 0 if vps_id in lazy or vps_id in stopped else 1
            if vps_id in lazy and self.deleted_member_ids:
                owner = rng.choice(self.deleted_member_ids)
            else:
                owner = rng.choice(self.owner_pool)
            self.vpses.append(dict(id=vps_id, server=server_id, location=location_id,
                                   owner=owner, up=up))

            text = FIXED_VPS_TEXT.get(vps_id)
            created = self.days_ago(30, 2000)
            self.rows["vps"].append(dict(
                vps_id=vps_id, vps_created=created,
                vps_expiration=self.now + 14 * DAY if rng.random() < 0.03 else None,
                vps_deleted=self.days_ago(3, 30) if vps_id in lazy
                else self.days_ago(200, 400) if vps_id in stray else None,
                m_id=owner, vps_hostname=f"{rng.choice(HOSTNAME_WORDS)}{vps_id}",
                vps_template=rng.randint(1, 3),
                vps_info=text["vps_info"] if text else rng.choice(VPS_INFOS),
                dns_resolver_id=self.dns_by_location.get(location_id, 1),
                vps_server=server_id, vps_onboot=1, vps_onstartall=1,
                vps_backup_enabled=0 if rng.random() < 0.05 else 1,
                vps_features_enabled=rng.randint(0, 1),
                vps_backup_export=None,  # set in build_storage
                vps_backup_lock=0,
                vps_backup_exclude="" if rng.random() < 0.8 else "/tmp\n/var/cache",
                vps_config=text["vps_config"] if text else ""))
            if up is not None:
                self.rows["vps_status"].append(dict(
                    vps_id=vps_id, timestamp=self.now - rng.randint(0, 60), vps_up=up,
                    vps_nproc=rng.randint(20, 300) if up else 0,
                    vps_vm_used_mb=rng.randint(100, 8000) if up else 0,
                    vps_disk_used_mb=rng.randint(1000, 100000), vps_admin_ver="1.22.0"))
            self.add_vps_configs(vps_id)

        running_by_server = defaultdict(list)
        stopped_by_server = defaultdict(list)
        for v in self.vpses:
            if v["up"] == 1:
                running_by_server[v["server"]].append(v["id"])
            elif v["up"] == 0:
                stopped_by_server[v["server"]].append(v["id"])
        self.gap_ids = sorted(gaps)
        self.summary.update(
            vps_ids=[v["id"] for v in self.vpses], stray_vps_ids=sorted(stray),
            lazily_deleted_vps_ids=sorted(lazy), hard_deleted_vps_ids=self.gap_ids,
            running_vps_ids=dict(running_by_server), stopped_vps_ids=dict(stopped_by_server))

    def add_vps_configs(self, vps_id: int) -> None:
        rng = self.rng
        cpus = rng.choice(CPU_CORES)
        names = [f"ram-vswap-{rng.choice(RAM_GB)}g-swap-0g", f"swap-{rng.choice(SWAP_GB)}g",
                 f"cpu-{cpus}c-{cpus * 100}", f"hdd-{rng.choice(HDD_GB)}g"]
        names += [extra for extra, p in (("nfs", 0.1), ("tun", 0.15), ("privvmpages-4g-6g", 0.05))
                  if rng.random() < p]
        for order, name in enumerate(names, start=1):
            self.rows["vps_has_config"].append(
                dict(vps_id=vps_id, config_id=CONFIG_IDS[name], order=order))

    # --- IP addresses -------------------------------------------------------------------------

    def next_ip(self, version: int, location_id: int) -> str:
        if version == 4:
            self.ipv4_next += 1
            return str(ipaddress.IPv4Address(self.ipv4_next))
        n = self.ipv6_next[location_id]
        self.ipv6_next[location_id] += 1
        return f"2a03:3b40:{0x100 + location_id:x}::{n:x}"

    def build_ips(self) -> None:
        rng, scale, ips = self.rng, self.scale, self.rows["vps_ip"]

        def add(vps_id, version, location_id):
            ip_id = len(ips) + 1
            # The shaper migration numbered existing rows from 10 up, in ip_id order.
            ips.append(dict(ip_id=ip_id, vps_id=vps_id, ip_v=version, ip_location=location_id,
                            ip_addr=self.next_ip(version, location_id),
                            max_tx=39321600, max_rx=39321600, class_id=ip_id + 9))
            return ip_id

        stray = set(self.summary["stray_vps_ids"])
        stray_ip_ids = []
        for v in self.vpses:
            versions = [4] * (1 + (rng.random() < 0.25)) + [6] * rng.choice((1, 2))
            for version in versions:
                ip_id = add(v["id"], version, v["location"])
                if v["id"] in stray:
                    stray_ip_ids.append(ip_id)

        locations = self.location_ids
        zero_ip_ids = [add(0, 4 if i % 3 else 6, locations[i % len(locations)])
                       for i in range(ZERO_IPS_PER_SCALE * scale)]
        null_ip_ids = [add(None, 4 if i % 3 else 6, locations[i % len(locations)])
                       for i in range(NULL_IPS_PER_SCALE * scale)]
        orphan_ip_ids = [add(gap_id, 4, locations[i % len(locations)])
                         for i, gap_id in enumerate(self.gap_ids)]
        self.summary.update(stray_ip_ids=stray_ip_ids, zero_ip_ids=zero_ip_ids,
                            null_ip_ids=null_ip_ids, orphan_ip_ids=orphan_ip_ids)

    # --- storage: roots, exports, mounts ------------------------------------------------------

    def build_storage(self) -> None:
        rng, scale, rows = self.rng, self.scale, self.rows
        TiB, GiB = 1 << 40, 1 << 30
        nas_root_id, backup_root_id = 1, 2
        rows["storage_root"] += [
            dict(id=nas_root_id, node_id=self.nas["server_id"], label="NAS Praha",
                 root_dataset="storage/vpsfree.cz/nas", root_path="/storage/vpsfree.cz/nas",
                 storage_layout="per_member", user_export=1, user_mount="rw", quota=40 * TiB,
                 used=12 * TiB, avail=28 * TiB,
                 share_options="rw=@172.16.0.0/23,no_root_squash,no_subtree_check"),
            dict(id=backup_root_id, node_id=self.backup["server_id"], label="Backup Brno",
                 root_dataset="backup/vpsfree.cz/backup", root_path="/backup/vpsfree.cz/backup",
                 storage_layout="per_vps", user_export=0, user_mount="ro", quota=0,
                 used=30 * TiB, avail=10 * TiB,
                 share_options="ro=@172.16.0.0/23,no_root_squash,no_subtree_check"),
        ]
        exports = rows["storage_export"]

        def add_export(member_id, root_id, dataset, quota, used, default, data_type):
            export_id = len(exports) + 1
            exports.append(dict(
                id=export_id, member_id=member_id, root_id=root_id, dataset=dataset,
                path=dataset, quota=quota, used=used, avail=max(quota - used, 0),
                user_editable=0, default=default, data_type=data_type))
            return export_id

        # NAS exports come first, so the first export of the NAS root is 'data' (add_storage
        # decides a pool's role by the first export of its root).
        lazy = set(self.summary["lazily_deleted_vps_ids"])
        mountable = [v for v in self.vpses if v["up"] is not None and v["id"] not in lazy]
        vpses_by_owner = defaultdict(list)
        for v in mountable:
            vpses_by_owner[v["owner"]].append(v)
        nas_members = rng.sample(sorted(vpses_by_owner),
                                 min(NAS_MEMBERS_PER_SCALE * scale, len(vpses_by_owner)))
        nas_export_ids, private_export_ids, nas_mounts = [], [], []
        for i, m_id in enumerate(nas_members):
            quota = rng.choice((100, 250, 500, 1000)) * GiB
            export_id = add_export(m_id, nas_root_id, str(m_id), quota,
                                   rng.randint(0, quota // 2), "no", "data")
            nas_export_ids.append(export_id)
            for v in vpses_by_owner[m_id][:rng.randint(1, 2)]:
                nas_mounts.append((v["id"], export_id, "/mnt/nas"))
            if i < PRIVATE_DATASETS_PER_SCALE * scale:
                # A sub-dataset named "private": a reserved name in 2.0.
                private_id = add_export(m_id, nas_root_id, f"{m_id}/private", 0,
                                        rng.randint(0, 10 * GiB), "no", "data")
                private_export_ids.append(private_id)
                nas_mounts.append((vpses_by_owner[m_id][0]["id"], private_id, "/mnt/nas-private"))

        backup_export_of = {}
        for vps_row, v in zip(rows["vps"], self.vpses, strict=True):
            backup_export_of[v["id"]] = add_export(
                v["owner"], backup_root_id, str(v["id"]), 0, rng.randint(1, 60) * GiB,
                "no", "backup")
            vps_row["vps_backup_export"] = backup_export_of[v["id"]]

        # Templates copied for every new member / VPS (%member_id%, %veid% substituted).
        member_template_id = add_export(0, nas_root_id, "%member_id%", 100 * GiB, 0,
                                        "member", "data")
        vps_template_id = add_export(0, backup_root_id, "%veid%", 0, 0, "vps", "backup")

        mounts = rows["vps_mount"]

        def add_mount(vps_id, export_id, dst, mode, default=0):
            mount_id = len(mounts) + 1
            # Export mounts keep src empty: the PHP computes it from the export
            # (nas_mount_params). server_id is 0, not NULL: nas_mount_add writes it quoted,
            # so an empty node id became 0 without strict mode.
            mounts.append(dict(
                id=mount_id, vps_id=vps_id, src="", dst=dst, mount_opts=NFS_MOUNT_OPTS,
                umount_opts=NFS_UMOUNT_OPTS, mount_type="nfs", server_id=0,
                storage_export_id=export_id, mode=mode, cmd_premount="", cmd_postmount="",
                cmd_preumount="", cmd_postumount="", default=default))
            return mount_id

        nas_mount_ids = [add_mount(vps_id, export_id, dst, "rw")
                         for vps_id, export_id, dst in nas_mounts]

        running = [v["id"] for v in mountable if v["up"] == 1]
        stopped = [v["id"] for v in mountable if v["up"] == 0]
        backup_running = rng.sample(running, BACKUP_MOUNTED_RUNNING_VPS_PER_SCALE * scale)
        backup_stopped = rng.sample(stopped, BACKUP_MOUNTED_STOPPED_VPS_PER_SCALE * scale)
        backup_mount_ids, on_running = [], []
        for vps_id in backup_running:
            on_running.append(add_mount(vps_id, backup_export_of[vps_id], "/mnt/backup", "ro"))
        backup_mount_ids += on_running
        for vps_id in backup_stopped:
            backup_mount_ids.append(
                add_mount(vps_id, backup_export_of[vps_id], "/mnt/backup", "ro"))
        two_mounts = backup_running[:DOUBLE_BACKUP_MOUNTED_VPS_PER_SCALE * scale]
        for vps_id in two_mounts:
            # A second backup mount: the backups of another VPS.
            other = rng.choice(running)
            while other == vps_id:
                other = rng.choice(running)
            mount_id = add_mount(vps_id, backup_export_of[other], f"/mnt/backup-{other}", "ro")
            backup_mount_ids.append(mount_id)
            on_running.append(mount_id)
        template_mount_id = add_mount(0, vps_template_id, "/mnt/backup", "ro", default=1)
        backup_mount_ids.append(template_mount_id)

        self.summary.update(
            nas_root_id=nas_root_id, backup_root_id=backup_root_id,
            nas_export_ids=nas_export_ids, private_dataset_export_ids=private_export_ids,
            backup_export_ids=backup_export_of,
            template_export_ids=[member_template_id, vps_template_id],
            nas_mount_ids=nas_mount_ids,
            backup_mount_ids=backup_mount_ids,
            backup_mount_ids_on_running_vps=sorted(on_running),
            backup_mount_template_ids=[template_mount_id],
            vps_with_two_backup_mounts=sorted(two_mounts))

    def build_backups(self) -> None:
        """Daily backups (vpsAdmind 1.22 writes timestamp = UNIX_TIMESTAMP(snapshot time))."""
        rng, vps_with_backups = self.rng, []
        for vps_row, v in zip(self.rows["vps"], self.vpses, strict=True):
            if v["up"] is None or not vps_row["vps_backup_enabled"]:
                continue
            vps_with_backups.append(v["id"])
            for days_back in range(rng.randint(3, 7), 0, -1):
                self.rows["vps_backups"].append(dict(
                    vps_id=v["id"],
                    timestamp=self.now - days_back * DAY + 3600 + rng.randint(0, 3 * 3600),
                    size=rng.randint(1 << 30, 60 << 30)))
        self.summary["vps_with_backups_ids"] = vps_with_backups

    # --- transactions -------------------------------------------------------------------------

    def build_transactions(self) -> None:
        rng, rows = self.rng, self.rows["transactions"]
        running = self.summary["running_vps_ids"]
        running_vps = [(server, vps_id) for server, ids in running.items() for vps_id in ids]

        def add(t_type, server, vps_id, t_time, done, success, priority, param, output=None,
                depends_on=None):
            t_id = len(rows) + 1
            rows.append(dict(
                t_id=t_id, t_group=None, t_time=t_time,
                t_real_start=t_time + 2 if done else None,
                t_end=t_time + 2 + rng.randint(1, 120) if done else None,
                t_m_id=1, t_server=server, t_vps=vps_id, t_type=t_type,
                t_depends_on=depends_on, t_fallback="{}", t_urgent=0, t_priority=priority,
                t_success=success, t_done=done, t_param=param, t_output=output))
            return t_id

        finished_types = (T_START, T_STOP, T_RESTART, T_APPLYCONFIG, T_NAS_VE_MOUNT_GEN, T_MAIL)
        for _ in range(FINISHED_TRANSACTIONS_PER_SCALE * self.scale):
            t_type = rng.choice(finished_types)
            roll = rng.random()
            success = 1 if roll < 0.85 else 0 if roll < 0.95 else 2
            output = {1: "{}", 0: '{"error":"vzctl exited with 7"}',
                      2: '{"warning":"command took too long"}'}[success]
            if t_type == T_MAIL:
                server, vps_id, param = self.mailer["server_id"], 0, self.mail_param()
            else:
                server, vps_id = rng.choice(running_vps)
                param = self.param_for(t_type)
            add(t_type, server, vps_id, self.days_ago(1, 60), 1, success,
                rng.choice((0, 10)), param, output)

        # Pending (t_done = 0): queued on the hypervisors and the mailer.
        hv = [s["server_id"] for s in self.hypervisors]
        first_hv, second_hv = hv[0], hv[1 % len(hv)]
        first_running = {server: ids[0] for server, ids in running.items()}
        mailer, t = self.mailer["server_id"], self.now - 300
        pending = [
            add(T_APPLYCONFIG, first_hv, first_running[first_hv], t, 0, 0, 10,
                self.param_for(T_APPLYCONFIG)),
            add(T_RESTART, second_hv, first_running[second_hv], t + 10, 0, 0, 0, "[]"),
            add(T_MAIL, mailer, 0, t + 20, 0, 0, 0, self.mail_param()),
            add(T_RESTART, first_hv, running[first_hv][-1], t + 30, 0, 0, 5, "[]"),
            add(T_MAIL, mailer, 0, t + 40, 0, 0, 10, self.mail_param()),
        ]
        applyconfig = add(T_APPLYCONFIG, second_hv, running[second_hv][-1], t + 50, 0, 0, 0,
                          self.param_for(T_APPLYCONFIG))
        # Restart after the config change: waits for the pending applyconfig.
        dependent = add(T_RESTART, second_hv, running[second_hv][-1], t + 51, 0, 0, 0, "[]",
                        depends_on=applyconfig)
        pending += [applyconfig, dependent]
        self.summary.update(pending_transaction_ids=pending,
                            dependent_pending_transaction_id=dependent)

    def param_for(self, t_type: int) -> str:
        if t_type == T_APPLYCONFIG:
            cpus = self.rng.choice(CPU_CORES)
            return _json({"configs": [f"ram-vswap-{self.rng.choice(RAM_GB)}g-swap-0g",
                                      "swap-0g", f"cpu-{cpus}c-{cpus * 100}", "hdd-60g"]})
        if t_type == T_NAS_VE_MOUNT_GEN:
            return _json({"mounts": []})
        return "[]"

    def mail_param(self) -> str:
        # Plain json_encode: the Czech text travels as \uXXXX escapes (pure ASCII).
        member = self.rng.choice(self.rows["members"])
        return _json({"from_name": "vpsAdmin", "from_mail": "podpora@vpsfree.cz",
                      "to": member["m_mail"],
                      "subject": "[vpsFree.cz] Upozornění na platbu",
                      "msg": "Dobrý den,\nváš členský příspěvek brzy vyprší."})

    # --- the rest: sysconfig, members_changes, payments, mailer, log, helpbox ----------------

    def build_misc(self) -> None:
        rng, rows, now = self.rng, self.rows, self.now
        sysconfig = {
            "db_version": _json(15),
            "maintenance_mode": _json(False),
            "general_base_url": _json("https://vpsadmin.vpsfree.cz"),
            "api_enabled": _json(True),
            "payments_enabled": _json(True),
            "nas_default_mount_options": _json(NFS_MOUNT_OPTS),
            "nas_default_umount_options": _json(NFS_UMOUNT_OPTS),
            "default_config_chain": _json([CONFIG_IDS["ram-vswap-4g-swap-0g"],
                                           CONFIG_IDS["swap-0g"], CONFIG_IDS["cpu-8c-800"],
                                           CONFIG_IDS["hdd-60g"]]),
            "general_member_delete_timeout": _json(30),
            "general_vps_delete_timeout": _json(30),
            "playground_enabled": _json(True),
            "playground_vps_lifetime": _json(14),
            "mailer_enabled": _json(True),
            "mailer_from_name": _json("vpsAdmin"),
            "mailer_from_mail": _json("podpora@vpsfree.cz"),
            **SYSCONFIG_TEXT,
        }
        rows["sysconfig"] += [dict(cfg_name=k, cfg_value=v) for k, v in sysconfig.items()]
        rows["schema_migrations"] += [dict(version=v) for v in SCHEMA_MIGRATIONS]

        for c in MEMBERS_CHANGES:
            decided = c["m_state"] != "awaiting"
            rows["members_changes"].append(dict(
                m_id=c["m_id"], m_created=self.days_ago(10, 300), m_type=c["m_type"],
                m_state=c["m_state"], m_applicant=c["m_applicant"],
                m_changed_by=1 if decided else None,
                m_changed_at=self.days_ago(1, 9) if decided else None,
                m_nick=c["m_nick"], m_name=c["m_name"], m_mail=c["m_mail"],
                m_address=c["m_address"], m_year=c["m_year"], m_jabber=None,
                m_how=c["m_how"], m_note=c["m_note"],
                m_distribution=2 if c["m_type"] == "add" else None,
                m_location=1 if c["m_type"] == "add" else None,
                m_currency="CZK" if c["m_type"] == "add" else None,
                m_addr=f"89.24.{c['m_id']}.{10 + c['m_id']}",
                m_addr_reverse=f"host-{c['m_id']}.example.net", m_reason=c["m_reason"],
                m_admin_response=c["m_admin_response"], m_last_mail_id=0))

        for m_id in (2, 3, 4, 5, 8):
            paid_from = now - rng.randint(10, 60) * DAY
            rows["members_payments"].append(dict(
                m_id=m_id, acct_m_id=1, timestamp=paid_from - DAY, change_from=paid_from,
                change_to=paid_from + 365 * DAY))
        for m_id, kind in ((2, "payment_warning"), (7, "member_suspend"),
                           (9, "member_delete"), (11, "vps_expiration")):
            rows["mailer"].append(dict(
                sentTime=self.days_ago(1, 40), member_id=m_id, type=kind,
                details=f"{kind} mail sent to member {m_id}"))
        for page, action, content in (
                ("adminvps", "new", "Choose a node and a template for the new VPS."),
                ("adminvps", "info", "Resources are set by the config chain below."),
                ("nas", "mounts", "Mounts are applied after the VPS is restarted.")):
            rows["helpbox"].append(dict(page=page, action=action, content=content))

        messages = ("Backup of VPS {v} finished", "VPS {v} restarted by admin",
                    "Config chain of VPS {v} changed", "Member {m} paid until next year",
                    "Node {n} maintenance off")
        for _ in range(LOG_ROWS_PER_SCALE * self.scale):
            rows["log"].append(dict(
                timestamp=self.days_ago(0, 120),
                msg=rng.choice(messages).format(
                    v=rng.choice(self.vpses)["id"], m=rng.choice(self.member_ids),
                    n=rng.choice(self.servers)["server_name"])))


def _datetime(unix_ts: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(unix_ts))
