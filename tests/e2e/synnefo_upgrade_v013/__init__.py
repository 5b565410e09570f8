"""synnefo_upgrade_v013 on the lab's Synnefo 0.12 cluster (hosts astakos, cyclades, pithos,
ganeti1, ganeti2; databases snf_apps and snf_pithos on the lab's PostgreSQL): what the modules
share (the world, its fingerprint, the run's conf)."""

from __future__ import annotations

from lab.core import postgres
from lab.core.nodes import run_in_node
from lab.core.topology import host
from tests.helpers import files_of, started_lab

DAG_ID = "synnefo_upgrade_v013"
# Every gate of a run that changes something, in the order they ask.
APPROVE_ALL = {"users.approve_deletion": "Approve", "uuids.approve_merges": "Approve",
               "quotas.approve_quota_import": "Approve"}
# A restore gate asks only when a migration failed: answered, so such a run ends (failed)
# instead of waiting for an answer.
REJECT_RESTORES = {"migrate.approve_restore": "Reject", "uuids.approve_restore": "Reject"}
WEB = {"astakos": ("gunicorn", "apache2"), "cyclades": ("gunicorn", "snf-dispatcher", "apache2"),
       "pithos": ("gunicorn", "apache2")}
NODES = ("astakos", "cyclades", "pithos", "ganeti1", "ganeti2")
# What a run may write without changing the world: the remote jobs' state, the dumps and
# reports in the backup directory.
LIVE = ("var/lib/airlift/", "var/backups/")
SKIP_DIRS = ("tmp", "proc", "dev", "usr", "run", "var/run")


def synnefo_world(tmp_path_factory, **seed):
    """A started lab with the Synnefo world seeded; its connections in the environment."""
    return started_lab(tmp_path_factory.mktemp("lab"), world="synnefo", **seed)


def conf(**changes) -> dict:
    return {"astakos_host": host("astakos").address, "cyclades_host": host("cyclades").address,
            "pithos_host": host("pithos").address,
            "ganeti_nodes": [host("ganeti1").address, host("ganeti2").address],
            "db_host": host("astakos").address, "backup_dir": "/var/backups/synnefo", "dry_run": False, **changes}


def sh(lab, node: str, command: str) -> str:
    result = run_in_node(lab.node_root(node), command)
    assert result.returncode == 0, (node, command, result.stderr.decode())
    return result.stdout.decode()


def service_state(lab, node: str, service: str) -> int:
    """`service NAME status`: 0 running, 3 stopped."""
    return run_in_node(lab.node_root(node), f"service {service} status").returncode


def query(lab, database: str, statement: str, params=None) -> list[tuple]:
    """Rows of `statement` on the lab's `database` (snf_apps or snf_pithos)."""
    return postgres.query(lab.info["server"], lab.info[database], statement, params)


def table_checksums(lab) -> dict[str, str]:
    """{database.table: row count and md5 of its rows in order} of both databases."""
    sums = {}
    for database in ("snf_apps", "snf_pithos"):
        tables = [r[0] for r in query(lab, database, "SELECT table_name FROM information_schema.tables "
                                                     "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'")]
        for table in sorted(tables):
            count, digest = query(lab, database, f'SELECT count(*), md5(coalesce(string_agg(t::text, chr(10) '
                                                 f'ORDER BY t::text), \'\')) FROM "{table}" t')[0]
            sums[f"{database}.{table}"] = f"{count} {digest}"
    return sums


def node_files(lab) -> dict[str, str]:
    """{node/path: sha256 or link target} of the Synnefo hosts (the run's own state left out)."""
    return {f"{node}/{rel}": digest for node in NODES for rel, digest in
            files_of(lab.node_root(node), SKIP_DIRS, lambda rel: rel.startswith(LIVE)).items()}


def fingerprint(lab) -> dict[str, str]:
    return {**table_checksums(lab), **node_files(lab)}


def changed(before: dict, after: dict) -> list[str]:
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
