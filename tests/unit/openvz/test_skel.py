"""The DAG's own skel for today's osctld: the converter's conversion of an OpenVZ config
(research vpsadminos.md §2.3) without the group and interconnect today's osctld refuses."""

from __future__ import annotations

import io
import tarfile

import pytest
import yaml

from openvz.containers import parse_conf
from openvz.skel import container_config, skel_archive

CONF = """
OSTEMPLATE="debian-9.0-x86_64"
HOSTNAME="ct104.example.org"
NAMESERVER="8.8.8.8 1.1.1.1"
IP_ADDRESS="1.2.3.4 2001:db8::1"
ONBOOT="yes"
PHYSPAGES="0:1048576"
SWAPPAGES="0:262144"
DEVICES="c:10:200:rw b:8:0:none"
CPULIMIT="200"
"""


def test_a_routed_container_is_converted_as_the_converter_does_without_an_interconnect():
    config = container_config(parse_conf(CONF, 104), arch="x86_64", veth_type="routed", bridge_link="lxcbr0")
    assert config == {
        "user": "default", "group": "/default", "distribution": "debian", "version": "9.0", "arch": "x86_64",
        "net_interfaces": [{"type": "routed", "name": "eth0", "hwaddr": None,
                            "ip_addresses": {"v4": ["1.2.3.4/32"], "v6": ["2001:db8::1/128"]},
                            "routes": {"v4": ["1.2.3.4/32"], "v6": ["2001:db8::1/128"]}}],
        "cgparams": [{"subsystem": "memory", "name": "memory.limit_in_bytes", "value": [4 << 30]},
                     {"subsystem": "memory", "name": "memory.memsw.limit_in_bytes", "value": [5 << 30]}],
        "devices": [{"type": "char", "major": "10", "minor": "200", "mode": "rw", "name": None, "inherit": True},
                    {"type": "block", "major": "8", "minor": "0", "mode": "", "name": None, "inherit": True}],
        "prlimits": [], "mounts": [], "autostart": {"priority": 10, "delay": 5}, "hostname": "ct104.example.org",
        "dns_resolvers": ["8.8.8.8", "1.1.1.1"], "nesting": False}


@pytest.mark.parametrize("conf, memory", [
    ('PHYSPAGES="0:4G"', [{"subsystem": "memory", "name": "memory.limit_in_bytes", "value": [4 << 30]}]),
    ('SWAPPAGES="0:1G"', []),  # swap without memory is ignored
    ('PHYSPAGES="0:unlimited"', [{"subsystem": "memory", "name": "memory.limit_in_bytes", "value": [0]}]),
])
def test_memory_units(conf, memory):
    config = container_config(parse_conf(f'OSTEMPLATE="centos-7-x86_64"\n{conf}\n', 1), arch="x86_64",
                              veth_type="routed", bridge_link="lxcbr0")
    assert config["cgparams"] == memory
    assert (config["hostname"], config["dns_resolvers"], config["autostart"], config["net_interfaces"]) == (
        "vps", None, None, [])


def test_a_bridged_container_is_linked():
    config = container_config(parse_conf('IP_ADDRESS="10.0.0.5"\n', 7), arch="x86_64", veth_type="bridge",
                              bridge_link="vmbr0")
    assert config["net_interfaces"] == [{"type": "bridge", "name": "eth0", "hwaddr": None, "link": "vmbr0",
                                         "ip_addresses": {"v4": ["10.0.0.5/32"], "v6": []}}]


def test_the_archive_is_what_receive_skel_reads():
    config = container_config(parse_conf(CONF, 104), arch="x86_64", veth_type="routed", bridge_link="lxcbr0")
    with tarfile.open(fileobj=io.BytesIO(skel_archive(104, config, now=1700000000))) as tar:
        files = {m.name: yaml.safe_load(tar.extractfile(m).read()) for m in tar if m.isfile()}
    assert files["metadata.yml"] == {"type": "skel", "format": "", "user": "default", "group": "/default",
                                     "container": "104", "datasets": [], "exported_at": 1700000000}
    assert files["config/group.yml"] == {"path": "/default", "cgparams": []}
    assert files["config/user.yml"]["uid_map"] == ["0:666000:65536"]
    assert files["config/container.yml"] == config
