"""What the end-to-end tests share: running a DAG with dag.test(), answering its approval
gates through the same code path as the REST API, and fingerprints of a lab world."""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from contextlib import closing, contextmanager
from pathlib import Path

import MySQLdb

# Node paths a run may legitimately change without changing the world: the DB host's backup
# directory gets one dump per real run, and var/lib/airlift/jobs keeps the state of the
# steps' remote jobs (hooks/node.py).
VOLATILE = ("tmp", "proc", "dev", "usr", "var/backups", "var/run", "var/lib/airlift")


def new_lab(directory: Path, **options):
    """A lab in `directory` with ports and a database name of its own (so labs of tests that
    run at once never meet); `options` go to Lab.create."""
    import uuid

    from lab import Lab
    from lab.core.config import free_port

    return Lab.create(directory, **{"ssh_port": free_port(), "api_port": free_port(),
                                    "vpsadmin_db": f"airlift_t_{uuid.uuid4().hex[:10]}", **options})


def synnefo_config(tmp_path_factory):
    """A lab configuration of its own (database names) without a lab: a Synnefo world's
    databases need none (lab.synnefo.world.seed)."""
    import uuid

    from lab.core.config import LabConfig

    return LabConfig(lab_dir=str(tmp_path_factory.mktemp("snf")), vpsadmin_db=f"airlift_t_{uuid.uuid4().hex[:10]}")


MIGRATED_DB = "migrated.db"  # beside the session's airflow.db (conftest airflow_db)


def standalone_home(airflow_db: Path, directory: Path) -> Path:
    """An AIRFLOW_HOME for a test's own `airflow standalone`: the session's migrated database
    as it was before any test ran a DAG in it."""
    import shutil

    home = directory / "airflow"
    home.mkdir()
    shutil.copy(airflow_db / MIGRATED_DB, home / "airflow.db")
    return home


@contextmanager
def started_lab(directory: Path, **seed):
    """A lab in `directory` (own database name and ports), seeded with `seed` (Lab.seed's
    arguments), started, its connections exported as AIRFLOW_CONN_* until it is destroyed on
    leaving; `lab.info` is what the seeding returned. For module-scoped worlds (a test's own
    lab is `lab_world`, with monkeypatch)."""
    lab = new_lab(directory)
    saved = {name: os.environ.get(name) for name in lab.env()}
    try:
        lab.info = lab.seed(**seed)
        lab.start()
        os.environ.update(lab.env())
        yield lab
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        lab.destroy()


def db_conn(lab):
    return MySQLdb.connect(db=lab.cfg.vpsadmin_db, charset="utf8mb4", **lab.cfg.mysql_kwargs())


def query(lab, sql: str, params=None) -> list[tuple]:
    with closing(db_conn(lab)) as conn, closing(conn.cursor()) as cur:
        cur.execute(sql, params)
        rows = list(cur.fetchall())
        conn.commit()
        return rows


def scalar(lab, sql: str, params=None):
    return query(lab, sql, params)[0][0]


def wait_for_empty_queue(lab, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while scalar(lab, "SELECT COUNT(*) FROM transactions WHERE t_done = 0"):
        if time.monotonic() > deadline:
            raise AssertionError("the lab's daemons did not drain the transaction queue")
        time.sleep(0.5)


def server_id(lab, node: str) -> int:
    return scalar(lab, "SELECT server_id FROM servers WHERE server_name LIKE %s", (f"{node}.%",))


def vpsadmind(lab, node: str, action: str) -> None:
    """`service vpsadmind start|stop` on a lab node."""
    from lab.core.nodes import run_in_node

    assert run_in_node(lab.node_root(node), f"service vpsadmind {action}").returncode == 0


def table_checksums(lab, tables: list[str] | None = None) -> dict[str, tuple]:
    """{table: (engine, collation, CHECKSUM TABLE)} of the world database."""
    rows = query(lab, "SELECT TABLE_NAME, ENGINE, TABLE_COLLATION FROM information_schema.tables "
                      "WHERE TABLE_SCHEMA = %s", (lab.cfg.vpsadmin_db,))
    result = {}
    for name, engine, collation in rows:
        if tables is None or name in tables:
            checksum = query(lab, f"CHECKSUM TABLE `{name}` EXTENDED")[0][1]
            result[name] = (engine, collation, checksum)
    return result


def files_of(root: Path, skip_dirs=VOLATILE, leave_out=lambda rel: False) -> dict[str, str]:
    """{path relative to root: sha256 of content or link target} of a tree, not descending
    into `skip_dirs` (relative paths) and without the files `leave_out(rel)` is true for."""
    digest = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root)
        dirnames[:] = [d for d in dirnames if str(rel_dir / d) not in skip_dirs]
        for name in filenames:
            path, rel = Path(dirpath) / name, str(rel_dir / name)
            if leave_out(rel):
                continue
            digest[rel] = ("-> " + os.readlink(path) if path.is_symlink()
                           else hashlib.sha256(path.read_bytes()).hexdigest())
    return digest


