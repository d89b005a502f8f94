"""Re-identification risk on the quasi-identifiers (prosecutor model).

Records sharing the same quasi-identifier values form an equivalence class; an attacker
who knows a target is in the data picks the right record with probability 1/|class|.
k is the smallest class, the maximum risk 1/k, the average risk the mean of 1/|class| over
records (= classes / records), and the share at risk the records whose 1/|class| exceeds
the threshold (0.09, i.e. classes under 11, by EMA Policy 0070).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass

import pyarrow as pa


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

    def as_dict(self) -> dict:
        return asdict(self)

    def meets(self, threshold: float) -> bool:
        return self.max_risk <= threshold


class RiskCounter:
    """Counts equivalence classes batch by batch (memory: one counter per distinct class)."""

    def __init__(self, quasi_identifiers: list[str]) -> None:
        self.qis = list(quasi_identifiers)
        self.counts: Counter[tuple] = Counter()

    def add(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        table = pa.Table.from_batches([batch.select(self.qis)])
        grouped = table.group_by(self.qis, use_threads=False).aggregate([([], "count_all")])
        keys = [grouped.column(q).to_pylist() for q in self.qis]
        for key, count in zip(zip(*keys, strict=True), grouped.column("count_all").to_pylist(), strict=True):
            self.counts[key] += count

    def report(self, threshold: float = 0.09) -> RiskReport:
        return risk_from_sizes(self.qis, list(self.counts.values()), threshold)


def risk_from_sizes(qis: list[str], sizes: list[int], threshold: float = 0.09) -> RiskReport:
    records = sum(sizes)
    if not records:
        return RiskReport(qis, 0, 0, 0, 0.0, 0.0, threshold, 0.0)
    k = min(sizes)
    above = sum(size for size in sizes if 1 / size > threshold)
    return RiskReport(
        quasi_identifiers=qis,
        records=records,
        classes=len(sizes),
        k=k,
        max_risk=1 / k,
        average_risk=len(sizes) / records,
        threshold=threshold,
        share_above_threshold=above / records,
    )
