"""The lab itself: nodes reached over real SSH with checked host keys, sandboxed file
systems, node-to-node ssh, SFTP, the node tool simulators and vpsAdmind 1.22."""

from __future__ import annotations

import json
import time

import paramiko
import pytest

from hooks.node import NodeCommandError, NodeHook
from lab.core.topology import host
from tests.helpers import new_lab, query, scalar, wait_for_empty_queue

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def lab(tmp_path_factory):


    lab = new_lab(tmp_path_factory.mktemp("lab"))
    lab.info = lab.seed()
    lab.start()
    yield lab
    lab.destroy()


def sh(nodes, node: str, command: str, **kwargs):
    return nodes.run(host(node).address, command, check=False, **kwargs)


def test_each_node_is_its_own_root(lab, nodes):
    assert sh(nodes, "node1", "hostname").stdout.strip() == "node1"
    sh(nodes, "node1", "mkdir -p /var/vpsadmin/mounts && echo one > /var/vpsadmin/mounts/x")
    assert (lab.node_root("node1") / "var/vpsadmin/mounts/x").read_text() == "one\n"
    assert not (lab.node_root("node2") / "var/vpsadmin").exists()
    assert sh(nodes, "node2", "test -e /var/vpsadmin/mounts/x").exit_status == 1
    assert sh(nodes, "node1", "touch /usr/bin/evil").exit_status != 0, "host /usr is read-only"


def test_exit_status_stdin_and_stderr(nodes):
    result = sh(nodes, "db", "cat; echo oops >&2; exit 7", stdin="hello\n")
    assert (result.exit_status, result.stdout, result.stderr) == (7, "hello\n", "oops\n")
    with pytest.raises(NodeCommandError, match=r"(?s)127\.0\.1\.3: `false` exited 1"):
        nodes.run(host("db").address, "false")


def test_unknown_host_key_is_rejected(lab, nodes, tmp_path, monkeypatch):
    other = tmp_path / "known_hosts"
    lines = lab.cfg.known_hosts.read_text().splitlines()
    other.write_text("\n".join(line for line in lines if not line.startswith(f"[{host('node1').address}]")))
    conn = json.loads(lab.env()["AIRFLOW_CONN_VPSADMIN_SSH"])
    conn["extra"]["known_hosts"] = str(other)
    monkeypatch.setenv("AIRFLOW_CONN_VPSADMIN_SSH", json.dumps(conn))
    strict = NodeHook()
    with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
        strict.run(host("node1").address, "true")
    assert strict.run(host("node2").address, "true").ok


def test_node_to_node_ssh_and_sftp(lab, nodes):
    result = sh(nodes, "node1", "ssh storage1 'cat /etc/hostname' && ssh 127.0.1.12 hostname")
    assert result.stdout.split() == ["storage1", "node2"], result.tail()
    sftp = nodes.connect_to(host("backup1").address).open_sftp()
    with sftp.open("/root/uploaded.txt", "w") as f:
        f.write("via sftp\n")
    assert "uploaded.txt" in sftp.listdir("/root")
    assert (lab.node_root("backup1") / "root/uploaded.txt").read_text() == "via sftp\n"


def test_service_simulator(nodes):
    assert sh(nodes, "node2", "service crond status").stdout.startswith("crond (pid")
    assert sh(nodes, "node2", "service nosuch status").exit_status == 1
    assert "unrecognized service" in sh(nodes, "node2", "service nosuch status").stderr
    sh(nodes, "node2", "service crond stop")
    stopped = sh(nodes, "node2", "service crond status")
    assert (stopped.exit_status, stopped.stdout.strip()) == (3, "crond is stopped")
    assert "[FAILED]" in sh(nodes, "node2", "service crond stop").stdout
    assert sh(nodes, "node2", "service crond start").exit_status == 0


def test_yum_rpm_and_nc(nodes):
    assert sh(nodes, "storage1", "rpm -q nc").stdout.strip() == "package nc is not installed"
    declined = sh(nodes, "storage1", "yum install nc", stdin="n\n")
    assert declined.exit_status == 1 and "Exiting on user Command" in declined.stdout
    assert sh(nodes, "storage1", "yum -y install nosuchpkg").exit_status == 1
    installed = sh(nodes, "storage1", "yum -y install nc")
    assert installed.exit_status == 0 and "Complete!" in installed.stdout
    assert "already installed" in sh(nodes, "storage1", "yum -y install nc").stdout
    assert sh(nodes, "storage1", "rpm -q nc").stdout.startswith("nc-1.84")
    assert sh(nodes, "storage1", f"nc -z {host('db').address} {nodes.port}").exit_status == 0


def test_crontab_simulator(nodes):
    assert sh(nodes, "db", "crontab -l").stderr.strip() == "no crontab for root"
    bad = sh(nodes, "db", "crontab -", stdin="not a cron line\n")
    assert bad.exit_status == 1 and "errors in crontab file" in bad.stderr
    assert sh(nodes, "db", "crontab -", stdin="MAILTO=x\n0 1 * * * true\n").exit_status == 0
    assert sh(nodes, "db", "crontab -l").stdout == "MAILTO=x\n0 1 * * * true\n"


def test_vz_and_mount_simulators(lab, nodes):
    running = lab.info["running_vps_ids"]
    veid = next(v for server, vpses in running.items() if int(server) == 1 for v in vpses)
    assert sh(nodes, "node1", f"vzctl status {veid}").stdout.strip() == f"CTID {veid} exist mounted running"
    assert sh(nodes, "node1", "vzctl status 4242").stdout.strip() == "CTID 4242 deleted unmounted down"
    listed = sh(nodes, "node1", "vzlist -H -o veid,status").stdout.split()
    assert str(veid) in listed and "running" in listed
    sh(nodes, "node1", "mkdir -p /tmp/m")
    assert sh(nodes, "node1", "mount -t nfs -o ro 1.2.3.4:/x /tmp/m").exit_status == 0
    assert "1.2.3.4:/x on /tmp/m type nfs (ro)" in sh(nodes, "node1", "mount").stdout
    assert sh(nodes, "node1", "umount /tmp/m").exit_status == 0
    gone = sh(nodes, "node1", "umount /tmp/m")
    assert gone.exit_status == 32 and "not mounted" in gone.stderr


def test_vpsadmind_runs_the_queue_only_while_its_service_runs(lab, nodes):
    wait_for_empty_queue(lab)
    server_id = host("node2").server["server_id"]
    sh(nodes, "node2", "service vpsadmind stop")
    query(lab, "INSERT INTO transactions (t_time, t_m_id, t_server, t_vps, t_type, t_success, t_done, t_param) "
               "VALUES (UNIX_TIMESTAMP(), 1, %s, 0, 2008, 0, 0, '{}')", (server_id,))
    time.sleep(3)
    assert scalar(lab, "SELECT COUNT(*) FROM transactions WHERE t_done = 0 AND t_server = %s", (server_id,)) == 1
    sh(nodes, "node2", "service vpsadmind start")
    wait_for_empty_queue(lab, timeout=30)
    done = query(lab, "SELECT t_success, t_output FROM transactions WHERE t_server = %s ORDER BY t_id DESC "
                      "LIMIT 1", (server_id,))
    assert done[0][0] == 1
