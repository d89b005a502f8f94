"""Our Iceberg tables as the specification and other engines see them: Parquet field ids, row
groups sized by bytes, a page index, and an independent reader (polars' native Parquet reader,
which maps columns by field id) returning the same rows as the platform."""

from __future__ import annotations

import io
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from datalibrary.lake.catalog import open_lake, parse_table_name
from datalibrary.lake.tables import FileWriter, file_schema
from tests.helpers import Platform
from tests.lake_helpers import add_policy, ingest, read_table, write_csv


def _data_files(platform: Platform, table: str) -> list[pq.ParquetFile]:
    lake = open_lake(platform.settings)
    iceberg = lake.load(parse_table_name(table))
    files = []
    for task in iceberg.scan().plan_files():
        with lake.storage.fs.open_input_file(task.file.file_path.removeprefix("file://")) as handle:
            files.append(pq.ParquetFile(io.BytesIO(handle.read())))
    return files


def _ingest_sample(platform: Platform, tmp_path: Path) -> None:
    add_policy(platform)
    rows = 3000
    source = write_csv(
        tmp_path / "lb.csv",
        {
            "USUBJID": [f"S{i % 40:03d}" for i in range(rows)],
            "LBTESTCD": [["ALB", "GLUC", "HGB"][i % 3] for i in range(rows)],
            "LBSTRESN": [i / 7 if i % 11 else None for i in range(rows)],
            "LBDTC": [f"2014-{1 + i % 12:02d}-{1 + i % 28:02d}" for i in range(rows)],
        },
    )
    ingest(platform, source, "study.lb")


def test_data_files_carry_iceberg_field_ids_and_a_page_index(
    sqlite_platform: Platform, tmp_path: Path
) -> None:
    _ingest_sample(sqlite_platform, tmp_path)
    iceberg = open_lake(sqlite_platform.settings).load(parse_table_name("study.lb"))
    expected = {field.name: field.field_id for field in iceberg.schema().fields}
    files = _data_files(sqlite_platform, "study.lb")
    assert files
    for parquet in files:
        ids = {
            parquet.schema_arrow.field(i).name: int(
                parquet.schema_arrow.field(i).metadata[b"PARQUET:field_id"]
            )
            for i in range(len(parquet.schema_arrow))
        }
        assert ids == expected
        column = parquet.metadata.row_group(0).column(0)
        assert column.statistics is not None and column.statistics.has_min_max
        assert column.has_column_index and column.has_offset_index


def test_row_groups_follow_bytes_not_batches(sqlite_platform: Platform) -> None:
    """Many small batches make one row group up to the configured size, then a new one."""
    platform = sqlite_platform
    lake = open_lake(platform.settings)
    from pyiceberg.schema import Schema
    from pyiceberg.types import LongType, NestedField, StringType

    table = lake.create(
        parse_table_name("study.groups"),
        Schema(
            NestedField(1, "id", LongType(), required=False),
            NestedField(2, "label", StringType(), required=False),
        ),
    )
    schema = file_schema(table)
    batch = pa.record_batch(
        {"id": pa.array(range(1000), pa.int64()), "label": ["x" * 20] * 1000}, schema=schema
    )
    few = FileWriter(lake, table, "few", schema, target_bytes=1 << 30, row_group_bytes=64 << 20)
    for _ in range(50):
        few.write(batch)
    [path] = few.close()
    many = FileWriter(lake, table, "many", schema, target_bytes=1 << 30, row_group_bytes=batch.nbytes * 10)
    for _ in range(50):
        many.write(batch)
    [other] = many.close()
    with lake.storage.fs.open_input_file(path.removeprefix("file://")) as handle:
        one = pq.ParquetFile(io.BytesIO(handle.read())).metadata
    with lake.storage.fs.open_input_file(other.removeprefix("file://")) as handle:
        five = pq.ParquetFile(io.BytesIO(handle.read())).metadata
    assert (one.num_row_groups, one.num_rows) == (1, 50_000)
    assert (five.num_row_groups, five.num_rows) == (5, 50_000)


def test_an_independent_reader_returns_the_same_rows(platform: Platform, tmp_path: Path) -> None:
    _ingest_sample(platform, tmp_path)
    ours = read_table(platform, "study.lb").to_pylist()
    iceberg = open_lake(platform.settings).load(parse_table_name("study.lb"))
    # polars plans with its own Iceberg planner (polars_iceberg) from the metadata file and reads
    # the Parquet files natively, mapping columns by field id.
    scan = pl.scan_iceberg(iceberg.metadata_location, reader_override="native")
    theirs = scan.collect().to_dicts()
    assert len(theirs) == len(ours) == 3000

    def key(row: dict[str, object]) -> tuple[str, ...]:
        return tuple(str(row[name]) for name in sorted(row))

    assert sorted(theirs, key=key) == sorted(ours, key=key)
