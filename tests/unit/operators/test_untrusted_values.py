"""Values read from the database or from XCom are checked where a step reads them, before any
command or statement runs: hostile pool filesystems and node addresses are refused with an
error naming the pool (by the inventory and again by every step mapped over pools), and the encoding swap drops only the scratch database it computes from
the settings, whatever its upstream's XCom says."""

from __future__ import annotations

import re

import pytest
from airflow.sdk.exceptions import AirflowFailException

from hooks.vpsadmin_db import VpsAdminDbHook
from operators.vpsadmin_upgrade.common import PoolInventoryOperator, WebMountsOperator
from operators.vpsadmin_upgrade.db import EncodingSwapOperator
from tests.helpers import detached_step, step_context
from vpsadmin import encoding

ROW = {"pool_id": 3, "filesystem": "tank", "role": 1, "label": "nas", "server_id": 21, "server_name": "storage1.prg",
       "address": "172.16.0.21"}
HOSTILE = [
    ("filesystem", "-o foo"),
    ("filesystem", "tank/$(touch /tmp/x)"),
    ("filesystem", "tank\n1.2.3.4:/ /mnt nfs rw 0 0"),
    ("address", "1.2.3.4; rm -rf /"),
    ("address", "-oProxyCommand=touch /tmp/x"),
]


class RecordingNodes:
    """A NodeHook that records every command and runs none."""

    def __init__(self):
        self.commands = []

    def run(self, host, command, **kwargs):
        self.commands.append((host, command))
        raise AssertionError(f"a command ran on {host}: {command!r}")

    def close(self):
        pass


def hook_reading(monkeypatch, rows: list[dict]) -> VpsAdminDbHook:
    hook = VpsAdminDbHook()
    monkeypatch.setattr(hook, "_read", lambda file, name, parameters=None: [dict(r) for r in rows])
    return hook


@pytest.mark.parametrize(("key", "value"), HOSTILE)
def test_the_pool_inventory_refuses_a_hostile_pool(monkeypatch, key, value):
    op = PoolInventoryOperator(task_id="pools")
    op.__dict__["db"] = hook_reading(monkeypatch, [ROW, {**ROW, "pool_id": 4, key: value}])
    with pytest.raises(AirflowFailException, match=re.escape(f"of pool 4 (node 'storage1.prg') {value!r} is not")):
        op.execute(step_context())


def test_the_pool_inventory_passes_plain_pools(monkeypatch):
    op = PoolInventoryOperator(task_id="pools", roles=("primary",))
    op.__dict__["db"] = hook_reading(monkeypatch, [ROW])
    assert op.execute(step_context()) == [{"pool_id": 3, "filesystem": "tank", "role": 1, "server_name": "storage1",
                                           "address": "172.16.0.21"}]


@pytest.mark.parametrize(("key", "value"), HOSTILE)
def test_the_web_mounts_refuse_a_hostile_pool_from_xcom_before_any_command(key, value):
    pools = [{"pool_id": 3, "filesystem": "tank", "role": 1, "server_name": "storage1", "address": "172.16.0.21",
              key: value}]
    op = WebMountsOperator(task_id="mounts", settings={"api_host": "127.0.1.2"}, pools=pools, subdataset="download",
                           mountpoint="/srv/vpsadmin/download")
    nodes = op.__dict__["nodes"] = RecordingNodes()
    with pytest.raises(AirflowFailException, match=re.escape(f"{value!r} is not")):
        op.execute(step_context())
    assert nodes.commands == []


class NoDb:
    def rows(self, statement, parameters=None):
        raise AssertionError(f"a statement ran: {statement}")


@pytest.mark.parametrize("operator", ["sharenfs", "rename_private", "stray_backups"])
@pytest.mark.parametrize(("key", "value"), HOSTILE)
def test_steps_mapped_over_pools_refuse_a_hostile_pool_from_xcom_before_any_command(operator, key, value):
    from operators.vpsadmin_upgrade.nodes import SharenfsOperator
    from operators.vpsadmin_upgrade.storage import RenamePrivateOperator, StrayBackupsOperator

    pool = {"pool_id": 3, "filesystem": "tank", "role": 1, "server_name": "storage1", "address": "172.16.0.21",
            key: value}
    op = {"sharenfs": lambda: SharenfsOperator(task_id="sharenfs", step="nodes.sharenfs", node=pool, settings={
              "subnets": ["10.0.0.0/24"], "sharenfs_hypervisor_pools": False}),
          "rename_private": lambda: RenamePrivateOperator(task_id="rename", step="storage.rename-private", node=pool,
                                                          new_name="private-data"),
          "stray_backups": lambda: StrayBackupsOperator(task_id="stray", step="db.remove-stray-vps", node=pool)}[operator]()
    nodes = op.__dict__["nodes"] = RecordingNodes()
    op.__dict__["db"] = NoDb()
    with pytest.raises(AirflowFailException, match=re.escape("refusing a pool no command may use:\n- ") + ".*"
                       + re.escape(f"{value!r} is not")):
        op.execute(step_context(dry_run=False))
    assert nodes.commands == []


