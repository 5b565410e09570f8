"""synnefo_upgrade_v013 end to end on one lab world (the tests run in order on it): bad input
fails in the first task and changes nothing; plan mode changes nothing; Reject at the first
gate leaves both databases untouched; the approved run upgrades the cluster (the issue's
"Done when": one user per lower-cased email in every service, uuids everywhere, the quotas
Astakos holds equal to what the seeded exports say, verify clean, usages reset, services up
with valid settings, no row of a surviving user lost, no secret shown); a second run changes
nothing."""

from __future__ import annotations

import csv
import io
from collections import Counter

import pytest

from tests.e2e.synnefo_upgrade_v013 import (
    APPROVE_ALL,
    DAG_ID,
    REJECT_RESTORES,
    WEB,
    changed,
    conf,
    fingerprint,
    query,
    service_state,
    sh,
    synnefo_world,
)
from tests.helpers import run_artifacts, run_dag, secret_holders

pytestmark = [pytest.mark.lab, pytest.mark.usefixtures("airflow_db")]
UNLIMITED = 10**30  # the import writes 10**32 for Pithos's 0; anything this large is unlimited


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with synnefo_world(tmp_path_factory) as lab:
        sh(lab, "astakos", "mkdir -p -m 0700 /var/backups/synnefo")
        yield lab


def owners(lab) -> dict[str, dict]:
    """Rows per owner (lower-cased email; a uuid is read back as its user's email) in Cyclades
    (VMs, networks, keys: counts) and Pithos (the live objects: a set)."""
    by_uuid = dict(query(lab, "snf_apps", "SELECT a.uuid, lower(u.email) FROM im_astakosuser a JOIN auth_user u "
                                          "ON u.id = a.user_ptr_id WHERE a.uuid IS NOT NULL")) if query(
        lab, "snf_apps", "SELECT 1 FROM information_schema.columns WHERE table_name = 'im_astakosuser' "
                         "AND column_name = 'uuid'") else {}

    def who(owner: str) -> str:
        return by_uuid.get(owner, owner.lower())

    counts: dict[str, dict] = {}
    for table, column in (("db_virtualmachine", "userid"), ("db_network", "userid"),
                          ("userdata_publickeypair", '"user"')):
        counts[table] = Counter()
        for owner, n in query(lab, "snf_apps", f"SELECT {column}, count(*) FROM {table} WHERE {column} IS NOT NULL "
                                               "GROUP BY 1"):
            counts[table][who(owner)] += n
    # Pithos: the live objects (container/name) of each person, whichever spelling held them: a
    # merge unites same-named objects into one (the older content kept as history)
    objects: dict[str, set] = {}
    for path in query(lab, "snf_pithos", "SELECT n.path FROM nodes n JOIN versions v ON v.serial = n.latest_version "
                                         "WHERE v.cluster = 0 AND n.path LIKE '%/%/%'"):
        account, rest = path[0].split("/", 1)
        objects.setdefault(who(account), set()).add(rest)
    counts["pithos objects"] = objects
    return counts


def test_bad_input_fails_in_the_first_task_and_changes_nothing(world):
    before = fingerprint(world)
    # (shell characters in host names are refused before a run exists: tests/dags)
    state, tasks, _ = run_dag(DAG_ID, conf(astakos_url="https://astakos/'; import os; '", backup_dir="/var/../etc"))
    assert state == "failed" and tasks["stop.preflight"] == "failed"
    assert changed(before, fingerprint(world)) == []


def test_plan_mode_changes_nothing(world):
    before = fingerprint(world)
    state, tasks, answered = run_dag(DAG_ID, conf(dry_run=True))
    assert state == "success", {t: s for t, s in tasks.items() if s not in ("success", "skipped")}
    assert answered == []  # nobody is asked in plan mode
    assert changed(before, fingerprint(world)) == []
    assert all(service_state(world, node, s) == 0 for node, services in WEB.items() for s in services)


