"""The Synnefo 0.12 world: the `snf_apps` and `snf_pithos` databases of an installation about
to be upgraded to 0.13, holding the mess the upgrade has to clean up (issue 11).

`seed(cfg, scale=None, pithos_alembic=None)` (re)creates the lab's two databases on the lab's
PostgreSQL (names: `synnefo_dbs(cfg)`), loads schema/*.sql and inserts
- PEOPLE, the mess: one entry per person, with the spellings of their email each service
  knows them by. 0.12 services keep the email "case as registered" as the user id, and
  nothing kept two spellings apart (shared research synnefo.md §1 "Identity semantics");
- ordinary people (ORDINARY_PER_SCALE × scale), lower-case and consistent, a few without a
  verified email or with a Pithos quota of their own: the bulk the migrations work through;
- what surrounds them: Astakos's services, Cyclades's flavors and public network, the South
  history and content types of 0.12, Pithos's containers, objects and their versions,
  groups, permissions, public objects and statistics.
Everything comes from random.Random(SEED) and fixed dates (the world is "as of" NOW), so a
seed is the same every time. It returns `info` (see `seed`), what tests assert on.

`copy(source, target)` gives a lab copies of another lab's seeded databases (cheap: a
template copy); `destroy(cfg)` drops a lab's. A lab's databases are recorded in the file
lab.synnefo.databases_record(cfg), which Lab.destroy looks at.

Cyclades's per-user quotas are no rows in 0.12: they are the settings VMS_USER_QUOTA and
NETWORKS_USER_QUOTA (research §4, §6). The mess has some; `info["cyclades_user_quota"]` holds
them for the settings files a later step writes. Projects do not exist in 0.12 either (0.13's
im migrations create them), so PROJECTS only describes them (see there).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import uuid
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lab.core import postgres
from lab.core.config import LabConfig
from lab.synnefo import databases_record

SCHEMA_DIR = Path(__file__).with_name("schema")
SEED = 13
# The world is as of the day GRNET ran the 0.13 migration on ~okeanos (research §7: early
# March 2013); every date of the seed is before it.
NOW = dt.datetime(2013, 3, 1, tzinfo=dt.UTC)
ORDINARY_PER_SCALE = 40

GiB = 1024 ** 3
# 0.12 defaults an account or a user without a limit of their own had (research §4, §6):
# PITHOS_BACKEND_QUOTA, MAX_VMS_PER_USER, MAX_NETWORKS_PER_USER.
PITHOS_DEFAULT_QUOTA = 50 * GiB
MAX_VMS_PER_USER = 3
MAX_NETWORKS_PER_USER = 5
# What 0.12 Pithos made of a quota of 0 (research §1: "quota 0 means unlimited").
UNLIMITED = "unlimited"


def synnefo_dbs(cfg: LabConfig) -> dict[str, str]:
    """The lab's names for Synnefo's two databases: after its vpsAdmin database, so labs side
    by side on one server (tests) have their own (the lab's connections name them too)."""
    from lab.synnefo import connections

    conns = connections(cfg)
    return {"snf_apps": conns["synnefo_apps_db"]["schema"], "snf_pithos": conns["synnefo_pithos_db"]["schema"]}


# -- the people ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Registration:
    """An Astakos 0.12 user: the email as typed at sign-up."""
    email: str
    active: bool = True
    verified: bool = True   # email_verified (astakos-quota skips users without it, research §5)


@dataclass(frozen=True)
class PithosAccount:
    name: str                 # the account node's path: the email as the user first used Pithos
    quota: int | None = None  # its 'quota' policy row in bytes; None: no row (the default); 0: unlimited


@dataclass(frozen=True)
class Person:
    """One person and the spelling of their email in every row that names them."""
    email: str                             # lower-cased: the person's key in `info`
    why: str                               # what this person is in the world for
    astakos: tuple[Registration, ...] = ()
    vms: tuple[str, ...] = ()              # db_virtualmachine.userid of each live VM
    destroyed_vms: tuple[str, ...] = ()    # ... of each deleted one (operstate DESTROYED)
    networks: tuple[str, ...] = ()         # db_network.userid of each private network
    keys: tuple[str, ...] = ()             # userdata_publickeypair.user of each key
    pithos: tuple[PithosAccount, ...] = ()
    vms_user_quota: dict[str, int] = field(default_factory=dict)       # the setting's entries
    networks_user_quota: dict[str, int] = field(default_factory=dict)

    @property
    def cyclades_ids(self) -> set[str]:
        """What get_existing_users() finds of them: every VM (deleted too), network and key."""
        return set(self.vms + self.destroyed_vms + self.networks + self.keys)


PEOPLE = (
    Person("alice@cs.example", "case duplicates in Astakos, both active; each spelling owns VMs, a "
           "network or a key, and a Pithos account",
           astakos=(Registration("Alice@cs.example"), Registration("alice@cs.example")),
           vms=("Alice@cs.example", "Alice@cs.example", "alice@cs.example"),
           networks=("Alice@cs.example",), keys=("alice@cs.example",),
           pithos=(PithosAccount("Alice@cs.example", 20 * GiB), PithosAccount("alice@cs.example")),
           vms_user_quota={"Alice@cs.example": 5, "alice@cs.example": 8}),
    Person("bob@physics.example", "three spellings: a never activated BOB@ beside the active Bob@, "
           "and bob@ in Cyclades and Pithos; one account without a limit (0), one with 10 GiB",
           astakos=(Registration("BOB@physics.example", active=False, verified=False),
                    Registration("Bob@physics.example")),
           vms=("Bob@physics.example", "bob@physics.example"), destroyed_vms=("BOB@physics.example",),
           networks=("bob@physics.example",),
           pithos=(PithosAccount("Bob@physics.example", 0), PithosAccount("bob@physics.example", 10 * GiB)),
           networks_user_quota={"Bob@physics.example": 2}),
    Person("dora@bio.example", "one email registered twice, once active and once not (0.12 only kept "
           "email and is_active unique together): a duplicate in Astakos only",
           astakos=(Registration("dora@bio.example", active=False), Registration("dora@bio.example")),
           vms=("dora@bio.example",), pithos=(PithosAccount("dora@bio.example", 5 * GiB),)),
    Person("erin.jones@math.example", "one Astakos user; Cyclades VMs under two spellings, the Pithos "
           "account under a third",
           astakos=(Registration("Erin.Jones@math.example"),),
           vms=("Erin.Jones@math.example", "erin.jones@math.example"),
           pithos=(PithosAccount("ERIN.JONES@math.example", 30 * GiB),)),
    Person("frank@chem.example", "a duplicate in Pithos only: Frank@ without a limit (0), frank@ with 100 GiB",
           astakos=(Registration("frank@chem.example"),), vms=("frank@chem.example",),
           pithos=(PithosAccount("Frank@chem.example", 0), PithosAccount("frank@chem.example", 100 * GiB))),
    Person("gina@geo.example", "a duplicate in Cyclades only, through a key pair",
           astakos=(Registration("Gina@geo.example"),), vms=("gina@geo.example",), keys=("Gina@geo.example",)),
    Person("henry@med.example", "a duplicate in Cyclades only, through a destroyed VM (the validation "
           "reads deleted rows too); a Pithos quota equal to the default, exported all the same",
           astakos=(Registration("henry@med.example"),), vms=("henry@med.example",),
           destroyed_vms=("Henry@med.example",),
           pithos=(PithosAccount("henry@med.example", PITHOS_DEFAULT_QUOTA),)),
    Person("ivan@arch.example", "one spelling everywhere, not lower-case: no duplicate, though the "
           "Cyclades validation lists every id that is not lower-case (research §2)",
           astakos=(Registration("Ivan@arch.example"),), vms=("Ivan@arch.example",),
           networks=("Ivan@arch.example",), pithos=(PithosAccount("Ivan@arch.example"),),
           vms_user_quota={"Ivan@arch.example": 4}),
    Person("jo@lang.example", "active but never verified the email: no quotaholder entity after "
           "astakos-quota --sync, so the usage resets reject them",
           astakos=(Registration("jo@lang.example", verified=False),), vms=("jo@lang.example",),
           pithos=(PithosAccount("jo@lang.example", 1 * GiB),)),
    Person("ghost@old.example", "unknown to Astakos: VMs and, under another spelling, a network in "
           "Cyclades; an entry in VMS_USER_QUOTA",
           vms=("ghost@old.example",), destroyed_vms=("ghost@old.example",), networks=("Ghost@old.example",),
           vms_user_quota={"ghost@old.example": 6}),
    Person("left@old.example", "unknown to Astakos: a Pithos account with a quota (in the quota "
           "export) and a destroyed VM",
           destroyed_vms=("left@old.example",), pithos=(PithosAccount("left@old.example", 2 * GiB),)),
    Person("nomad@old.example", "unknown to Astakos and a case duplicate in Pithos",
           pithos=(PithosAccount("Nomad@old.example"), PithosAccount("nomad@old.example", 0))),
)

DOMAINS = ("uoa.example", "ntua.example", "auth.example", "upatras.example")


def ordinary_people(scale: int, rng: random.Random) -> list[Person]:
    """The bulk: lower-case emails, one spelling everywhere."""
    people = []
    for i in range(1, ORDINARY_PER_SCALE * scale + 1):
        email = f"user{i:05d}@{DOMAINS[i % len(DOMAINS)]}"
        pithos = ()
        if rng.random() < 0.8:
            pithos = (PithosAccount(email, rng.choice((None,) * 8 + (0, 10 * GiB, 100 * GiB))),)
        people.append(Person(
            email, "ordinary",
            astakos=(Registration(email, active=rng.random() < 0.95, verified=rng.random() < 0.9),),
            vms=(email,) * rng.choice((0, 1, 1, 2, 3)), destroyed_vms=(email,) * rng.choice((0, 0, 0, 1)),
            networks=(email,) * (rng.random() < 0.3), keys=(email,) * (rng.random() < 0.4), pithos=pithos,
            vms_user_quota={email: 4} if rng.random() < 0.05 else {}))
    return people


# -- what the upgrade should end with --------------------------------------------------------
def _largest(limits: list) -> int | str:
    return UNLIMITED if UNLIMITED in limits else max(limits)


def expected_quota(person: Person) -> dict[str, int | str]:
    """The limits a person's Astakos user should end with where theirs were not the default,
    by these rules:
    - a resource is listed when one of the person's spellings had a limit of its own: a Pithos
      'quota' row, a VMS_USER_QUOTA or NETWORKS_USER_QUOTA entry;
    - its value is the largest limit among the person's spellings (merging never takes space
      away), a spelling without one of its own counting at the 0.12 default, and 0.12 Pithos's
      0 as UNLIMITED, above any number;
    - only people with an Astakos user: there is no one else to carry a limit."""
    if not person.astakos:
        return {}
    quota: dict[str, int | str] = {}
    if any(a.quota is not None for a in person.pithos):
        quota["pithos+.diskspace"] = _largest([
            PITHOS_DEFAULT_QUOTA if a.quota is None else UNLIMITED if a.quota == 0 else a.quota
            for a in person.pithos])
    spellings = person.cyclades_ids | set(person.vms_user_quota) | set(person.networks_user_quota)
    for resource, setting, default in (("cyclades.vm", person.vms_user_quota, MAX_VMS_PER_USER),
                                       ("cyclades.network.private", person.networks_user_quota,
                                        MAX_NETWORKS_PER_USER)):
        if setting:
            quota[resource] = _largest([setting.get(s, default) for s in spellings])
    return quota


@dataclass(frozen=True)
class Project:
    name: str
    owner: str                 # the owner's lower-cased email
    end_date: dt.datetime      # its application's end_date
    terminated: bool = False

    @property
    def expired(self) -> bool:
        """What project-control --check-expired lists: not terminated, end_date passed (research §5)."""
        return not self.terminated and self.end_date < dt.datetime.now(dt.UTC)


# 0.12 has no projects: im_project, im_projectapplication and im_projectmembership come with
# 0.13's im migrations 0015-0024 (research §1), empty. These are the projects the world is to
# have once they exist (the lab's 0.13 `migrate`, later, inserts them) for the periodic
# project-control DAG: expired ones (one already terminated) and live ones. Dates are fixed,
# far in the past or the future, so "expired" holds whenever a test runs.
PROJECTS = (
    Project("course.cs101.2012", "alice@cs.example", dt.datetime(2013, 2, 1, tzinfo=dt.UTC)),
    Project("lab.physics.sim", "bob@physics.example", dt.datetime(2013, 6, 30, tzinfo=dt.UTC)),
    Project("thesis.jones", "erin.jones@math.example", dt.datetime(2012, 12, 31, tzinfo=dt.UTC), terminated=True),
    Project("grid.chem", "frank@chem.example", dt.datetime(2099, 12, 31, tzinfo=dt.UTC)),
    Project("atlas.geo", "gina@geo.example", dt.datetime(2099, 6, 30, tzinfo=dt.UTC)),
)

# -- fixed rows ------------------------------------------------------------------------------
# im_service: named `pithos` as many 0.12 installations did, so the runbook's rename to
# `pithos+` (step 5) has work to do (research §5 astakos-init). Tokens: service-list's column.
SERVICES = (("cyclades", "https://cyclades.synnefo.lab/ui/"), ("pithos", "https://pithos.synnefo.lab/ui/"))

# db_flavor: (cpu, ram MB, disk GB, disk_template, deleted); the deleted one still has VMs.
FLAVORS = ((1, 1024, 20, "drbd", False), (2, 2048, 40, "drbd", False), (4, 4096, 80, "drbd", False),
           (1, 512, 10, "plain", True))
IMAGES = ("debian_base-6.0-7-x86_64", "ubuntu-12.04-x86_64", "centos-6.3-x86_64", "windows-2008-r2")

# The South migrations 0.12.5 had applied: the migration files of its im, db and userdata apps
# (debian/0.12.5-1; db has no 0048 nor 0055, im two 0007s). 0.13's `migrate` runs what follows.
SOUTH_0_12 = {
    "im": """0001_initial 0002_auto__add_field_astakosuser_third_party_identifier
        0003_auto__add_unique_invitation_username 0004_auto__add_field_astakosuser_email_verified
        0005_auto__add_field_astakosuser_has_credits
        0006_auto__add_approvalterms__add_field_astakosuser_has_signed_terms__add_f
        0007_auto__chg_field_astakosuser_email_verified__chg_field_astakosuser_has_
        0007_auto__del_field_invitation_accepted__del_field_invitation_is_accepted 0008_auto__add_emailchange
        0009_auto__add_service 0010_auto__add_field_astakosuser_activation_sent__chg_field_service_url
        0011_set_old_activation_sent 0012_auto__add_additionalmail 0013_auto__del_unique_additionalmail_email
        0014_auto__add_unique_astakosuser_third_party_identifier_provider""",
    "db": """0001_initial 0002_aai_fields 0003_auto__add_network
        0004_auto__add_field_image_backend_id__add_field_image_format 0005_auto__add_invitations
        0006_auto__add_networkinterface 0007_auto__add_field_synnefouser_auth_token_expires__chg_field_synnefouser_
        0008_auto__chg_field_image_format__chg_field_image_backend_id 0009_auto__chg_field_network_owner
        0010_auto__add_networklink 0011_auto__chg_field_networkinterface_ipv4 0012_auto__del_field_networklink_network
        0013_auto__add_field_networklink_network 0014_auto__add_field_synnefouser_auth_token_expires
        0015_auto__add_field_image_public 0016_auto__add_field_synnefouser_max_invitations
        0017_auto__add_field_invitations_level 0018_auto__add_field_virtualmachine_buildpercentage
        0019_auto__add_field_synnefouser_state 0020_auto__add_field_flavor_deleted 0021_auto__add_unique_together
        0022_auto__add_field_flavor_disk_template 0023_auto__add_field_virtualmachine_imageid 0024_string_image_ids
        0025_auto__del_field_virtualmachine_sourceimage
        0026_auto__del_unique_flavor_disk_ram_cpu__add_unique_flavor_disk_ram_cpu_d 0027_auto__del_legacy_fields
        0028_auto__del_disk__add_field_userid 0029_remove_user
        0030_auto__del_synnefouser__del_field_virtualmachine_owner__del_field_image
        0031_auto__del_imagemetadata__del_unique_imagemetadata_meta_key_image__del_
        0032_auto__del_unique_flavor_disk_ram_cpu__add_unique_flavor_disk_ram_cpu_d
        0033_auto__chg_field_networklink_available__add_field_virtualmachine_backen
        0034_auto__add_backend__add_field_virtualmachine_backend_hash__add_field_vi 0035_default_backend
        0036_auto__add_bridgepool__add_macprefixpool__add_field_network_backendtime 0037_network_migration
        0038_auto__del_networklink__del_field_network_netlink__chg_field_network_li
        0039_auto__add_backendnetwork__del_field_network_backendtime__del_field_net
        0040_auto__chg_field_networkinterface_index 0041_auto__add_field_networkinterface_dirty
        0042_auto__del_field_backend_password__add_field_backend_password_hash 0043_encrypt_passwords
        0044_auto__add_field_network_subnet6__add_field_network_gateway6
        0045_auto__chg_field_networkinterface_mac__add_field_network_reservations
        0046_auto__chg_field_backend_password_hash
        0047_auto__chg_field_networkinterface_mac__add_unique_networkinterface_mac_ 0049_not_null_mac_prefix
        0050_auto__add_unique_backendnetwork_network_backend 0051_auto__add_bridgepooltable__add_macprefixpooltable
        0052_migrate_pool_entries 0053_auto__del_bridgepool__del_macprefixpool
        0054_auto__add_ippooltable__add_field_network_pool 0056_auto__del_field_network_reservations
        0057_auto__add_virtualmachinediagnostic
        0058_auto__chg_field_networkinterface_dirty__chg_field_virtualmachine_delet""",
    "userdata": """0001_initial 0002_fingerprint_field
        0003_auto__chg_field_publickeypair_fingerprint__chg_field_publickeypair_use""",
}

# django_content_type: (app_label, model) of the 0.12 models, tables here or not (the 0.13
# migrate asks about the stale ones, runbook step 3.2).
CONTENT_TYPES = {
    "auth": ("permission", "group", "user", "message"), "contenttypes": ("contenttype",),
    "sessions": ("session",), "sites": ("site",), "south": ("migrationhistory",),
    "im": ("astakosuser", "approvalterms", "invitation", "emailchange", "service", "additionalmail"),
    "db": ("flavor", "backend", "virtualmachine", "virtualmachinediagnostic", "virtualmachinemetadata",
           "network", "backendnetwork", "networkinterface", "bridgepooltable", "macprefixpooltable",
           "ippooltable"),
    "userdata": ("publickeypair",),
}


# -- seeding ---------------------------------------------------------------------------------
def _digest(*parts) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()


def _when(rng: random.Random) -> dt.datetime:
    """A moment of the two years before NOW, at least 10 days before it (what follows a
    creation, later versions of an object, stays before NOW too)."""
    return NOW - dt.timedelta(days=rng.randint(10, 730), seconds=rng.randint(0, 86399))


def _seed_apps(conn, people: list[Person], rng: random.Random) -> dict:
    """snf_apps's rows; returns the Astakos user ids per person (`user_ids`) and counts."""
    def insert(table: str, columns: str, rows: list[tuple]) -> None:
        marks = ", ".join(["%s"] * len(columns.split(",")))
        with conn.cursor() as cur:
            cur.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)

    applied = NOW - dt.timedelta(days=60)
    insert("south_migrationhistory", "app_name, migration, applied",
           [(app, name, applied) for app, names in SOUTH_0_12.items() for name in names.split()])
    insert("django_content_type", "name, app_label, model",
           [(model, app, model) for app, models in CONTENT_TYPES.items() for model in models])
    insert("im_service", "id, name, url, icon, auth_token, auth_token_created, auth_token_expires",
           [(i, name, url, "", _digest("service", name)[:32], applied, applied + dt.timedelta(days=365))
            for i, (name, url) in enumerate(SERVICES, 1)])

    users, astakos, user_ids = [], [], defaultdict(list)
    for person in people:
        for reg in person.astakos:
            user_id = len(users) + 1
            joined = _when(rng)
            # 0.12: username a random 30-character hex string, not the email (research §1).
            users.append((user_id, _digest("username", user_id)[:30], reg.email.split("@")[0][:30].title(), "",
                          reg.email, f"sha1$lab${_digest('password', user_id)[:40]}", False, reg.active, False,
                          joined + dt.timedelta(days=rng.randint(0, 9)), joined))
            astakos.append((user_id, "", "local", None, 4, 0, _digest("token", user_id)[:32], joined,
                            joined + dt.timedelta(days=30), joined, reg.verified, reg.verified, False, True,
                            joined, joined))
            user_ids[person.email].append(user_id)
    insert("auth_user", "id, username, first_name, last_name, email, password, is_staff, is_active, "
           "is_superuser, last_login, date_joined", users)
    insert("im_astakosuser", "user_ptr_id, affiliation, provider, third_party_identifier, level, invitations, "
           "auth_token, auth_token_created, auth_token_expires, updated, is_verified, email_verified, "
           "has_credits, has_signed_terms, date_signed_terms, activation_sent", astakos)

    insert("db_flavor", "id, cpu, ram, disk, disk_template, deleted",
           [(i, *flavor) for i, flavor in enumerate(FLAVORS, 1)])
    networks = [(1, "public", None, "192.0.2.0/24", "192.0.2.1", True, "PUBLIC_ROUTED", "snf_public",
                 "aa:00:00", True, "ACTIVE", None, applied, applied, False)]
    private_network = {}  # userid -> its first private network
    vms, nics, keys = [], [], []
    for person in people:
        for userid in person.networks:
            net_id = len(networks) + 1
            created = _when(rng)
            networks.append((net_id, f"net-{net_id}", userid, "10.0.0.0/24", None, True, "PRIVATE_MAC_FILTERED",
                             "prv0", f"aa:{net_id >> 8 & 255:02x}:{net_id & 255:02x}", False, "ACTIVE", None,
                             created, created, False))
            private_network.setdefault(userid, net_id)
        live = [(userid, False) for userid in person.vms] + [(userid, True) for userid in person.destroyed_vms]
        for userid, deleted in live:
            vm_id = len(vms) + 1
            created = _when(rng)
            operstate = "DESTROYED" if deleted else rng.choice(("STARTED",) * 6 + ("STOPPED", "STOPPED", "ERROR"))
            vms.append((vm_id, f"{person.email.split('@')[0]}-{vm_id}", userid, created, created, rng.choice(IMAGES),
                        f"snf-{vm_id}", rng.choice((1, 1, 2, 2, 3, 4)), deleted, False, None, operstate, 100))
            if deleted:
                continue
            nics.append((vm_id, 1, created, created, 0, f"198.51.{vm_id // 250}.{vm_id % 250 + 2}"))
            if userid in private_network:
                nics.append((vm_id, private_network[userid], created, created, 1, None))
        for userid in person.keys:
            key = _digest("key", len(keys), userid)
            keys.append((len(keys) + 1, userid, "laptop", f"ssh-rsa AAAAB3NzaC1yc2E{key} {userid}",
                         ":".join(key[i:i + 2] for i in range(0, 32, 2))))
    insert("db_network", "id, name, userid, subnet, gateway, dhcp, type, link, mac_prefix, public, state, action, "
           "created, updated, deleted", networks)
    insert("db_virtualmachine", "id, name, userid, created, updated, imageid, hostid, flavor_id, deleted, "
           "suspended, action, operstate, buildpercentage", vms)
    insert("db_networkinterface", "id, machine_id, network_id, created, updated, index, mac, ipv4, dirty",
           [(i, *nic[:5], f"aa:00:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}", nic[5], False)
            for i, nic in enumerate(nics, 1)])
    insert('userdata_publickeypair', 'id, "user", name, content, fingerprint', keys)
    postgres.reset_sequences(conn)
    return {"user_ids": user_ids, "vms": len(vms), "private_networks": len(networks) - 1, "keys": len(keys)}