@pytest.mark.parametrize(("key", "value"), HOSTILE)
def test_the_nas_umount_refuses_a_hostile_nas_pool_from_xcom_before_any_command(key, value):
    from operators.vpsadmin_upgrade.nas import NasUmountOperator

    pools = [{"pool_id": 3, "filesystem": "tank", "role": 1, "server_name": "storage1", "address": "172.16.0.21",
              key: value}]
    op = NasUmountOperator(task_id="umount", step="nas.umount", nas_pools=pools, sql="-- name: node_mounts\nSELECT 1",
                           node={"server_id": 11, "server_name": "node1", "address": "172.16.0.11"})
    nodes = op.__dict__["nodes"] = RecordingNodes()
    op.__dict__["db"] = NoDb()
    with pytest.raises(AirflowFailException, match=re.escape(f"{value!r} is not")):
        op.execute(step_context())
    assert nodes.commands == []


class FakeDb:
    """The database server as the encoding swap sees it: {database: tables}; runs the swap's
    statements on that model and records them."""

    database = "vpsadmin"

    def __init__(self, databases: dict[str, set[str]]):
        self.databases, self.statements = databases, []

    def tables(self, database, tables):
        return self.databases.get(database, set()) & set(tables)

    def text_columns(self, table):
        return ["id"], ["name"]

    def rows(self, statement, parameters=None):
        return [{"total_rows": 1, "missing": 0, "wrong": 0}]

    def run(self, statement, autocommit=False):
        self.statements.append(statement)
        names = re.findall(r"`(\w+)`", statement)
        if statement.startswith("RENAME TABLE"):
            for source_db, table, target_db, _ in zip(*[iter(names)] * 4, strict=True):
                self.databases[source_db].remove(table)
                self.databases.setdefault(target_db, set()).add(table)
        elif statement.startswith("DROP TABLE"):
            self.databases[names[0]].discard(names[1])
        elif statement.startswith("DROP DATABASE"):
            self.databases.pop(names[0], None)
        elif statement.startswith("CREATE DATABASE"):
            self.databases.setdefault(names[0], set())


def swap_step(db: FakeDb, settings_database: str = "vpsadmin", scratch_in_xcom: str = "victim"):
    op = detached_step(EncodingSwapOperator, task_id="encoding_swap", step="db.encoding",
                       settings={"database": settings_database, "db_host": "127.0.1.3"},
                       reload={"scratch": scratch_in_xcom, "dump": {"path": "/var/backups/vpsadmin/x.sql"}})
    op.__dict__["db"] = db
    return op


def test_the_swap_uses_and_drops_only_the_scratch_database_it_computes():
    tables = set(encoding.TABLES)
    db = FakeDb({"vpsadmin": set(tables) | {"servers"}, "vpsadmin_airlift_enc": set(tables),
                 "victim": set(tables) | {"keep"}})
    record = swap_step(db, scratch_in_xcom="victim").execute(step_context())
    assert record["applied"]
    assert db.databases["victim"] == tables | {"keep"}, "the database named in XCom is untouched"
    assert not any("victim" in s for s in db.statements), db.statements
    assert "vpsadmin_airlift_enc" not in db.databases and "vpsadmin_airlift_enc_old" not in db.databases
    assert db.databases["vpsadmin"] == tables | {"servers"}


def test_the_swap_refuses_settings_that_name_another_database():
    db = FakeDb({"mysql": {"user"}, "vpsadmin": set(encoding.TABLES)})
    with pytest.raises(AirflowFailException, match="the settings name database 'mysql', connection vpsadmin_db "
                                                   "'vpsadmin'; nothing is swapped or dropped"):
        swap_step(db, settings_database="mysql").execute(step_context())
    assert db.statements == []


@pytest.mark.parametrize(("field", "value"), [
    ("api_host", "1.2.3.4; rm -rf /"),
    ("api_host", "-oProxyCommand=touch /tmp/x"),
    ("reason", "expired\nEXECUTE=yes"),
    ("grace", "1209600; reboot"),
    ("new_expiration", -1),
    ("max_changes", 0),
])
def test_a_lifetimes_step_refuses_hostile_settings_before_any_command(field, value):
    """The trigger form's values reach rake's command line: refused (not retried) before a
    command runs, naming the value."""
    from operators.vpsadmin_scheduled.lifetimes import ProgressOperator

    settings = {"grace": 14 * 86400, "new_expiration": 14 * 86400, "reason": "Your account has expired.",
                "api_host": "127.0.1.2", field: value}
    op = detached_step(ProgressOperator, step="lifetimes.suspend-users", objects=["User"], states=["active"],
                       **settings)
    nodes = RecordingNodes()
    op.__dict__["nodes"] = nodes
    with pytest.raises(AirflowFailException, match=re.escape(repr(value)) if field != "max_changes" else "max_changes"):
        op.execute(step_context())
    assert nodes.commands == []