def test_reject_at_the_first_gate_changes_no_database(world):
    before = fingerprint(world)
    state, tasks, answered = run_dag(DAG_ID, conf(), answers={"users.approve_deletion": "Reject"})
    assert answered == [("users.approve_deletion", "Reject")]
    assert tasks["users.s2_delete_duplicates"] in ("skipped", "upstream_failed")
    assert [k for k in changed(before, fingerprint(world)) if k.startswith("snf_")] == []
    for node, services in WEB.items():  # part 1 ran: the web services are down
        assert [service_state(world, node, s) for s in services] == [3] * len(services), node


def test_the_approved_run_upgrades_the_cluster(world, capfd):
    info = world.info
    before = owners(world)
    state, tasks, answered = run_dag(DAG_ID, conf(), answers={**APPROVE_ALL, **REJECT_RESTORES})
    assert state == "success", {t: s for t, s in tasks.items() if s not in ("success", "skipped")}
    assert [gate for gate, _ in answered] == list(APPROVE_ALL)
    assert tasks["migrate.approve_restore"] == "skipped" and tasks["uuids.approve_restore"] == "skipped"

    # one user per lower-cased email in Astakos, each with a uuid
    users = query(world, "snf_apps", "SELECT lower(u.email), a.uuid FROM auth_user u JOIN im_astakosuser a "
                                     "ON a.user_ptr_id = u.id")
    assert len(users) == len({email for email, _ in users}), "an email is left twice in Astakos"
    assert all(uuid and len(uuid) == 36 for _, uuid in users)
    uuids = {uuid for _, uuid in users}
    # Cyclades: every owner a uuid (the ids no Astakos user had are gone)
    cyclades = {r[0] for r in query(world, "snf_apps", "SELECT userid FROM db_virtualmachine UNION SELECT userid "
                                                       "FROM db_network WHERE userid IS NOT NULL UNION SELECT "
                                                       '"user" FROM userdata_publickeypair')}
    assert cyclades <= uuids
    # Pithos: every account of a known user a uuid, one per person; unknown ones keep their email
    accounts = [r[0] for r in query(world, "snf_pithos", "SELECT path FROM nodes WHERE parent = 0 AND node != 0")]
    emails = {email for email, _ in users}
    assert [a for a in accounts if "@" in a and a.lower() in emails] == []
    assert len({a.lower() for a in accounts}) == len(accounts), "case duplicates left in Pithos"

    # no row of a surviving user lost
    after = owners(world)
    for kind, counts in before.items():
        kept = {who: n for who, n in counts.items() if who in emails}
        assert {who: after[kind][who] for who in kept} == kept, kind

    # the quotas Astakos holds: the hand-computed expectation of the seeded exports
    effective = {}
    for email, resource, capacity in query(world, "snf_apps", """
            SELECT lower(u.email), s.name || '.' || r.name, COALESCE(q.capacity, r.uplimit)
            FROM auth_user u JOIN im_astakosuser a ON a.user_ptr_id = u.id
            CROSS JOIN im_resource r JOIN im_service s ON s.id = r.service_id
            LEFT JOIN im_astakosuserquota q ON q.user_id = u.id AND q.resource_id = r.id"""):
        effective[email, resource] = int(capacity)
    for email, quota in info["expected_quota"].items():
        for resource, limit in quota.items():
            got = effective[email, resource]
            assert (got >= UNLIMITED) if limit == "unlimited" else got == limit, (email, resource, got, limit)

    # verify clean after the sync; the usages reset after it (the quotaholder holds them)
    verify = sh(world, "astakos", "snf-manage astakos-quota --verify 2>/dev/null")
    assert "Quotas differ" not in verify and "No quotas for" not in verify, verify
    held = {(e, r): int(n) for e, r, n in query(world, "snf_apps", "SELECT entity_id, resource, imported "
                                                                 "FROM quotaholder_app_holding")}
    disk = {a: int(n) for a, n in query(world, "snf_pithos", """
        SELECT a.path, coalesce(sum(v.size), 0) FROM nodes a
        LEFT JOIN nodes o ON split_part(o.path, '/', 1) = a.path AND o.path LIKE '%/%/%'
        LEFT JOIN versions v ON v.serial = o.latest_version AND v.cluster = 0
        WHERE a.parent = 0 AND a.node != 0 GROUP BY a.path""")}
    vms = dict(query(world, "snf_apps", "SELECT userid, count(*) FROM db_virtualmachine WHERE NOT deleted GROUP BY 1"))
    pithos_held = {e: n for (e, r), n in held.items() if r == "pithos+.diskspace"}
    vm_held = {e: n for (e, r), n in held.items() if r == "cyclades.vm"}
    assert pithos_held and any(pithos_held.values()) and any(vm_held.values()), "the usages were reset"
    assert {e: n for e, n in pithos_held.items() if e in disk} == {e: disk[e] for e in pithos_held if e in disk}
    assert {e: n for e, n in vm_held.items() if e in vms} == {e: vms[e] for e in vm_held if e in vms}

    # every service runs; the settings are valid and carry PITHOS_SERVICE_TOKEN
    assert all(service_state(world, node, s) == 0 for node, services in WEB.items() for s in services)
    tokens = dict(query(world, "snf_apps", "SELECT name, auth_token FROM im_service"))
    assert "pithos+" in tokens and "pithos" not in tokens
    pithos_conf = sh(world, "pithos", "cat /etc/synnefo/20-snf-pithos-app-settings.conf")
    assert f"PITHOS_SERVICE_TOKEN = '{tokens['pithos+']}'" in pithos_conf
    assert "PITHOS_USE_QUOTAHOLDER = True" in pithos_conf
    for node in ("astakos", "cyclades", "pithos"):
        sh(world, node, "snf-manage help >/dev/null && python3 -c \"import glob; [compile(open(f).read(), f, 'exec') "
                        "for f in glob.glob('/etc/synnefo/*.conf')]\"")

    # the decisions of part 2 kept as CSV; the dumps root-only
    listing = sh(world, "astakos", "ls -l /var/backups/synnefo")
    assert listing.count(".dump") >= 4 and "-rw-r--r--" not in listing
    report = sh(world, "astakos", "cat /var/backups/synnefo/duplicates-*.csv | head -c 1000000")
    assert {row["email"] for row in csv.DictReader(io.StringIO(report))} >= set(info["duplicates"]["astakos"])

    # no token in a log line, an XCom, a rendered field or an approval; on the nodes only in
    # settings files others cannot read
    secrets = {f"{name} token": token for name, token in tokens.items()}
    quotaholder = sh(world, "astakos", "python3 -c \"exec(open('/etc/synnefo/20-snf-astakos-app-settings.conf')"
                                       ".read()); print(QUOTAHOLDER_TOKEN)\"").strip()
    assert len(quotaholder) >= 20
    secrets["quotaholder token"] = quotaholder
    output = capfd.readouterr()
    shown = output.out + output.err + run_artifacts(DAG_ID)
    assert "s8_quota_verify_sync" in shown and len(shown) > 10_000, "the logs and XComs were read"
    assert [name for name, value in secrets.items() if value in shown] == []
    holders = secret_holders(world, secrets)
    assert holders and {path: oct(mode) for path, mode in holders.items() if mode & 0o007} == {}


def test_a_second_run_changes_nothing(world):
    before = fingerprint(world)
    state, tasks, answered = run_dag(DAG_ID, conf(), answers={**APPROVE_ALL, **REJECT_RESTORES})
    assert state == "success", {t: s for t, s in tasks.items() if s not in ("success", "skipped")}
    assert answered == []  # nothing left to approve: nobody is asked
    assert changed(before, fingerprint(world)) == []
