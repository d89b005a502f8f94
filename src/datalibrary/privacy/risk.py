"""Re-identification risk on the quasi-identifiers (prosecutor model) — the ONE risk module.

Ingestion's shared-tier gate, the ingestion report, the dataset page and the exports airlock
all use this module, so they agree on every table.

Records sharing the same quasi-identifier values form an equivalence class; an attacker
who knows a target is in the data picks the right record with probability 1/|class|.
k is the smallest class, the maximum risk 1/k, the average risk the mean of 1/|class| over
records (= classes / records), and the share at risk the records in classes smaller than
the minimum class size.

The threshold is a maximum risk (EMA Policy 0070 and Health Canada: 0.09), applied
literally: a class of size n passes when 1/n <= max_risk, so the minimum class size is the
smallest such n. For 0.09 that is **k >= 12** (1/11 = 0.0909 > 0.09). A site that wants the
common "cell size 11" reading sets the threshold to 0.091 (1/11 rounded up), and every
check follows, because every check goes through :func:`min_class_size`.

For an aggregate result (counts per group) the equivalence classes are the groups and the
class sizes are the counts: :func:`smallest_cell` checks them against the same minimum.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

DEFAULT_MAX_RISK = 0.09

# Column names that usually carry quasi-identifiers (suggested when nobody names any); the
# last line: a file collection's index table (files/index_risk.py).
LIKELY_QI = re.compile(
    r"^(AGE|AGEU|AGEGR\w*|SEX|GENDER|RACE|ETHNIC|ETHNICITY|ZIP|ZIP3|ZIPCODE|COUNTRY|SITEID|STATE|"
    r"COUNTY|BIRTH\w*|BRTHDTC|MARITAL|"
    r"MODALITY|BODY_PART|ACQUISITION_DATE|SITE)$",
    re.IGNORECASE,
)


def min_class_size(max_risk: float = DEFAULT_MAX_RISK) -> int:
    """The smallest class size n with 1/n <= ``max_risk`` (0.09 -> 12, 0.091 -> 11)."""
    if not 0 < max_risk <= 1:
        raise ValueError("the maximum risk is a probability in (0, 1]")
    return max(1, math.ceil(1 / max_risk - 1e-9))


def passes(k: int | None, max_risk: float = DEFAULT_MAX_RISK) -> bool:
    """Whether the smallest class ``k`` meets the threshold (no class at all: nothing at risk)."""
    return k is None or k == 0 or k >= min_class_size(max_risk)


@dataclass(frozen=True)
class RiskReport:
    quasi_identifiers: list[str]
    records: int
    classes: int
    k: int
    max_risk: float
    average_risk: float
    threshold: float
    share_above_threshold: float
    min_class_size: int = 0
    records_at_risk: int = 0

    def as_dict(self) -> dict:
        return asdict(self)

    def meets(self, threshold: float | None = None) -> bool:
        """The one pass/fail rule: k against :func:`min_class_size` of the threshold."""
        return passes(self.k if self.records else None, self.threshold if threshold is None else threshold)


class RiskCounter:
    """Counts equivalence classes batch by batch (memory: one counter per distinct class)."""

    def __init__(self, quasi_identifiers: list[str]) -> None:
        self.qis = list(quasi_identifiers)
        self.counts: Counter[tuple] = Counter()

    def add(self, batch: pa.RecordBatch | pa.Table) -> None:
        if batch.num_rows == 0:
            return
        # Text keys: nulls and mixed types group the same way whatever the file's types.
        table = pa.table({f"q{i}": pc.cast(batch.column(q), pa.string()) for i, q in enumerate(self.qis)})
        names = table.column_names
        grouped = table.group_by(names, use_threads=False).aggregate([([], "count_all")])
        keys = [grouped.column(q).to_pylist() for q in names]
        for key, count in zip(zip(*keys, strict=True), grouped.column("count_all").to_pylist(), strict=True):
            self.counts[key] += count

    def report(self, threshold: float = DEFAULT_MAX_RISK) -> RiskReport:
        return risk_from_sizes(self.qis, list(self.counts.values()), threshold)


def risk_from_sizes(qis: list[str], sizes: list[int], threshold: float = DEFAULT_MAX_RISK) -> RiskReport:
    minimum = min_class_size(threshold)
    records = sum(sizes)
    if not records:
        return RiskReport(qis, 0, 0, 0, 0.0, 0.0, threshold, 0.0, minimum, 0)
    k = min(sizes)
    at_risk = sum(size for size in sizes if size < minimum)
    return RiskReport(
        quasi_identifiers=qis,
        records=records,
        classes=len(sizes),
        k=k,
        max_risk=1 / k,
        average_risk=len(sizes) / records,
        threshold=threshold,
        share_above_threshold=at_risk / records,
        min_class_size=minimum,
        records_at_risk=at_risk,
    )


def suggest_quasi_identifiers(columns: list[str]) -> list[str]:
    return [c for c in columns if LIKELY_QI.match(c)]


def resolve_columns(available: list[str], wanted: list[str]) -> tuple[list[str], list[str]]:
    """``wanted`` matched case-insensitively against ``available``: (found names, missing)."""
    by_lower = {name.lower(): name for name in available}
    found = [by_lower[q.lower()] for q in wanted if q.lower() in by_lower]
    return found, [q for q in wanted if q.lower() not in by_lower]


def airlock_report(
    counter: RiskCounter | None,
    *,
    rows: int,
    missing: list[str],
    threshold: float = DEFAULT_MAX_RISK,
) -> dict[str, Any]:
    """The row-level report the airlock shows (k, max risk, classes, rows in small classes)."""
    minimum = min_class_size(threshold)
    report: dict[str, Any] = {
        "kind": "row-level",
        "quasi_identifiers": counter.qis if counter else [],
        "missing": missing,
        "rows": rows,
        "threshold": threshold,
        "threshold_k": minimum,
    }
    if counter is None or rows == 0:
        report.update(k=None, max_risk=None, classes=0, rows_at_risk=0, passes=rows == 0)
        if rows:
            report["note"] = "no quasi-identifier column named: the risk is unknown"
        return report
    risk = counter.report(threshold)
    report.update(
        k=risk.k,
        max_risk=round(risk.max_risk, 4),
        classes=risk.classes,
        classes_below_threshold=sum(1 for size in counter.counts.values() if size < minimum),
        rows_at_risk=risk.records_at_risk,
        passes=risk.meets(),
    )
    return report


def smallest_cell(cells: list[int], *, threshold: float = DEFAULT_MAX_RISK, column: str) -> dict[str, Any]:
    """The check of an aggregate result: every group's count (its class size) meets the minimum."""
    minimum = min_class_size(threshold)
    nonzero = [c for c in cells if c is not None and c > 0]
    smallest = min(nonzero) if nonzero else None
    return {
        "kind": "aggregate",
        "count_column": column,
        "cells": len(cells),
        "smallest_cell": smallest,
        "cells_below_threshold": sum(1 for c in nonzero if c < minimum),
        "threshold": threshold,
        "threshold_k": minimum,
        "k": smallest,
        "max_risk": round(1 / smallest, 4) if smallest else None,
        "passes": smallest is None or smallest >= minimum,
    }


def k_anonymity(
    table: pa.Table, quasi_identifiers: list[str], threshold: float = DEFAULT_MAX_RISK
) -> dict[str, Any]:
    """The airlock's row-level report of an in-memory table (tests, small results)."""
    columns, missing = resolve_columns(table.column_names, quasi_identifiers)
    counter = RiskCounter(columns) if columns else None
    if counter is not None:
        counter.add(table.select(columns))
    return airlock_report(counter, rows=table.num_rows, missing=missing, threshold=threshold)
