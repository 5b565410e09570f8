"""What the integrity check of an upgraded lab world reports: the record finalize.integrity_check
put in XCom, the check's false facts, and the ones a correct upgrade still leaves false today."""

from __future__ import annotations

import re

from tests.helpers import query


def task_result(dag_id: str, task_id: str):
    """The return value (XCom) of a task of the latest run of a DAG."""
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        run_id = session.scalars(select(DagRun.run_id).where(DagRun.dag_id == dag_id)
                                 .order_by(DagRun.id.desc()).limit(1)).one()
        xcom = session.scalars(XComModel.get_many(run_id=run_id, dag_ids=dag_id, task_ids=task_id,
                                                  key="return_value")).one()
        return XComModel.deserialize_value(xcom)


def false_facts(lab, check_id: int) -> list[dict]:
    """Every false fact of a check, with the property it is about where it is one."""
    rows = query(lab, """
        SELECT o.class_name, p.name, f.name, f.expected_value, f.actual_value, f.severity, f.message
        FROM integrity_facts f
        INNER JOIN integrity_objects o ON o.id = f.integrity_object_id
        LEFT JOIN dataset_properties p ON o.class_name = 'DatasetProperty' AND p.id = o.row_id
        WHERE o.integrity_check_id = %s AND f.status = 0 ORDER BY f.id""", (check_id,))
    keys = ("class_name", "property", "name", "expected", "actual", "severity", "message")
    return [dict(zip(keys, row, strict=True)) for row in rows]


# False after a correct upgrade of the lab world, each for a reason outside the lab's world and
# check (reported, to be fixed where it says); anything else false is a finding.
KNOWN_FALSE_FACTS = {
    # 2.0 records quota and refquota as set on every dataset (not inherited); the world sets them
    # (none where 0), but the lab's zfs forgets an explicit none (real ZFS keeps it, `local`).
    "quota/refquota none not kept by the lab's zfs": lambda f, lab: (
        f["property"] in ("quota", "refquota") and f["name"] == "inherited"
        and (f["expected"], f["actual"]) == ("--- false\n...\n", "--- true\n...\n")),
    # 2.0's migration records sharenfs '' (no value ZFS takes) for every pool and dataset; the
    # upgrade shares the NAS and backup pools and records nothing.
    "sharenfs not recorded in dataset_properties": lambda f, lab: f["property"] == "sharenfs",
    # The upgrade deletes the stray VPSes from the database and leaves their v1.22 backup
    # datasets on the backup pool.
    "backup datasets of the deleted stray VPSes": lambda f, lab: (
        f["class_name"] == "DatasetInPool" and f["name"] == "exists"
        and re.fullmatch(r"object '(\d+)' should not exist", f["message"] or "") is not None
        and int(re.findall(r"\d+", f["message"])[0]) in lab.info["stray_vps_ids"]),
}


def unexplained(lab, facts: list[dict]) -> list[dict]:
    """The false facts none of KNOWN_FALSE_FACTS explains (all of those are of normal severity)."""
    return [f for f in facts
            if f["severity"] != 1 or not any(known(f, lab) for known in KNOWN_FALSE_FACTS.values())]