class _PithosTree:
    """snf_pithos's rows built in memory, node ids and serials in creation order, as the 0.12
    backend would have written them (lib/sqlalchemy/node.py's bookkeeping, research §1)."""

    def __init__(self):
        self.nodes = {0: [0, None, ""]}  # node -> [parent, latest_version, path]; 0 is the root
        self.versions: list[tuple] = []
        self.policy: list[tuple] = []
        self.groups: list[tuple] = []
        self.xfeatures: list[tuple] = []
        self.xfeaturevals: list[tuple] = []
        self.public: list[tuple] = []

    def node(self, parent: int, path: str) -> int:
        node = len(self.nodes)
        self.nodes[node] = [parent, None, path]
        return node

    def version(self, node: int, size: int, muser: str, mtime: float, cluster: int = 0, hash: str | None = None,
                type: str = "", object_uuid: str = "") -> int:
        serial = len(self.versions) + 1
        self.versions.append((serial, node, hash, size, type, None, round(mtime, 6), muser, object_uuid, "", cluster))
        self.nodes[node][1] = serial
        return serial

    def statistics(self) -> list[tuple]:
        """Per (node, cluster): population = versions of its children in the cluster, size =
        every descendant's, mtime = the latest (how the backend keeps them up to the root)."""
        stats: dict[tuple[int, int], list] = {}
        for _serial, node, _hash, size, _type, _source, mtime, _muser, _uuid, _checksum, cluster in self.versions:
            parent = self.nodes[node][0]
            stats.setdefault((parent, cluster), [0, 0, 0])[0] += 1
            while True:
                row = stats.setdefault((parent, cluster), [0, 0, 0])
                row[1] += size
                row[2] = max(row[2], mtime)
                if parent == 0:
                    break
                parent = self.nodes[parent][0]
        return [(node, pop, size, mtime, cluster) for (node, cluster), (pop, size, mtime) in sorted(stats.items())]


