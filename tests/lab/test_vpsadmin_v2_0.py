"""The lab's vpsAdmin 2.0 parts: vpsAdmind 2.0 (lab/vpsadmin/vpsadmind_v2_0.py) taking over a node from
1.22, its transaction handlers, vpsadmindctl over the node's socket, the API over HTTPS and
the integrity check (lab/vpsadmin/api.py, lab/vpsadmin/integrity.py)."""

from __future__ import annotations

import base64
import json
import ssl
import time
import urllib.request

import pytest

from lab.core.nodes import run_in_node
from tests.helpers import query, scalar


def sh(lab, node: str, command: str):
    result = run_in_node(lab.node_root(node), command)
    return result.returncode, result.stdout.decode(), result.stderr.decode()


def fire_chain(lab, transactions: list[tuple[int, int, int | None, dict]]) -> int:
    """One queued chain, each transaction depending on the one before: (t_type, server, vps, param)."""
    query(lab, "INSERT INTO transaction_chains (name, type, state, size, progress, created_at) "
               "VALUES ('lab', 'TransactionChains::Lab', 1, %s, 0, UTC_TIMESTAMP())",
          (len(transactions),))
    chain = scalar(lab, "SELECT MAX(id) FROM transaction_chains")
    previous = None
    for t_type, server, vps, param in transactions:
        query(lab, "INSERT INTO transactions (transaction_chain_id, t_server, t_vps, t_type, "
                   "t_depends_on, t_priority, t_success, t_done, t_param, t_m_id, t_urgent) "
                   "VALUES (%s, %s, %s, %s, %s, 0, 0, 0, %s, 1, 0)",
              (chain, server, vps, t_type, previous, json.dumps(param)))
        previous = scalar(lab, "SELECT MAX(t_id) FROM transactions")
    return chain