def node_files(lab) -> dict[str, str]:
    """{node/path: sha256 of content or link target} of every node, volatile paths left out."""
    return {f"{node_dir.name}/{rel}": digest for node_dir in sorted(lab.cfg.nodes_dir.iterdir())
            for rel, digest in files_of(node_dir).items()}


def world_state(lab) -> dict:
    return {"tables": table_checksums(lab), "nodes": node_files(lab),
            "timezones": scalar(lab, "SELECT COUNT(*) FROM mysql.time_zone_name")}


def diff_states(before: dict, after: dict) -> list[str]:
    changed = []
    for part in ("tables", "nodes"):
        for key in sorted(set(before[part]) | set(after[part])):
            if before[part].get(key) != after[part].get(key):
                changed.append(f"{part}: {key}")
    if before["timezones"] != after["timezones"]:
        changed.append("mysql.time_zone_name")
    return changed


class HitlResponder(threading.Thread):
    """Answers approval gates of a DAG as an operator would in the UI: through the REST
    API's own handler (update_hitl_detail), against the same metadata database.
    `answers` maps task_id to the option; `on_gate(task_id)` runs just before answering."""

    def __init__(self, dag_id: str, answers: dict[str, str], on_gate=None):
        super().__init__(daemon=True)
        self.dag_id, self.answers, self.on_gate = dag_id, answers, on_gate
        self.answered: list[tuple[str, str]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
        from airflow.api_fastapi.core_api.datamodels.hitl import UpdateHITLDetailPayload
        from airflow.api_fastapi.core_api.routes.public.hitl import update_hitl_detail
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session
        from airflow.utils.state import TaskInstanceState
        from sqlalchemy import select

        user = SimpleAuthManagerUser(username="operator", role="admin")
        while not self.stopping.wait(0.5):
            with create_session() as session:
                waiting = session.scalars(select(TaskInstance).where(
                    TaskInstance.dag_id == self.dag_id,
                    TaskInstance.state == TaskInstanceState.AWAITING_INPUT)).all()
                for ti in waiting:
                    option = self.answers.get(ti.task_id)
                    if option is None:
                        continue
                    if self.on_gate:
                        self.on_gate(ti.task_id)
                    update_hitl_detail(
                        dag_id=ti.dag_id, dag_run_id=ti.run_id, task_id=ti.task_id,
                        update_hitl_detail_payload=UpdateHITLDetailPayload(chosen_options=[option],
                                                                           params_input={}),
                        user=user, session=session, map_index=ti.map_index)
                    self.answered.append((ti.task_id, option))

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.join(timeout=10)


def run_dag(dag_id: str, conf: dict | None, answers: dict[str, str] | None = None, on_gate=None,
            mark_success_pattern: str | None = None, task_regex: str | None = None, adjust=None, run_after=None):
    """Run a DAG with dag.test() (tasks in this process, against the lab) and return
    (dag_run state, {task_id or task_id[label]: state}, answered gates). Tasks whose id
    matches `mark_success_pattern` are marked successful without running; with `task_regex`
    only the matching tasks and their upstream run (DAG.partial_subset); `adjust(dag)` may
    change the parsed DAG first (e.g. retry delays). `run_after`: the run is the one the
    schedule makes at that time (its logical date too), with the DAG's default params when
    `conf` is None."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils.session import create_session

    dag = DagBag(dag_folder=str(Path(__file__).resolve().parents[1] / "dags")).get_dag(dag_id)
    if task_regex:  # partial_subset takes a list of ids (a string is a substring, not a regex)
        dag = dag.partial_subset(task_ids=[t.task_id for t in dag.tasks if re.search(task_regex, t.task_id)],
                                 include_upstream=True)
    if adjust:
        adjust(dag)
    with HitlResponder(dag_id, answers or {}, on_gate) as responder:
        dates = {"run_after": run_after, "logical_date": run_after} if run_after else {}
        dag_run = dag.test(run_conf=conf, mark_success_pattern=mark_success_pattern, **dates)
    with create_session() as session:
        from airflow.models.dagrun import DagRun

        dr = session.get(DagRun, dag_run.id)
        states = {}
        for ti in dr.get_task_instances(session=session):
            # mapped instances by the label the UI shows (map_index_template), else their index
            key = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.rendered_map_index or ti.map_index}]"
            states[key] = ti.state
        return dr.state, states, responder.answered


def detached_step(operator_class, product: str = "vpsadmin", **kwargs):
    """A step operator as a DAG of `product` holds it after parsing (its SQL and script files
    resolved), to execute outside a DAG run: `op.execute({"params": {"dry_run": False}})`."""
    from airflow.sdk import DAG

    from airlift.sql import template_searchpath

    # one DAG id: a retry of the same step (a second detached_step) is the same job on a node
    with DAG(f"detached_{product}", schedule=None, template_searchpath=template_searchpath(product)):
        op = operator_class(**kwargs)
    op.resolve_template_files()
    return op


def rendered_fields(dag_id: str, task_id: str, map_index: int = -1) -> dict:
    """What the UI's Rendered Template tab shows for a task of the latest run of a DAG."""
    from airflow.models.dagrun import DagRun
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        run_id = session.scalars(select(DagRun.run_id).where(DagRun.dag_id == dag_id)
                                 .order_by(DagRun.id.desc()).limit(1)).one()
        row = session.scalars(select(RenderedTaskInstanceFields).where(
            RenderedTaskInstanceFields.dag_id == dag_id, RenderedTaskInstanceFields.run_id == run_id,
            RenderedTaskInstanceFields.task_id == task_id, RenderedTaskInstanceFields.map_index == map_index)).one()
        return row.rendered_fields


class StepTi:
    """The parts of a task instance a step uses outside a DAG run: its map index and XComs."""

    def __init__(self, map_index: int = -1):
        self.map_index, self.xcoms = map_index, {}

    def xcom_push(self, key, value):
        self.xcoms[key] = value

    def xcom_pull(self, task_ids=None, key="return_value", **kwargs):
        return self.xcoms.get(key)


def step_context(run_id: str = "manual__fault_test", map_index: int = -1, **params) -> dict:
    """A context to execute a detached step with (dry_run false unless given)."""
    return {"run_id": run_id, "ti": StepTi(map_index), "params": {"dry_run": False, **params}}


def node_shim(lab, node: str, tool: str, before: str) -> Path:
    """Put a shim of <tool> on a node in front of the real one: it runs `before` (e.g. a
    sleep, to make a step last), counts its calls in /root/<tool>-calls, then execs the real
    tool (a system program, or a lab simulator, whose link it takes over). Returns the call
    counter's path on the host."""
    root = lab.node_root(node)
    simulator = root / "usr/local/sbin" / tool
    if simulator.is_symlink():  # simulators answer to the name they are called by: keep it
        real = f"/usr/local/sbin/.shimmed/{tool}"
        (root / real.lstrip("/")).parent.mkdir(exist_ok=True)
        simulator.rename(root / real.lstrip("/"))
        shim = simulator
    else:
        real, shim = f"/usr/bin/{tool}", root / "usr/local/bin" / tool
    shim.write_text(f"#!/bin/bash\necho $$ >> /root/{tool}-calls\n{before}\nexec {real} \"$@\"\n")
    shim.chmod(0o755)
    return root / f"root/{tool}-calls"


def lab_secrets(lab) -> dict[str, str]:
    """The secrets a run must never show: the database password of vpsAdmin's account, the
    API admin's password, a line of the SSH client key."""
    key_lines = lab.cfg.client_key.read_text().splitlines()
    conns = lab.connections()
    return {"database password": lab.cfg.app_password, "API password": conns["vpsadmin_api"]["password"],
            "SSH key": key_lines[len(key_lines) // 2]}


def task_result(dag_id: str, task_id: str, map_index: int = -1):
    """The return value (XCom) of a task (of one mapped instance) of the latest run of a DAG."""
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        run_id = session.scalars(select(DagRun.run_id).where(DagRun.dag_id == dag_id)
                                 .order_by(DagRun.id.desc()).limit(1)).one()
        xcom = session.scalars(XComModel.get_many(run_id=run_id, dag_ids=dag_id, task_ids=task_id,
                                                  map_indexes=map_index, key="return_value")).one()
        return XComModel.deserialize_value(xcom)


def run_artifacts(dag_id: str) -> str:
    """Everything the latest run of a DAG stored for the UI, as text: XCom values, rendered
    template fields, the approval requests."""
    import json

    from airflow.models.dagrun import DagRun
    from airflow.models.hitl import HITLDetail
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        run_id = session.scalars(select(DagRun.run_id).where(DagRun.dag_id == dag_id)
                                 .order_by(DagRun.id.desc()).limit(1)).one()
        parts = [json.dumps(XComModel.deserialize_value(x), default=str) for x in
                 session.scalars(XComModel.get_many(run_id=run_id, dag_ids=dag_id))]
        parts += [json.dumps(r.rendered_fields, default=str) for r in session.scalars(
            select(RenderedTaskInstanceFields).where(RenderedTaskInstanceFields.dag_id == dag_id,
                                                     RenderedTaskInstanceFields.run_id == run_id))]
        parts += [f"{h.subject}\n{h.body}" for h in session.scalars(
            select(HITLDetail).join(TaskInstance, HITLDetail.ti_id == TaskInstance.id).where(
                TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id))]
    return "\n".join(parts)


def secret_holders(lab, secrets: dict[str, str]) -> dict[str, int]:
    """{node/path: mode} of every file on the lab's nodes that holds one of the secrets."""
    found = {}
    values = [v.encode() for v in secrets.values()]
    for node_dir in sorted(lab.cfg.nodes_dir.iterdir()):
        for dirpath, dirnames, filenames in os.walk(node_dir):
            rel_dir = Path(dirpath).relative_to(node_dir)
            dirnames[:] = [d for d in dirnames if str(rel_dir / d) not in ("proc", "dev", "usr")]
            for name in filenames:
                path = Path(dirpath) / name
                if path.is_symlink() or not path.is_file():
                    continue
                data = path.read_bytes()
                if path.suffix == ".gz":
                    import gzip

                    data = gzip.decompress(data)
                if any(v in data for v in values):
                    found[f"{node_dir.name}/{rel_dir / name}"] = path.stat().st_mode & 0o777
    return found


class AirflowApiServer:
    """Airflow's REST API served in this process (uvicorn in a thread) on the tests' metadata
    database, and connection `airflow_api` pointing at it: what a step that sets a run's note
    or unpauses a DAG talks to. Simple auth manager, every user an admin (a token for anyone)."""

    def __init__(self, monkeypatch):
        self.monkeypatch = monkeypatch

    def __enter__(self):
        import json

        import uvicorn

        from lab.core.config import free_port

        self.monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
        self.monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "airlift-tests-only-" + "x" * 64)
        from airflow.api_fastapi.app import create_app, purge_cached_app

        purge_cached_app()
        port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(create_app("core"), host="127.0.0.1", port=port,
                                                   log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "the API server did not start"
            time.sleep(0.1)
        self.monkeypatch.setenv("AIRFLOW_CONN_AIRFLOW_API", json.dumps(
            {"conn_type": "http", "host": "127.0.0.1", "port": port, "schema": "http", "login": "tests",
             "password": "unused"}))
        return self

    def __exit__(self, *exc):
        self.monkeypatch.delenv("AIRFLOW_CONN_AIRFLOW_API")
        self.server.should_exit = True
        self.thread.join(timeout=10)


def register_dags() -> None:
    """The DAGs of dags/ in the metadata database, as the DAG processor puts them there (created
    paused where they ask for it): what the REST API edits."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    DagBundlesManager().sync_bundles_to_db()
    sync_bag_to_db(DagBag(dag_folder=str(Path(__file__).resolve().parents[1] / "dags")), bundle_name="dags-folder",
                   bundle_version=None)


def dag_is_paused(dag_id: str) -> bool:
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.get(DagModel, dag_id).is_paused