OBJECT_NAMES = (("notes", "txt", "text/plain"), ("report", "pdf", "application/pdf"),
                ("photo", "jpg", "image/jpeg"), ("backup", "tar.gz", "application/x-gzip"),
                ("data", "csv", "text/csv"), ("disk", "img", "application/octet-stream"))


def _fill_account(tree: _PithosTree, account: PithosAccount, names: list[str], rng: random.Random) -> None:
    """An account with its containers, objects and their versions, and maybe a group of other
    accounts (`names`: all of them), a shared container (one of them writing into it:
    versions.muser) and a public object."""
    friends = [name for name in rng.sample(names, min(3, len(names))) if name != account.name]
    t = _when(rng).timestamp()
    acc = tree.node(0, account.name)
    tree.version(acc, 0, account.name, t)  # the account's own version (its metadata)
    if account.quota is not None:
        tree.policy.append((acc, "quota", str(account.quota)))
    group = None
    if friends and rng.random() < 0.3:
        group = "team"
        for member in sorted(friends[:2]):
            tree.groups.append((account.name, group, member))
    writer = friends[-1] if friends and rng.random() < 0.25 else None
    for container in ("pithos", "trash", "photos")[:rng.choice((1, 2, 2, 3))]:
        path = f"{account.name}/{container}"
        c = tree.node(acc, path)
        tree.version(c, 0, account.name, t + 60)
        # put_container writes the default policy on a new container (quota 0, versioning auto).
        tree.policy += [(c, "quota", "0"), (c, "versioning", "auto")]
        shared = container == "pithos" and (writer or group)
        if shared:
            feature_id = len(tree.xfeatures) + 1
            tree.xfeatures.append((feature_id, path))
            readers = [f"{account.name}:{group}"] if group else ["*"]
            tree.xfeaturevals += [(feature_id, 0, reader) for reader in readers]
            if writer:
                tree.xfeaturevals.append((feature_id, 1, writer))
        for i in range(rng.randint(0, 5)):
            stem, ext, mime = rng.choice(OBJECT_NAMES)
            object_path = f"{path}/{stem}-{i}.{ext}"
            o = tree.node(c, object_path)
            object_uuid = str(uuid.UUID(_digest("object", object_path)[:32]))
            mtime = t + 3600 * (i + 1)
            history = rng.choice((0, 0, 0, 1, 2))
            deleted = rng.random() < 0.1
            for k in range(history + 1):
                muser = writer if shared and writer and rng.random() < 0.5 else account.name
                newest = k == history and not deleted
                tree.version(o, rng.randint(1, 50) * 1024 ** rng.choice((1, 2)), muser, mtime + k * 86400,
                             0 if newest else 1, _digest("block", object_path, k), mime, object_uuid)
            if deleted:  # a delete is a new, empty version in the deleted cluster
                tree.version(o, 0, account.name, mtime + (history + 1) * 86400, 2, None, "", object_uuid)
            elif container == "pithos" and rng.random() < 0.2:
                tree.public.append((len(tree.public) + 1, object_path, True))