def wait_chain(lab, chain: int, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = scalar(lab, "SELECT state FROM transaction_chains WHERE id = %s", (chain,))
        if state in (2, 4, 5):
            return state
        time.sleep(0.3)
    raise AssertionError(f"chain {chain} still in state {state} after {timeout}s")


@pytest.fixture
def v2_0_node(lab_world):
    """A world brought to the final 2.0 schema as the upgrade does it (stray VPSes deleted, time
    zones loaded, `git pull` and `rake db:migrate` in /opt/vpsadminapi on the API host), with
    node1 on vpsAdmind 2.0 (`git pull` in /opt/vpsadmind; its service keeps running)."""
    from lab.core import mysql

    lab = lab_world()
    query(lab, "DELETE vps FROM vps LEFT JOIN servers ON vps_server = server_id WHERE server_id IS NULL")
    mysql.load_timezones(lab.cfg.mysql_kwargs())
    for node, command in (("vpsadmin", "cd /opt/vpsadminapi && git pull && rake db:migrate"),
                          ("node1", "cd /opt/vpsadmind && git pull")):
        rc, out, err = sh(lab, node, command)
        assert rc == 0, out + err
    return lab


def test_vpsadmind_v2_0_runs_chains_and_writes_mounts(v2_0_node):
    lab = v2_0_node
    vps = scalar(lab, "SELECT v.vps_id FROM vps v JOIN vps_status s ON s.vps_id = v.vps_id "
                      "WHERE v.vps_server = 1 AND s.vps_up = 1 ORDER BY v.vps_id LIMIT 1")
    mount = {"id": 7, "on_start_fail": "mount_later", "type": "dataset_remote",
             "src_node_addr": "127.0.1.21", "pool_fs": "storage/vpsfree.cz/nas",
             "dataset_name": "2", "dst": "/mnt/data", "mount_opts": "-t nfs -overs=3",
             "umount_opts": "-f", "mode": "rw"}
    root = lab.node_root("node1")
    (root / "var/vpsadmin/mounts").mkdir(parents=True)
    chain = fire_chain(lab, [(10001, 1, None, {}), (5301, 1, vps, {"mounts": [mount]}),
                             (5302, 1, vps, {"mounts": [mount]})])
    assert wait_chain(lab, chain) == 2
    rows = query(lab, "SELECT t_done, t_success, started_at IS NOT NULL, finished_at IS NOT NULL "
                      "FROM transactions WHERE transaction_chain_id = %s ORDER BY t_id", (chain,))
    assert [tuple(r) for r in rows] == [(1, 1, 1, 1)] * 3
    assert scalar(lab, "SELECT progress FROM transaction_chains WHERE id = %s", (chain,)) == 3
    assert scalar(lab, "SELECT vpsadmin_version FROM servers_status WHERE server_id = 1") == "2.0.0"
    mounts_file = (root / f"var/vpsadmin/mounts/{vps}.mounts").read_text()
    assert mounts_file.startswith('MOUNTS = [{"id"=>7, "on_start_fail"=>"mount_later"')
    script = (root / f"etc/vz/conf/{vps}.mount").read_text()
    assert f"load '/var/vpsadmin/mounts/{vps}.mounts'" in script
    assert (root / f"etc/vz/conf/{vps}.mount.backup").exists()  # the 1.22 script, kept
    mtab = (root / "var/lib/lab/mounts").read_text()
    assert f"127.0.1.21:/storage/vpsfree.cz/nas/2/private\t/vz/root/{vps}/mnt/data\tnfs\trw" in mtab
    # Mounting over the 1.22 NFS mount: "is busy or already mounted" is fine, as upstream.
    chain = fire_chain(lab, [(5302, 1, vps, {"mounts": [dict(mount, dst="/mnt/nas")]})])
    assert wait_chain(lab, chain) == 2

    # A failure fails the chain and its followers; its locks go.
    chain = fire_chain(lab, [(5302, 1, vps, {"mounts": [dict(mount, type="bogus")]}),
                             (10001, 1, None, {})])
    query(lab, "INSERT INTO resource_locks (resource, row_id, transaction_chain_id) "
               "VALUES ('Vps', %s, %s)", (vps, chain))
    assert wait_chain(lab, chain) == 4
    outputs = [json.loads(r[0]) for r in query(
        lab, "SELECT t_output FROM transactions WHERE transaction_chain_id = %s ORDER BY t_id", (chain,))]
    assert "unknown mount type 'bogus'" in outputs[0]["error"]
    assert outputs[1] == {"error": "Dependency failed"}
    assert scalar(lab, "SELECT COUNT(*) FROM resource_locks WHERE transaction_chain_id = %s", (chain,)) == 0


def test_vpsadmindctl(v2_0_node):
    lab = v2_0_node
    deadline = time.monotonic() + 20
    while sh(lab, "node1", "vpsadmindctl ping")[0] != 0:
        assert time.monotonic() < deadline, "vpsAdmind 2.0 never answered on node1"
        time.sleep(0.5)
    assert sh(lab, "node1", "vpsadmindctl ping")[1] == "pong\n"
    rc, out, _ = sh(lab, "node1", "vpsadmindctl status")
    assert rc == 0
    assert "   Version: 2.0.0\n     State: running\n" in out
    assert "Queue size: 0\n" in out and "       general  0 / 6 (+6) \n" in out
    ipv4 = scalar(lab, "SELECT COUNT(*) FROM vps_ip i JOIN vps v ON v.vps_id = i.vps_id "
                       "WHERE v.vps_server = 1 AND i.ip_v = 4")
    ipv6 = scalar(lab, "SELECT COUNT(*) FROM vps_ip i JOIN vps v ON v.vps_id = i.vps_id "
                       "WHERE v.vps_server = 1 AND i.ip_v = 6")
    rc, out, _ = sh(lab, "node1", "vpsadmindctl reinit fw")
    assert (rc, out) == (0, f"Reinitialized\nFirewall\n\t{ipv4} rules for IPv4\n\t{ipv6} rules for IPv6\n")
    rules = (lab.node_root("node1") / "var/lib/lab/iptables/accounting").read_text().splitlines()
    assert len(rules) == 2 + 6 * ipv4

    # A node still on 1.22 has no 2.0 socket.
    rc, _, err = sh(lab, "node2", "vpsadmindctl status")
    assert rc == 1
    assert err.endswith("Are you sure that vpsAdmind is running and configured properly?\n"
                        "Command error: Cannot connect to vpsAdmind\n")
    # stop: the daemon finishes, its service is stopped, the socket refuses.
    assert sh(lab, "node1", "vpsadmindctl stop")[1] == "Stop scheduled\n"
    deadline = time.monotonic() + 10
    while sh(lab, "node1", "service vpsadmind status")[0] != 3:
        assert time.monotonic() < deadline
        time.sleep(0.3)
    rc, _, err = sh(lab, "node1", "vpsadmindctl ping")
    assert rc == 1 and "Connection refused - connect(2) for /var/run/vpsadmind.sock" in err


def api(lab, method: str, path: str, body: dict | None = None, password: str = ":heslo1"):
    """A request to the lab's API (https, its certificate checked against the lab's CA)."""
    request = urllib.request.Request(
        f"https://127.0.1.2:{lab.cfg.api_port}{path}", method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json", "Authorization": "Basic " +
                 base64.b64encode(f"admin:{password}".encode()).decode()})
    try:
        with urllib.request.urlopen(request, timeout=10,
                                    context=ssl.create_default_context(cafile=lab.cfg.tls_ca)) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_api_integrity_check_of_vpses(v2_0_node):
    lab = v2_0_node
    rc, out, err = sh(lab, "vpsadmin", f"cd /opt/vpsadminapi && thin --address 127.0.1.2 --port {lab.cfg.api_port} "
                                       "--environment production -d start")
    assert rc == 0, out + err
    deadline = time.monotonic() + 15
    while True:
        try:
            status, body = api(lab, "GET", "/v1/")
            break
        except OSError:
            assert time.monotonic() < deadline, "the API never listened"
            time.sleep(0.5)
    assert status == 200 and body["status"] is True
    assert api(lab, "GET", "/v1/integrity_checks", password="wrong")[0] == 401

    # Plain `integrity_check new`: only Finalize runs, on the node that reported last.
    status, body = api(lab, "POST", "/v1/integrity_checks", {"integrity_check": {}})
    assert status == 200, body
    plain = body["response"]["integrity_check"]["id"]
    assert scalar(lab, "SELECT COUNT(*) FROM transactions t JOIN transaction_chains c ON "
                       "c.id = t.transaction_chain_id JOIN transaction_chain_concerns cc ON "
                       "cc.transaction_chain_id = c.id WHERE cc.row_id = %s", (plain,)) == 1

    # node1 runs 2.0: a VPS check of node1 alone (node2 is still 1.22 and would not run it).
    status, body = api(lab, "POST", "/v1/integrity_checks", {"integrity_check": {"vps": True, "node": 1}})
    assert status == 200, body
    check = body["response"]["integrity_check"]["id"]
    deadline = time.monotonic() + 30
    while (result := api(lab, "GET", f"/v1/integrity_checks/{check}")[1]["response"]["integrity_check"]
           )["finished_at"] is None:
        assert time.monotonic() < deadline, query(
            lab, "SELECT t_id, t_type, t_server, t_done, t_success, t_output FROM transactions "
                 "WHERE transaction_chain_id > 0")
        time.sleep(0.5)
    vpses = scalar(lab, "SELECT COUNT(*) FROM vps WHERE vps_server = 1")
    assert result["checked_objects"] >= vpses
    facts = api(lab, "GET", f"/v1/integrity_facts?integrity_fact[integrity_check]={check}"
                            "&integrity_fact[name]=exists")[1]["response"]["integrity_facts"]
    vps_exists = [f for f in facts if f["integrity_object"]["class_name"] == "Vps"]
    assert len(vps_exists) == vpses and all(f["status"] == "true" for f in vps_exists)
    assert vps_exists[0]["expected_value"] == "--- true\n...\n"
    # the world's configs carry no PHYSPAGES: memory is unlimited on the node, a false fact
    false = api(lab, "GET", f"/v1/integrity_facts?integrity_fact[integrity_check]={check}"
                            "&integrity_fact[status]=false&integrity_fact[name]=memory")[1]
    assert false["response"]["integrity_facts"], false
    assert result["status"] == "broken"
