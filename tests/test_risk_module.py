"""One risk module: ingestion's shared-tier gate, the ingestion report and the exports airlock
compute the same k on the same data, agree with pycanon, and share one threshold rule."""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datalibrary.lineage.export_content import summarize_file
from datalibrary.privacy.policy import PolicyContext, PolicyStep, parse_policy
from datalibrary.privacy.risk import (
    DEFAULT_MAX_RISK,
    RiskCounter,
    k_anonymity,
    min_class_size,
    passes,
    smallest_cell,
)


def test_one_threshold_rule() -> None:
    assert min_class_size(0.09) == 12, "EMA 0.09 applied literally: 1/11 = 0.0909 > 0.09"
    assert min_class_size(0.091) == 11 and min_class_size(0.2) == 5 and min_class_size(1.0) == 1
    assert DEFAULT_MAX_RISK == 0.09
    assert not passes(11) and passes(12)
    assert not passes(11, 0.09) and passes(11, 0.091)
    with pytest.raises(ValueError):
        min_class_size(0)


def _rows(seed: int, n: int) -> dict[str, list]:
    rng = random.Random(seed)
    return {
        "AGE": [rng.choice(["20-29", "30-39", "40-49", "90+"]) for _ in range(n)],
        "SEX": [rng.choice("MF") for _ in range(n)],
        "ZIP": [rng.choice(["021", "100", "000", "945", "606", None]) for _ in range(n)],
        "V": list(range(n)),
    }


@pytest.mark.parametrize("seed,n", [(5, 600), (11, 90), (3, 2500)])
def test_ingestion_and_airlock_agree_with_pycanon(seed: int, n: int, tmp_path: Path) -> None:
    import pandas as pd
    from pycanon import anonymity
    from pycanon.anonymity.utils.aux_anonymity import get_equiv_class

    rows = _rows(seed, n)
    qis = ["AGE", "SEX", "ZIP"]
    frame = pd.DataFrame(rows).fillna("<null>")
    k = anonymity.k_anonymity(frame, qis)
    sizes = [len(c) for c in get_equiv_class(frame, qis)]

    # ingestion: the policy step counts classes batch by batch
    policy = parse_policy(
        "name: p\nversion: 1\nquasi_identifiers: [AGE, SEX, ZIP]\ntier: shared\ncolumns:\n  '*': keep\n"
    )
    step = PolicyStep(policy, PolicyContext("s", "t"))
    batch = pa.RecordBatch.from_pydict(rows)
    for start in range(0, n, 97):
        step.apply(batch.slice(start, 97))
    ingestion = step.risk()
    assert ingestion is not None

    # the airlock: the pinned snapshot streamed from a Parquet file
    path = tmp_path / "export.parquet"
    pq.write_table(pa.table(rows), path, row_group_size=100)
    airlock = summarize_file(path, "parquet", quasi_identifiers=qis)["risk"]

    assert ingestion.k == airlock["k"] == k
    assert ingestion.classes == airlock["classes"] == len(sizes)
    assert ingestion.max_risk == pytest.approx(1 / k)
    assert ingestion.average_risk == pytest.approx(len(sizes) / n)
    below = sum(s for s in sizes if s < min_class_size(0.09))
    assert ingestion.records_at_risk == airlock["rows_at_risk"] == below
    assert ingestion.share_above_threshold == pytest.approx(below / n)
    assert ingestion.meets(0.09) == airlock["passes"] == (k >= 12)
    assert k_anonymity(pa.table(rows), qis)["k"] == k


def test_the_report_does_not_count_every_record_as_at_risk() -> None:
    """Classes of 12 and more are not at risk; only the small class's records count."""
    counter = RiskCounter(["SEX"])
    counter.add(pa.record_batch({"SEX": ["M"] * 30 + ["F"] * 12 + ["X"] * 2}))
    report = counter.report(0.09)
    assert report.k == 2 and report.records_at_risk == 2
    assert report.share_above_threshold == pytest.approx(2 / 44)
    assert not report.meets()
    counter = RiskCounter(["SEX"])
    counter.add(pa.record_batch({"SEX": ["M"] * 30 + ["F"] * 12}))
    assert counter.report().records_at_risk == 0 and counter.report().meets()


def test_gate_refuses_k_11_and_airlock_refuses_it_too(tmp_path: Path) -> None:
    """The disagreement that was found: k = 11 is refused by both (0.09 -> k >= 12)."""
    rows = {"SEX": ["M"] * 11 + ["F"] * 20}
    policy = parse_policy(
        "name: p\nversion: 1\nquasi_identifiers: [SEX]\ntier: shared\ncolumns:\n  '*': keep\n"
    )
    step = PolicyStep(policy, PolicyContext("s", "t"))
    step.apply(pa.RecordBatch.from_pydict(rows))
    path = tmp_path / "x.parquet"
    pq.write_table(pa.table(rows), path)
    assert step.risk().k == 11 and not step.risk().meets(policy.risk_threshold)
    assert summarize_file(path, "parquet", quasi_identifiers=["SEX"])["risk"]["passes"] is False
    assert smallest_cell([11, 40], column="n")["passes"] is False
    assert smallest_cell([12, 40], column="n")["passes"] is True


def test_an_append_is_judged_on_the_table_it_makes(sqlite_platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A small delivery appended to a large table is not "every record at risk": the risk of
    the snapshot is the table's after the append (stored rows + the new file)."""
    from datalibrary.lake.catalog import open_lake, parse_table_name
    from datalibrary.lake.datasets import history
    from tests.lake_helpers import add_policy, ingest, write_csv

    add_policy(
        sqlite_platform,
        "name: shared-dm\nversion: 1\nquasi_identifiers: [SEX, AGEGR]\ntier: shared\ncolumns:\n  '*': keep\n",
    )
    first = write_csv(tmp_path / "a.csv", {"SEX": ["M"] * 15 + ["F"] * 15, "AGEGR": ["40-49"] * 30})
    assert ingest(sqlite_platform, first, "s.dm", policy="shared-dm")[1] == "succeeded"
    more = write_csv(tmp_path / "b.csv", {"SEX": ["M", "F", "F"], "AGEGR": ["40-49"] * 3})
    assert ingest(sqlite_platform, more, "s.dm", policy="shared-dm")[1] == "succeeded"
    risk = history(open_lake(sqlite_platform.settings).load(parse_table_name("s.dm")))[0]["risk"]
    assert risk["records"] == 33 and risk["k"] == 16 and risk["share_above_threshold"] == 0
    lone = write_csv(tmp_path / "c.csv", {"SEX": ["X"], "AGEGR": ["90+"]})
    assert ingest(sqlite_platform, lone, "s.dm", policy="shared-dm")[1] == "quarantined"
