"""The demo study loads through the real pipeline (with a stand-in generator until the real one lands)."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from datalibrary.lake.catalog import open_lake
from datalibrary.lake.demo import load_demo_study
from tests.helpers import Platform


def fake_generate_study(out_dir: Path, subjects: int = 10) -> list[Path]:
    """A stand-in for datalibrary.demo_data.generate_study (named as such: a fake)."""
    ids = [f"01-701-{1000 + i}" for i in range(subjects)]
    dm = out_dir / "dm.csv"
    pacsv.write_csv(pa.table({"USUBJID": ids, "AGE": [40 + i % 40 for i in range(subjects)]}), dm)
    patients = out_dir / "patients.csv"
    pacsv.write_csv(
        pa.table(
            {
                "Id": ids,
                "FIRST_NAME": ["Ann"] * subjects,
                "SSN": ["999-00-0000"] * subjects,
                "GENDER": ["F"] * subjects,
            }
        ),
        patients,
    )
    return [dm, patients]


def test_demo_study_loads_once_and_drops_identifiers(
    sqlite_platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = types.ModuleType("datalibrary.demo_data")
    module.generate_study = fake_generate_study  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "datalibrary.demo_data", module)
    lines = list(load_demo_study(sqlite_platform.settings, subjects=12))
    assert lines[0].startswith("Demo study loaded") and all("succeeded" in line for line in lines[1:])
    lake = open_lake(sqlite_platform.settings)
    assert sorted(str(t) for t in lake.tables("demo")) == ["demo.dm", "demo.patients"]
    from tests.lake_helpers import read_table

    patients = read_table(sqlite_platform, "demo.patients")
    assert patients.column_names == ["Id", "GENDER"] and patients.num_rows == 12
    assert list(load_demo_study(sqlite_platform.settings)) == [], "loaded once"


def test_demo_is_skipped_with_a_note_without_the_generator(
    sqlite_platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "datalibrary.demo_data", None)
    lines = list(load_demo_study(sqlite_platform.settings))
    assert len(lines) == 1 and "skipped" in lines[0]