def _seed_pithos(conn, people: list[Person], rng: random.Random, alembic: str | None) -> dict:
    """snf_pithos's rows, every person's accounts filled; stamped with `alembic` if given."""
    tree = _PithosTree()
    accounts = [account for person in people for account in person.pithos]
    names = [account.name for account in accounts]
    for account in accounts:
        _fill_account(tree, account, names, rng)
    statistics = tree.statistics()
    # 0.13's alembic 2a309a9a3438 clamps negative populations to 0 (research §3): the backend
    # had let some go below zero. One here, on the first account's first container.
    first_container = next(n for n, (parent, _, _) in tree.nodes.items() if parent == 1)
    statistics = [(n, -1 if n == first_container and cluster == 0 else pop, size, mtime, cluster)
                  for n, pop, size, mtime, cluster in statistics]
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO nodes (node, parent, latest_version, path) VALUES (%s, %s, %s, %s)",
                        [(node, *row) for node, row in tree.nodes.items()])
        for table, rows in (("versions", tree.versions), ("policy", tree.policy), ("statistics", statistics),
                            ("groups", tree.groups), ("xfeatures", tree.xfeatures),
                            ("xfeaturevals", tree.xfeaturevals), ("public", tree.public)):
            if rows:
                cur.executemany(f"INSERT INTO {table} VALUES ({', '.join(['%s'] * len(rows[0]))})", rows)
        if alembic:
            cur.execute("CREATE TABLE alembic_version (version_num varchar(32) NOT NULL)")
            cur.execute("INSERT INTO alembic_version VALUES (%s)", (alembic,))
    postgres.reset_sequences(conn)
    objects = {node for node, (parent, _, _) in tree.nodes.items() if parent not in (0, None)
               and tree.nodes[parent][0] != 0}
    return {"accounts": len(accounts), "objects": len(objects), "versions": len(tree.versions),
            "negative_population": [tree.nodes[first_container][2]]}


