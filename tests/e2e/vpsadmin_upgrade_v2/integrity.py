"""What the integrity check of an upgraded lab world reports: the record finalize.integrity_check
put in XCom and the check's false facts (a correct upgrade leaves none, of any severity)."""

from __future__ import annotations

from tests.helpers import query, task_result  # noqa: F401 - its importers take it from here


def false_facts(lab, check_id: int) -> list[dict]:
    """Every false fact of a check, with the property it is about (and its dataset or pool)
    where it is one."""
    rows = query(lab, """
        SELECT o.class_name, p.name, COALESCE(d.full_name, pool.filesystem), f.name, f.expected_value,
               f.actual_value, f.severity, f.message
        FROM integrity_facts f
        INNER JOIN integrity_objects o ON o.id = f.integrity_object_id
        LEFT JOIN dataset_properties p ON o.class_name = 'DatasetProperty' AND p.id = o.row_id
        LEFT JOIN dataset_in_pools dip ON dip.id = p.dataset_in_pool_id
        LEFT JOIN datasets d ON d.id = dip.dataset_id
        LEFT JOIN pools pool ON pool.id = p.pool_id
        WHERE o.integrity_check_id = %s AND f.status = 0 ORDER BY f.id""", (check_id,))
    keys = ("class_name", "property", "dataset", "name", "expected", "actual", "severity", "message")
    return [dict(zip(keys, row, strict=True)) for row in rows]
