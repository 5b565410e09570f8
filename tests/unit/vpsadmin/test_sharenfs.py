"""sharenfs_subnets: only IPv4 networks no broader than /16 reach `zfs set sharenfs=`, and a
pool's sharenfs then allows read-write exactly those networks, its other options kept."""

from __future__ import annotations

import pytest

from vpsadmin import configs, params


@pytest.mark.parametrize(("value", "message"), [
    ("0.0.0.0/0", "is broader than /16"),
    ("10.0.0.0/8", "is broader than /16"),
    ("172.16.0.0/12", "is broader than /16"),
    ("::/0", "is an IPv6 network"),
    ("2001:db8::/48", "is an IPv6 network"),
    ("10.0.0.1/24", "has host bits set"),
    ("10.0.0.0/33", "is not an IPv4 network"),
    ("300.0.0.0/24", "is not an IPv4 network"),
    ("010.0.0.0/24", "is not an IPv4 network"),
    ("10.0.0.0", "is not an IPv4 network (a.b.c.d/n)"),
    ("10.0.0.0/255.255.255.0", "is not an IPv4 network (a.b.c.d/n)"),
    ("10.0.0.0/24,no_root_squash", "is not an IPv4 network (a.b.c.d/n)"),
    ("10.0.0.0/24 -o x", "is not an IPv4 network (a.b.c.d/n)"),
    (24, "is not an IPv4 network (a.b.c.d/n)"),
])
def test_broad_or_malformed_networks_are_refused(value, message):
    errors = params.check_subnets("sharenfs_subnets", ["10.1.0.0/16", value])
    assert len(errors) == 1 and message in errors[0] and "sharenfs_subnets" in errors[0], errors


def test_narrow_networks_pass():
    assert params.check_subnets("sharenfs_subnets", ["10.1.0.0/16", "172.16.0.0/23", "127.0.1.16/28",
                                                     "192.0.2.7/32"]) == []
    assert params.check_subnets("sharenfs_subnets", []) == []  # whether one is needed: preflight decides
    assert params.check_subnets("sharenfs_subnets", "10.0.0.0/24") != []


def test_check_upgrade_refuses_the_whole_internet():
    errors = params.check_upgrade({"sharenfs_subnets": ["0.0.0.0/0"]}, [])
    assert errors == ["sharenfs_subnets: 0.0.0.0/0 is broader than /16; sharenfs would give root on 4,294,967,296 "
                      "addresses read-write access to every pool: name the nodes' own networks"]


SUBNETS = ["10.0.0.0/24", "10.0.1.0/24"]


@pytest.mark.parametrize(("current", "expected"), [
    # an earlier, broader grant goes; the other options stay
    ("rw=@0.0.0.0/0,no_root_squash,no_subtree_check", "rw=@10.0.0.0/24:@10.0.1.0/24,no_root_squash,no_subtree_check"),
    ("rw=@172.16.0.0/23,no_root_squash", "rw=@10.0.0.0/24:@10.0.1.0/24,no_root_squash"),
    # a bare rw shares with every host
    ("rw,no_root_squash", "rw=@10.0.0.0/24:@10.0.1.0/24,no_root_squash"),
    ("on", "rw=@10.0.0.0/24:@10.0.1.0/24,no_root_squash,no_subtree_check"),
    # read-only grants are other options: kept
    ("ro=@172.16.0.0/23,no_root_squash", "rw=@10.0.0.0/24:@10.0.1.0/24,ro=@172.16.0.0/23,no_root_squash"),
    # the networks already there keep their order
    ("rw=@10.0.1.0/24:@10.0.0.0/24,sync", "rw=@10.0.1.0/24:@10.0.0.0/24,sync"),
])
def test_sharenfs_allows_exactly_the_subnets(current, expected):
    assert configs.sharenfs(current, SUBNETS) == expected
    assert configs.sharenfs(expected, SUBNETS) == expected
    assert configs.sharenfs(expected, list(reversed(SUBNETS))) == expected


def test_sharenfs_without_subnets_is_an_error():
    with pytest.raises(ValueError, match="at least one subnet"):
        configs.sharenfs("off", [])