def _case_duplicates(ids) -> dict[str, list[str]]:
    """{lower-cased id: its spellings, sorted} where there is more than one spelling."""
    spellings = defaultdict(set)
    for i in ids:
        spellings[i.lower()].add(i)
    return {key: sorted(s) for key, s in sorted(spellings.items()) if len(s) > 1}


def _info(people: list[Person], apps: dict, pithos: dict) -> dict:
    astakos_emails = {reg.email.lower() for p in people for reg in p.astakos}
    cyclades_ids = {i for p in people for i in p.cyclades_ids}
    pithos_ids = {a.name for p in people for a in p.pithos}
    user_ids = apps["user_ids"]
    return {
        "counts": {
            "astakos_users": sum(len(ids) for ids in user_ids.values()), "vms": apps["vms"],
            "private_networks": apps["private_networks"], "keys": apps["keys"],
            "pithos_accounts": pithos["accounts"], "pithos_objects": pithos["objects"],
            "pithos_versions": pithos["versions"],
        },
        # The mess, person by person: the Astakos users (id, email as registered, active,
        # verified) and the distinct ids Cyclades and Pithos know them by.
        "people": {p.email: {
            "why": p.why,
            "astakos": [{"id": user_id, **asdict(reg)} for user_id, reg in zip(user_ids[p.email], p.astakos,
                                                                                strict=True)],
            "cyclades": sorted(p.cyclades_ids), "pithos": sorted(a.name for a in p.pithos)} for p in PEOPLE},
        # Case-insensitive duplicates per service: Astakos user ids (what find_astakos_users_with_
        # conflicting_emails.py lists, an email registered twice included), Cyclades ids (what
        # --validate-db refuses) and Pithos accounts (what --list-duplicate lists).
        "duplicates": {
            "astakos": {email: ids for email, ids in sorted(user_ids.items()) if len(ids) > 1},
            "cyclades": _case_duplicates(cyclades_ids),
            "pithos": _case_duplicates(pithos_ids),
        },
        # Ids no Astakos user has, in any case: the migrations cannot map them to a uuid.
        "unknown": {"cyclades": sorted(i for i in cyclades_ids if i.lower() not in astakos_emails),
                    "pithos": sorted(i for i in pithos_ids if i.lower() not in astakos_emails)},
        "unverified": sorted(reg.email for p in people for reg in p.astakos if not reg.verified),
        # What pithos-export-quota exports: every account's explicit quota row (research §4).
        "pithos_quota": {a.name: a.quota for p in people for a in p.pithos if a.quota is not None},
        "cyclades_user_quota": {
            "VMS_USER_QUOTA": {k: v for p in people for k, v in p.vms_user_quota.items()},
            "NETWORKS_USER_QUOTA": {k: v for p in people for k, v in p.networks_user_quota.items()},
        },
        "expected_quota": {p.email: q for p in people if (q := expected_quota(p))},
        "services": {name: _digest("service", name)[:32] for name, _url in SERVICES},
        "projects": [{**asdict(pr), "end_date": pr.end_date.isoformat()} for pr in PROJECTS],
        "expired_projects": [pr.name for pr in PROJECTS if pr.expired],
        "negative_population": pithos["negative_population"],
    }


