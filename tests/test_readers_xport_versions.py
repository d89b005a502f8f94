"""XPORT v5 and v8 written by pyreadstat (through pandas, tests only) read back exactly."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest

from datalibrary.ingest.readers.detect import detect_format
from datalibrary.ingest.readers.xpt import XptReader

pd = pytest.importorskip("pandas")
pyreadstat = pytest.importorskip("pyreadstat")

ROWS = 2_500


def frame(long_names: bool) -> tuple[object, list[str]]:
    name = "A_VERY_LONG_VARIABLE_NAME" if long_names else "LONGVAR"
    data = pd.DataFrame(
        {
            "USUBJID": [f"ST-701-{i:04d}" if i % 50 else "" for i in range(ROWS)],
            "AGE": [float(40 + i % 60) if i % 7 else None for i in range(ROWS)],
            name: ["x" * (i % 5) for i in range(ROWS)],
            "LBDT": [dt.date(2014, 1, 1) + dt.timedelta(days=i % 300) for i in range(ROWS)],
        }
    )
    labels = [
        "Unique Subject Identifier",
        "Age",
        "A label well beyond forty characters for v8 files"[:40],
        "Date",
    ]
    return data, labels


@pytest.mark.parametrize("version", [5, 8])
def test_xport_versions_round_trip(tmp_path: Path, version: int) -> None:
    data, labels = frame(long_names=version == 8)
    path = tmp_path / f"lb_v{version}.xpt"
    pyreadstat.write_xport(
        data,
        str(path),
        file_format_version=version,
        column_labels=labels,
        table_name="LB",
        variable_format={"LBDT": "DATE9."},
    )
    assert detect_format(path) == "xpt"
    reader = XptReader(path)
    assert reader.table_name == "LB"
    assert reader.column_labels()["USUBJID"] == "Unique Subject Identifier"
    batches = list(reader.batches(batch_rows=1000))
    assert [b.num_rows for b in batches] == [1000, 1000, 500]
    table = pa.Table.from_batches(batches)
    assert table.schema.field("LBDT").type == pa.date32()
    assert table.column("USUBJID").to_pylist() == [v or None for v in data["USUBJID"]]
    assert table.column("AGE").null_count == sum(1 for i in range(ROWS) if i % 7 == 0)
    assert table.column("LBDT").to_pylist() == list(data["LBDT"])
