"""Checks of the pools and node addresses the vpsAdmin database holds, before they reach argv
lists, shell lines and /etc/fstab."""

from __future__ import annotations

import pytest

from vpsadmin import inventory

POOL = {"pool_id": 3, "filesystem": "vz", "role": 0, "server_name": "node1", "address": "172.16.0.11"}


@pytest.mark.parametrize("filesystem", ["vz", "tank/nas", "storage/vpsfree.cz/nas", "backup-1/b_2:x"])
def test_plain_pools_pass(filesystem):
    assert inventory.check_pool({**POOL, "filesystem": filesystem}) == []
    assert inventory.unsafe_pools([{**POOL, "filesystem": filesystem}]) == []


@pytest.mark.parametrize("filesystem", [
    "-o foo",                    # an option to zfs
    "-r",
    "tank/$(touch /tmp/x)",      # command substitution in a shell line
    "tank\nevil 1.2.3.4:/ /mnt nfs rw 0 0",  # another /etc/fstab entry
    "tank\n",                    # a trailing newline only (`$` in a pattern accepts it)
    "tank/a b",                  # another fstab field
    "tank/../etc", "tank/./x", "tank//x", "tank/", "/tank", "",
    "1tank",                     # a pool name starts with a letter
    "t" * 256, None, 7,
])
def test_hostile_filesystems_are_refused_naming_the_pool(filesystem):
    errors = inventory.check_pool({**POOL, "filesystem": filesystem})
    assert errors == [f"pools.filesystem of pool 3 (node 'node1') {filesystem!r} is not a ZFS dataset name (a pool "
                      "name starting with a letter, then /-separated letters, digits and _.:-)"]


@pytest.mark.parametrize("address", ["1.2.3.4; rm -rf /", "-oProxyCommand=sh", "1.2.3.4\n", "$(id)", "a b", "", None])
def test_hostile_addresses_are_refused_naming_the_pool(address):
    errors = inventory.check_pool({**POOL, "address": address})
    assert errors == [f"servers.server_ip4 of pool 3 (node 'node1') {address!r} is not a host name or IPv4 address"]


@pytest.mark.parametrize("pool_id", ["3; DROP TABLE pools", "3", None, True, 1.5])
def test_a_pool_id_must_be_a_number(pool_id):
    assert inventory.check_pool({**POOL, "pool_id": pool_id}) == [f"pools.id {pool_id!r} is not a number"]


@pytest.mark.parametrize("pools", [None, "vz", {"pool_id": 1}, [["vz"]]])
def test_a_pool_list_that_is_not_one_is_refused(pools):
    assert inventory.unsafe_pools(pools) == [f"the pools must be a list of pools, got {pools!r}"]


def test_every_problem_of_every_pool_is_listed():
    errors = inventory.unsafe_pools([POOL, {**POOL, "pool_id": 4, "filesystem": "-x", "address": "a;b"}])
    assert len(errors) == 2 and all("pool 4" in e for e in errors)
