"""Re-identification risk of a collection's index table, recorded with each of its snapshots
exactly as ingestion records a table's (``datalibrary.risk``): the dataset page, API and CLI
show it like any table's, from the same module (``privacy.risk``).

The quasi-identifiers are the index columns an attacker could know of a patient's imaging:
the modality, the body part and the (shifted) acquisition date, plus site and age when a
format's index carries them. An index has many rows per subject (one per file: a CT series is
hundreds), so a class is counted in *subjects* sharing the values, not files: 300 slices of
one patient are one person, not a class of 300.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from datalibrary.privacy.risk import DEFAULT_MAX_RISK, RiskCounter, RiskReport

QUASI_IDENTIFIERS = ("modality", "body_part", "acquisition_date", "site", "age")
SUBJECT = "subject"


def quasi_identifiers(columns: Iterable[str]) -> list[str]:
    present = set(columns)
    return [q for q in QUASI_IDENTIFIERS if q in present]


def index_risk(rows: pa.Table, threshold: float = DEFAULT_MAX_RISK) -> RiskReport | None:
    """Risk over the index ``rows`` (every version of every file): one record per distinct
    (subject, quasi-identifier values). None when the index has no quasi-identifier."""
    qis = quasi_identifiers(rows.column_names)
    if not qis or SUBJECT not in rows.column_names:
        return None
    text = pa.table({c: pc.cast(rows.column(c), pa.string()) for c in (SUBJECT, *qis)})
    distinct = text.group_by([SUBJECT, *qis], use_threads=False).aggregate([])
    counter = RiskCounter(qis)
    counter.add(distinct.select(qis))
    return counter.report(threshold)


def risk_properties(rows: pa.Table, threshold: float = DEFAULT_MAX_RISK) -> dict[str, Any]:
    """Snapshot summary properties of an index snapshot (``privacy.snapshot_record``'s keys)."""
    import json

    report = index_risk(rows, threshold)
    return {} if report is None else {"risk": json.dumps(report.as_dict(), sort_keys=True)}
