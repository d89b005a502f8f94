"""Re-identification risk of row-level data (prosecutor model), for the exports airlock.

k is the size of the smallest equivalence class on the quasi-identifier columns; the
maximum risk is 1/k. EMA Policy 0070 and Health Canada share at max risk 0.09 (k >= 11).
``privacy`` has no risk function yet; this one is small, vectorized (Arrow group-by) and
can move there when it arrives.
"""

from __future__ import annotations

import re
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

THRESHOLD_K = 11
# Column names that usually carry quasi-identifiers (suggested when nobody names any).
LIKELY_QI = re.compile(
    r"^(AGE|AGEU|SEX|GENDER|RACE|ETHNIC|ETHNICITY|ZIP|ZIP3|ZIPCODE|COUNTRY|SITEID|STATE|"
    r"COUNTY|BIRTH\w*|BRTHDTC|MARITAL)$",
    re.IGNORECASE,
)


def suggest_quasi_identifiers(columns: list[str]) -> list[str]:
    return [c for c in columns if LIKELY_QI.match(c)]


def k_anonymity(
    table: pa.Table, quasi_identifiers: list[str], threshold: int = THRESHOLD_K
) -> dict[str, Any]:
    """Smallest equivalence class on ``quasi_identifiers``, max risk, classes below the threshold."""
    by_lower = {name.lower(): name for name in table.column_names}
    missing = [q for q in quasi_identifiers if q.lower() not in by_lower]
    columns = [by_lower[q.lower()] for q in quasi_identifiers if q.lower() in by_lower]
    report: dict[str, Any] = {
        "quasi_identifiers": columns,
        "missing": missing,
        "rows": table.num_rows,
        "threshold_k": threshold,
    }
    if not columns or table.num_rows == 0:
        report.update(k=None, max_risk=None, classes=0, rows_at_risk=0, passes=table.num_rows == 0)
        if table.num_rows and not columns:
            report["note"] = "no quasi-identifier column named: the risk is unknown"
        return report
    # Cast to text so nulls and mixed types group the same way in every engine.
    keys = pa.table({f"q{i}": pc.cast(table[c], pa.string()) for i, c in enumerate(columns)})
    counts = keys.group_by(keys.column_names).aggregate([([], "count_all")])["count_all"]
    k = pc.min(counts).as_py()
    small = pc.less(counts, threshold)
    report.update(
        k=k,
        max_risk=round(1 / k, 4),
        classes=len(counts),
        classes_below_threshold=pc.sum(small).as_py() or 0,
        rows_at_risk=pc.sum(pc.if_else(small, counts, 0)).as_py() or 0,
        passes=k >= threshold,
    )
    return report
