"""The v2.0 world a whole vpsadmin_upgrade_v2 run leaves on a lab, asserted the same way after
a dag.test() run (test_whole_upgrade) and after a run through the production shape
(tests/e2e/deployment)."""

from __future__ import annotations

from collections import defaultdict

from lab.core.nodes import run_in_node
from tests.e2e.vpsadmin_upgrade_v2 import NAS_ROOT, expected_after_move, nas_files, real_run_conf
from tests.e2e.vpsadmin_upgrade_v2.integrity import false_facts
from tests.helpers import query, scalar

FINAL_VERSION = "20151213173722"
BACKUP_ROOT = "backup/vpsfree.cz/backup"
MAIL_TEMPLATES = {"vps_config_change", "vps_resources_change", "user_create", "user_suspend", "user_resume",
                  "user_soft_delete", "user_revive", "expiration_user_active", "snapshot_download_ready",
                  "daily_report", "vps_suspend", "vps_resume"}

# Rows the cluster writes while it runs: daemon status, and the integrity check each run starts.
LIVE_TABLES = ("servers_status", "integrity_checks", "integrity_objects", "integrity_facts",
               "transaction_chains", "transaction_chain_concerns", "transactions", "resource_locks",
               "vps_status")
LIVE_NODE_FILES = ("var/log/", "var/run/", "var/lib/lab/vpsadmind")


def live_changes_left_out(changes: list[str]) -> list[str]:
    """diff_states()'s changes without those a running cluster makes by itself."""
    return [c for c in changes if not c.startswith(tuple(f"tables: {t}" for t in LIVE_TABLES))
            and not any(f"/{p}" in c for p in LIVE_NODE_FILES)]


def zfs(lab, node: str, *args: str) -> list[str]:
    result = run_in_node(lab.node_root(node), "zfs " + " ".join(args))
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.decode().splitlines() if line]


def expected_resources(lab) -> dict[int, dict[str, int]]:
    """Hand-computed Production resources per member from the v1.22 rows: configs named
    ram-vswap-<N>g-swap-0g, swap-<N>g, cpu-<N>c-<L>, hdd-<N>g and the VPS's addresses, summed
    over the member's VPSes on existing nodes (stray ones are deleted by the upgrade)."""
    totals: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for m_id, name in query(lab, """
            SELECT v.m_id, c.name FROM vps v
            INNER JOIN servers s ON s.server_id = v.vps_server
            INNER JOIN vps_has_config h ON h.vps_id = v.vps_id
            INNER JOIN config c ON c.id = h.config_id"""):
        if name.startswith("ram-vswap-") and name.endswith("g-swap-0g"):
            totals[m_id]["memory"] += int(name[len("ram-vswap-"):-len("g-swap-0g")]) * 1024
        elif name.startswith("swap-") and name.endswith("g"):
            totals[m_id]["swap"] += int(name[5:-1]) * 1024
        elif name.startswith("cpu-") and "c-" in name:
            totals[m_id]["cpu"] += int(name[4:name.index("c-")])
        elif name.startswith("hdd-") and name.endswith("g"):
            totals[m_id]["diskspace"] += int(name[4:-1]) * 1024
    for m_id, version, count in query(lab, """
            SELECT v.m_id, ip.ip_v, COUNT(*) FROM vps_ip ip INNER JOIN vps v ON v.vps_id = ip.vps_id
            INNER JOIN servers s ON s.server_id = v.vps_server GROUP BY v.m_id, ip.ip_v"""):
        totals[m_id][f"ipv{version}"] += int(count)
    return totals


def world_before(lab) -> dict:
    """What the v1.22 world holds that the v2.0 world is checked against."""
    files_before = nas_files(lab)
    assert any("/." in f or f.split("/", 1)[1].startswith(".") for f in files_before), "seeded hidden files"
    resources = expected_resources(lab)
    backups = {vps_id: count for vps_id, count in query(
        lab, "SELECT b.vps_id, COUNT(*) FROM vps_backups b INNER JOIN vps v ON v.vps_id = b.vps_id "
             "INNER JOIN servers s ON s.server_id = v.vps_server GROUP BY b.vps_id")}
    members = scalar(lab, "SELECT COUNT(*) FROM members")
    hypervisor_sharenfs = {node: zfs(lab, node, "get", "-H", "-o", "value,source", "sharenfs", "vz/private")[0]
                           for node in ("node1", "node2")}
    return {"files": files_before, "resources": resources, "backups": backups, "members": members,
            "hypervisor_sharenfs": hypervisor_sharenfs}


