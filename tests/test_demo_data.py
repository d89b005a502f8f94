"""Synthetic clinical data: shapes, SDTM consistency rules, fake identifiers, determinism."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow.compute as pc

from datalibrary.demo_data import generate_study, study_tables, write_lb_csv
from datalibrary.demo_data.ehr import RESTRICTED_ZIP3
from datalibrary.ingest.readers.csv import CsvReader


def test_generate_study_writes_readable_csvs(tmp_path: Path) -> None:
    paths = generate_study(tmp_path, subjects=30, seed=1, study="ST01")
    assert sorted(p.name for p in paths) == [
        "ae.csv",
        "dm.csv",
        "encounters.csv",
        "lb.csv",
        "patients.csv",
        "vs.csv",
    ]
    for path in paths:
        assert sum(b.num_rows for b in CsvReader(path).batches()) > 0


def test_deterministic_by_seed() -> None:
    a, b, c = study_tables(seed=3), study_tables(seed=3), study_tables(seed=4)
    assert all(a[name].equals(b[name]) for name in a)
    assert not a["lb"].equals(c["lb"])


def test_sdtm_rules_hold() -> None:
    tables = study_tables(subjects=200, seed=7, study="DEMO01")
    dm = tables["dm"].to_pylist()
    by_subject = {row["USUBJID"]: row for row in dm}
    for row in dm:
        assert row["USUBJID"] == f"DEMO01-{row['SITEID']}-{row['SUBJID']}"
    for domain, date_col, day_col in [
        ("lb", "LBDTC", "LBDY"),
        ("vs", "VSDTC", "VSDY"),
        ("ae", "AESTDTC", "AESTDY"),
    ]:
        for row in tables[domain].to_pylist():
            if row[day_col] is None:
                assert len(row[date_col]) == 7, "only partial dates have no study day"
                continue
            start = dt.date.fromisoformat(by_subject[row["USUBJID"]]["RFSTDTC"])
            delta = (dt.date.fromisoformat(row[date_col]) - start).days
            assert row[day_col] == (delta + 1 if delta >= 0 else delta)
            assert row[day_col] != 0
    lengths = {len(row["BRTHDTC"]) for row in dm}
    assert lengths == {4, 7, 10}, "birth dates include partial ISO dates"
    lb = tables["lb"]
    assert set(lb["LBTESTCD"].to_pylist()) >= {"ALT", "HGB", "GLUC"}
    assert lb["LBSTRESU"].null_count == 0 and lb["LBSTNRLO"].null_count == 0
    high = pc.greater(lb["LBSTRESN"], lb["LBSTNRHI"])
    assert pc.all(pc.equal(pc.filter(lb["LBNRIND"], high), "HIGH")).as_py()


def test_ehr_tables_carry_fake_identifiers() -> None:
    patients = study_tables(subjects=300, seed=2)["patients"].to_pylist()
    assert all(p["ssn"][:3] >= "900" for p in patients), "SSN-like numbers are from the never-issued 9xx area"
    assert any(p["age"] > 89 for p in patients)
    assert any(p["zip"][:3] in RESTRICTED_ZIP3 for p in patients)
    assert all("@" in p["email"] and len(p["zip"]) == 5 for p in patients)


def test_write_lb_csv_reaches_the_target(tmp_path: Path) -> None:
    path = tmp_path / "lb.csv"
    rows = write_lb_csv(path, 3_000_000, subjects_per_chunk=100)
    assert path.stat().st_size >= 3_000_000
    assert sum(b.num_rows for b in CsvReader(path).batches()) == rows
