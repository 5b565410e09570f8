"""OpenVZ configs as the converter reads them, layouts, refusals, networks, the window and the
converter's report."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, time

import pytest

from openvz import containers, network, report, window

CONF = '''# Copyright (C) 2000-2011, Parallels, Inc. All rights reserved.
ONBOOT="yes"
PHYSPAGES="0:1048576"
SWAPPAGES="0:0"
DISKSPACE="2097152:2306867"
CPULIMIT="800"
VE_ROOT="/vz/root/$VEID"
VE_PRIVATE="/vz/private/$VEID/private"
OSTEMPLATE="debian-9.0-x86_64"
IP_ADDRESS="1.2.3.4 2001:db8::4"
HOSTNAME="vps"
HOSTNAME="vps101"
VE_LAYOUT="simfs"
garbage line
'''


def test_conf_is_read_as_the_converter_reads_it():
    conf = containers.parse_conf(CONF, 101)
    assert conf["VE_PRIVATE"] == "/vz/private/101/private" and conf["HOSTNAME"] == "vps101"
    assert list(conf).index("HOSTNAME") < list(conf).index("VE_LAYOUT")  # first position, last value
    assert containers.addresses(conf) == {"v4": ["1.2.3.4/32"], "v6": ["2001:db8::4/128"]}
    assert containers.disk_quota_bytes(conf) == 2306867 * 1024 and containers.cpu_limit(conf) == 800


@pytest.mark.parametrize("template, ok", [
    ("debian-9.0-x86_64", True), ("debian-8.0-x86_64", True), ("debian-7.0-x86_64", False),
    ("ubuntu-16.04-x86_64", True), ("ubuntu-14.04-x86_64", False), ("centos-7-x86_64", True),
    ("centos-6-x86_64", False), ("alpine-3.7-x86_64", True), ("alpine-3.5-x86_64", False),
    ("gentoo-20180101-x86_64", True), ("opensuse-42.3-x86_64", False),
])
def test_supported_distributions_are_the_runbooks_list(template, ok):
    conf = {"OSTEMPLATE": template, "VE_LAYOUT": "simfs"}
    assert (containers.refusals(conf) == []) is ok


def test_veth_networking_is_refused():
    assert "veth" in containers.refusals({"OSTEMPLATE": "debian-9.0", "VE_LAYOUT": "simfs",
                                          "NETIF": "ifname=eth0,mac=00:18:51:00:00:01"})[0]


def test_layouts():
    mounts = {"/vz/private": "vz/private", "/vz/private/104": "vz/private/104", "/vz/private/107": "vz/private/107"}
    assert containers.layout({"VE_PRIVATE": "/vz/private/104/private", "VE_LAYOUT": "simfs"}, mounts) == \
        {"layout": "zfs", "dataset": "vz/private/104"}
    assert "refused" in containers.layout({"VE_PRIVATE": "/vz/private/107", "VE_LAYOUT": "simfs"}, mounts)
    assert containers.layout({"VE_PRIVATE": "/vz/private/101", "VE_LAYOUT": "simfs"}, mounts) == {"layout": "simfs"}
    assert containers.layout({"VE_PRIVATE": "/vz/private/102", "VE_LAYOUT": "ploop:expanded"}, mounts) == \
        {"layout": "ploop"}


def test_networks_are_allocated_in_id_order_and_kept():
    pool4, pool6 = ipaddress.ip_network("10.100.0.0/29"), ipaddress.ip_network("fd00::/124")
    both = {"v4", "v6"}
    first = network.allocate([102, 101], {}, ["10.100.0.0/30"], pool4, pool6, {101: both, 102: set()})
    assert first == {101: {"v4": "10.100.0.4/30", "v6": "fd00::/126"}, 102: {}}
    with pytest.raises(ValueError, match="no free /30"):
        network.allocate([101, 102], {}, ["10.100.0.0/30"], pool4, pool6, {101: {"v4"}, 102: {"v4"}})
    again = network.allocate([101], {101: {"v4": "10.100.0.4/30"}}, [], pool4, pool6, {101: {"v4"}})
    assert again == {101: {"v4": "10.100.0.4/30"}}
    assert network.host_and_ct("10.100.0.4/30") == ("10.100.0.5/30", "10.100.0.6/30")


def test_window_over_midnight():
    start, end = time(22, 0), time(5, 0)
    inside = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)  # 00:30 in Prague
    assert window.opens(inside, start, end, "Europe/Prague") is None
    noon = datetime(2026, 12, 1, 11, 0, tzinfo=UTC)
    assert window.opens(noon, start, end, "Europe/Prague") == datetime(2026, 12, 1, 21, 0, tzinfo=UTC)


def test_converter_report():
    text = ("Parsing config\nConsumed config items:\n  PHYSPAGES = [0, 1048576]\n  HOSTNAME = \"vps\"\n\n"
            "Ignored config items:\n  DISKSPACE = \"2097152:2306867\"\n  CPUUNITS = 32320\n\n"
            "Migration stage successful\n")
    assert report.parse(text) == {"consumed": {"PHYSPAGES": "[0, 1048576]", "HOSTNAME": '"vps"'},
                                  "ignored": {"DISKSPACE": '"2097152:2306867"', "CPUUNITS": "32320"}}
