"""Every real file in the shared data reads, with the source's row counts and labels."""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow as pa
import pyreadstat
import pytest

from datalibrary.ingest.readers import reader_class
from datalibrary.ingest.readers.define_xml import define_labels
from datalibrary.ingest.readers.detect import detect_format
from datalibrary.ingest.readers.xpt import XptOptions, XptReader

SHARED = next(
    (p for p in (Path(__file__).resolve().parents[n] / "shared" / "data" for n in (2, 3)) if p.is_dir()),
    Path(__file__).resolve().parents[2] / "shared" / "data",
)


@pytest.fixture
def shared_data() -> Path:
    """The shared data beside the checkout (CI) or beside the worktrees folder (development)."""
    if not SHARED.is_dir():
        pytest.skip(f"shared test data not found at {SHARED}")
    return SHARED


XPT = sorted((SHARED / "cdiscpilot01-sdtm").glob("*.xpt"))
SYNTHEA = sorted((SHARED / "synthea-sample").glob("*.csv"))


def full_read_rows(path: Path) -> int:
    try:
        data, _ = pyreadstat.read_xport(str(path), output_format="dict")
    except UnicodeDecodeError:
        data, _ = pyreadstat.read_xport(str(path), output_format="dict", encoding="WINDOWS-1252")
    return len(next(iter(data.values())))


@pytest.mark.parametrize("path", XPT, ids=[p.name for p in XPT])
def test_every_cdisc_xpt_reads_with_its_row_count_and_labels(shared_data: Path, path: Path) -> None:
    assert detect_format(path) == "xpt"
    reader = XptReader(path, options=XptOptions(define_xml=shared_data / "cdiscpilot01-sdtm" / "define.xml"))
    batches = list(reader.batches(batch_rows=500))
    assert len({b.schema for b in batches}) == 1
    assert sum(b.num_rows for b in batches) == full_read_rows(path)
    labels = reader.column_labels()
    assert set(labels) == set(reader.schema().names), "every column has a label"
    assert labels["STUDYID"] == "Study Identifier"


def test_xpt_values_match_pyreadstat(shared_data: Path) -> None:
    path = shared_data / "cdiscpilot01-sdtm" / "dm.xpt"
    table = pa.Table.from_batches(list(XptReader(path).batches(batch_rows=100)))
    data, _ = pyreadstat.read_xport(str(path), output_format="dict")
    assert table.column("USUBJID").to_pylist() == list(data["USUBJID"])
    assert table.column("AGE").to_pylist() == list(data["AGE"])
    assert XptReader(path).table_name == "DM"


def test_define_xml_labels(shared_data: Path) -> None:
    labels = define_labels(shared_data / "cdiscpilot01-sdtm" / "define.xml")
    assert {"DM", "AE", "LB", "VS", "SUPPDM"} <= set(labels)
    assert labels["DM"]["USUBJID"] == "Unique Subject Identifier"
    assert labels["AE"]["AETERM"]


def records_respecting_quotes(path: Path) -> int:
    with path.open(newline="", encoding="utf-8") as handle:
        return sum(1 for row in csv.reader(handle) if row) - 1


@pytest.mark.parametrize("path", SYNTHEA, ids=[p.name for p in SYNTHEA])
def test_every_synthea_csv_reads_with_its_record_count(shared_data: Path, path: Path) -> None:
    fmt = detect_format(path)
    assert fmt == "csv"
    reader = reader_class(fmt)(path)
    batches = list(reader.batches(batch_rows=200))
    assert len({b.schema for b in batches}) == 1
    assert sum(b.num_rows for b in batches) == records_respecting_quotes(path)


def test_synthea_patients_keep_identifiers_as_text(shared_data: Path) -> None:
    reader = reader_class("csv")(shared_data / "synthea-sample" / "patients.csv")
    table = pa.Table.from_batches(list(reader.batches()))
    assert table.schema.field("SSN").type == pa.string()
    assert table.schema.field("BIRTHDATE").type == pa.string(), "dates stay ISO text for the pipeline"