def assert_v2_world(lab, before: dict, check: dict) -> None:
    """The world after a whole upgrade (real_run_conf(members_expiration=True)); `check` is
    the record (XCom) of the run's finalize.integrity_check."""
    files_before, resources, backups = before["files"], before["resources"], before["backups"]
    members, hypervisor_sharenfs = before["members"], before["hypervisor_sharenfs"]
    # the scheduled DAGs replace the lifetimes and report cron jobs: not in cron
    cron = run_in_node(lab.node_root("vpsadmin"), "crontab -l").stdout.decode()
    assert [line.split()[5:] for line in cron.splitlines() if line and not line.startswith("#")
            and "=" not in line.split()[0]] == [["ruby", "/opt/vpsadmind/bin/savetransfers.rb"], [
                "mysqldump", f"-u{lab.cfg.app_user}", f"-p{lab.cfg.app_password}", lab.cfg.vpsadmin_db, "|", "gzip",
                ">", "/root/nightly.sql.gz"]]
    # schema, environments, servers
    assert scalar(lab, "SELECT MAX(version) FROM schema_migrations") == FINAL_VERSION
    envs = dict(query(lab, "SELECT label, id FROM environments"))
    assert set(envs) == {"Production", "Storage"}
    assert scalar(lab, "SELECT user_ip_ownership FROM environments WHERE label = 'Production'") == 1
    assert dict(query(lab, "SELECT server_name, environment_id FROM servers")) == {
        "vpsadmin": envs["Production"], "node1": envs["Production"], "node2": envs["Production"],
        "storage1": envs["Storage"], "backup1": envs["Storage"]}
    assert scalar(lab, "SELECT COUNT(*) FROM vps WHERE confirmed <> 1") == 0
    assert scalar(lab, "SELECT COUNT(*) FROM default_object_cluster_resources") == 2 * 2 * 6
    # IP owners
    owned = query(lab, "SELECT ip.user_id, v.m_id FROM vps_ip ip INNER JOIN vps v ON v.vps_id = ip.vps_id")
    assert owned and all(user == owner for user, owner in owned)
    # cluster resources of some seeded users, as computed by hand above
    minimum = {"memory": 4096, "swap": 0, "cpu": 8, "diskspace": 61440, "ipv4": 1, "ipv6": 32}
    got = defaultdict(dict)
    for m_id, name, value in query(lab, """
            SELECT u.user_id, r.name, u.value FROM user_cluster_resources u
            INNER JOIN cluster_resources r ON r.id = u.cluster_resource_id
            WHERE u.environment_id = %s""", (envs["Production"],)):
        got[m_id][name] = int(value)
    checked = sorted(resources)[:4]
    assert checked
    for m_id in checked:
        expected = {r: max(resources[m_id].get(r, 0), minimum[r]) for r in minimum}
        assert got[m_id] == expected, (m_id, got[m_id], expected)
    # the translated configs are gone from the VPSes (rows of the deleted stray VPSes stay: the
    # runbook's DELETE leaves them, and nothing reads them)
    assert scalar(lab, "SELECT COUNT(*) FROM vps_has_config h INNER JOIN config c ON c.id = h.config_id "
                       "INNER JOIN vps v ON v.vps_id = h.vps_id "
                       "WHERE c.name LIKE 'ram-vswap-%%' OR c.name LIKE 'hdd-%%'") == 0
    # environment configs
    assert scalar(lab, "SELECT COUNT(*) FROM environment_user_configs") == members * len(envs)
    # pools
    for pool_fs, node in query(lab, "SELECT p.filesystem, s.server_name FROM pools p "
                                    "INNER JOIN servers s ON s.server_id = p.node_id"):
        assert set(zfs(lab, node, "list", "-H", "-o", "name", f"{pool_fs}/vpsadmin/mount",
                       f"{pool_fs}/vpsadmin/download")) == {f"{pool_fs}/vpsadmin/mount",
                                                            f"{pool_fs}/vpsadmin/download"}
    # sharenfs: NAS and backup pools allow read-write exactly the given networks (v1.22's
    # rw=@172.16.0.0/23 on the NAS is gone), their other options kept; hypervisor pools untouched
    rw = "rw=" + ":".join(f"@{net}" for net in real_run_conf()["sharenfs_subnets"])
    assert {(node, pool_fs): zfs(lab, node, "get", "-H", "-o", "value,source", "sharenfs", pool_fs)[0]
            for pool_fs, node in query(lab, "SELECT p.filesystem, s.server_name FROM pools p "
                                            "INNER JOIN servers s ON s.server_id = p.node_id")} == {
        ("node1", "vz/private"): hypervisor_sharenfs["node1"], ("node2", "vz/private"): hypervisor_sharenfs["node2"],
        ("storage1", NAS_ROOT): f"{rw},no_root_squash,no_subtree_check\tlocal",
        ("backup1", BACKUP_ROOT): f"{rw},ro=@172.16.0.0/23,no_root_squash,no_subtree_check\tlocal"}
    # no dataset named private
    assert scalar(lab, "SELECT COUNT(*) FROM datasets WHERE name = 'private'") == 0
    assert not [n for n in zfs(lab, "storage1", "list", "-H", "-r", "-o", "name", "storage")
                if n.endswith("/private")]
    # backups: tree/branch layout in ZFS, registered once
    snapshots = zfs(lab, "backup1", "list", "-H", "-r", "-t", "snapshot", "-o", "name", BACKUP_ROOT)
    by_vps = defaultdict(list)
    for name in snapshots:
        dataset, _ = name.split("@")
        assert "/tree.0/branch-" in dataset and dataset.endswith(".0"), name
        by_vps[int(dataset[len(BACKUP_ROOT) + 1:].split("/")[0])].append(name)
    assert {v: len(s) for v, s in by_vps.items()} == backups
    assert scalar(lab, "SELECT COUNT(*) FROM dataset_trees") == len(backups)
    assert scalar(lab, "SELECT COUNT(*) FROM branches") == len(backups)
    assert scalar(lab, "SELECT COUNT(*) FROM snapshot_in_pool_in_branches") == sum(backups.values())
    # NAS data: every file under private/ with its checksum
    files_after = nas_files(lab)
    for path, digest in files_before.items():
        moved = expected_after_move(path, "private-data")
        assert files_after.get(moved) == digest, (path, moved)
    # the snapshot taken before the move was there until the NAS was remounted, then released
    assert not [n for n in zfs(lab, "storage1", "list", "-H", "-r", "-t", "snapshot", "-o", "name", "storage")
                if n.endswith("@airlift-before-nas-move")]
    # mount scripts regenerated for every VPS with mounts
    for vps_id, server in query(lab, "SELECT DISTINCT v.vps_id, s.server_name FROM mounts m "
                                     "INNER JOIN vps v ON v.vps_id = m.vps_id "
                                     "INNER JOIN servers s ON s.server_id = v.vps_server"):
        assert (lab.node_root(server) / f"var/vpsadmin/mounts/{vps_id}.mounts").exists(), vps_id
        assert (lab.node_root(server) / f"etc/vz/conf/{vps_id}.mount").exists(), vps_id
    config = (lab.node_root("vpsadmin") / "var/www/vpsadmin/config.php").read_text()
    assert f"define('API_URL', 'https://127.0.1.2:{lab.cfg.api_port}');" in config
    assert f"define('ENV_VPS_PRODUCTION_ID', {envs['Production']});" in config
    # mail templates, integrity
    assert MAIL_TEMPLATES <= {n for (n,) in query(lab, "SELECT name FROM mail_templates")}
    assert scalar(lab, "SELECT COUNT(*) FROM integrity_checks WHERE finished_at IS NOT NULL") == 1
    assert scalar(lab, "SELECT COUNT(*) FROM integrity_facts WHERE status = 0 AND severity = 2") == 0
    # the check the run started (its record in XCom) finds nothing false, whatever the severity
    facts = false_facts(lab, check["check_id"])
    assert check["summary"]["false_facts"] == len(facts) == 0, [
        f"{f['class_name']} {f['dataset']} {f['property']}.{f['name']}: {f['message']}" for f in facts]
    # the deleted stray VPSes' backups are kept, set aside out of the backup pool's tree
    stray = lab.info["stray_vps_ids"]
    assert zfs(lab, "backup1", "list", "-H", "-d", "1", "-o", "name", f"{BACKUP_ROOT}.airlift-stray") == [
        f"{BACKUP_ROOT}.airlift-stray", *(f"{BACKUP_ROOT}.airlift-stray/{v}" for v in sorted(stray))]