def _record(cfg: LabConfig, server: str, dbs: dict[str, str]) -> None:
    """Say where the lab's databases are (the server's URL may carry a password: owner only)."""
    record = databases_record(cfg)
    record.parent.mkdir(parents=True, exist_ok=True)
    record.touch(mode=0o600)
    record.write_text(json.dumps({"server": server, **dbs}, indent=2) + "\n")


def seed(cfg: LabConfig, scale: int | None = None, pithos_alembic: str | None = None,
         server: str | None = None) -> dict:
    """(Re)create the lab's snf_apps and snf_pithos (names: synnefo_dbs(cfg)) on `server` (default:
    lab.core.postgres.resolve()) and seed the 0.12 world. `scale` (default cfg.scale) multiplies
    the ordinary people; `pithos_alembic`: the revision snf_pithos is stamped with, e.g.
    "3dd56e750a3" (default None: no alembic_version table, the runbook's "current is None").

    Returns info: the databases (`server`, `snf_apps`, `snf_pithos`), `scale`, `pithos_alembic`,
    `counts`, `people` (the mess), `duplicates` (per service), `unknown` (per service),
    `unverified`, `pithos_quota`, `cyclades_user_quota` (the settings' dicts), `expected_quota`
    ({lower-cased email: {resource: limit}}, see expected_quota()), `services` ({name: token}),
    `projects` and `expired_projects` (see PROJECTS), `negative_population` (container paths)."""
    server = postgres.resolve(server)
    scale = cfg.scale if scale is None else scale
    dbs = synnefo_dbs(cfg)
    _record(cfg, server, dbs)  # first, so that destroy() finds what a failed seed left
    for name in dbs.values():
        postgres.drop_database(server, name)
        postgres.create_database(server, name)
    postgres.run_sql_file(server, dbs["snf_apps"], SCHEMA_DIR / "snf_apps_0_12.sql")
    postgres.run_sql_file(server, dbs["snf_pithos"], SCHEMA_DIR / "snf_pithos_0_12.sql")

    rng = random.Random(SEED)
    people = list(PEOPLE) + ordinary_people(scale, rng)
    with postgres.connect(server, dbs["snf_apps"]) as conn:
        apps = _seed_apps(conn, people, rng)
    with postgres.connect(server, dbs["snf_pithos"]) as conn:
        pithos = _seed_pithos(conn, people, rng, pithos_alembic)
    return {"server": server, **dbs, "scale": scale, "pithos_alembic": pithos_alembic,
            **_info(people, apps, pithos)}


def copy(source: LabConfig, target: LabConfig) -> dict[str, str]:
    """The target lab's Synnefo databases as copies of the source lab's seeded ones, on the
    same server (a test module seeds once and copies per test); returns the target's names."""
    server = json.loads(databases_record(source).read_text())["server"]
    dbs = synnefo_dbs(target)
    _record(target, server, dbs)
    for key, name in dbs.items():
        postgres.drop_database(server, name)
        postgres.copy_database(server, synnefo_dbs(source)[key], name)
    return dbs


def destroy(cfg: LabConfig) -> None:
    """Drop the lab's Synnefo databases, on the server they were seeded on."""
    record = databases_record(cfg)
    if not record.exists():
        return
    recorded = json.loads(record.read_text())
    for key in synnefo_dbs(cfg):
        postgres.drop_database(recorded["server"], recorded[key])
    record.unlink()
