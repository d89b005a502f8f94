"""The demo study of a first start loads through the real pipeline, with the real generator."""

from __future__ import annotations

import sys

import pytest

from datalibrary.demo import load_demo_study
from datalibrary.demo_data import study_tables
from datalibrary.ingest.models import IngestJob
from datalibrary.lake.catalog import open_lake
from tests.helpers import Platform
from tests.lake_helpers import read_table

IDENTIFYING = {"first_name", "last_name", "ssn", "mrn", "email", "phone", "address", "zip"}


def test_demo_study_loads_once_and_drops_identifiers(sqlite_platform: Platform) -> None:
    lines = list(load_demo_study(sqlite_platform.settings, subjects=6))
    assert lines[0].startswith("Demo study loaded"), lines
    assert len(lines) == 7 and all("succeeded" in line for line in lines[1:]), lines
    lake = open_lake(sqlite_platform.settings)
    expected = study_tables(subjects=6)
    assert sorted(str(t) for t in lake.tables("demo")) == sorted(f"demo.{name}" for name in expected)
    for name, source in expected.items():
        stored = read_table(sqlite_platform, f"demo.{name}")
        assert stored.num_rows == source.num_rows, name
    patients = read_table(sqlite_platform, "demo.patients")
    assert not IDENTIFYING & set(patients.column_names)
    assert {"patient_id", "usubjid", "sex"} <= set(patients.column_names)
    with sqlite_platform.db.session() as session:
        jobs = session.query(IngestJob).all()
    assert {j.state for j in jobs} == {"succeeded"} and {j.policy_name for j in jobs} == {"demo-study"}
    assert list(load_demo_study(sqlite_platform.settings)) == [], "loaded once"


def test_demo_is_skipped_with_a_note_without_the_generator(
    sqlite_platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "datalibrary.demo_data", None)
    lines = list(load_demo_study(sqlite_platform.settings))
    assert len(lines) == 1 and "skipped" in lines[0]
