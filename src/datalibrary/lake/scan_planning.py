"""Time travel and scan planning for the query service: which Parquet files, which schema.

pyiceberg plans the files of a snapshot (current, by id, or as of a time); the query engine
(DuckDB) reads them with ``read_parquet``. Files have no field ids: columns are matched by
name, as the table's name mapping says.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa
from pyiceberg.expressions import AlwaysTrue, BooleanExpression

from datalibrary.errors import NotFound
from datalibrary.lake.catalog import Lake, TableName, parse_table_name
from datalibrary.lake.tables import file_schema


@dataclass(frozen=True)
class PlannedFile:
    uri: str  # file:///... or s3://bucket/key, as recorded in the manifest
    path: str  # local path, or bucket/key for S3 (what pyarrow.fs / DuckDB take)
    record_count: int
    file_size_in_bytes: int


@dataclass(frozen=True)
class TablePlan:
    table: str
    snapshot_id: int | None  # None: the table has no snapshot yet (no rows)
    snapshot_at: datetime | None
    schema: pa.Schema  # the columns as of that snapshot
    files: list[PlannedFile]
    is_s3: bool

    @property
    def row_count(self) -> int:
        return sum(f.record_count for f in self.files)


def plan_table(
    lake: Lake,
    table: str | TableName,
    *,
    snapshot_id: int | None = None,
    as_of: datetime | None = None,
    row_filter: BooleanExpression | str | Callable[[pa.Schema], BooleanExpression] = AlwaysTrue(),
) -> TablePlan:
    """The data files and schema of ``table`` at a snapshot.

    ``snapshot_id`` reads that snapshot; ``as_of`` the snapshot current at that time; neither
    the current one. Raises ``NotFound`` for an unknown table or a time before the first
    snapshot or a snapshot id that does not exist (or was expired)."""
    name = table if isinstance(table, TableName) else parse_table_name(table)
    iceberg = lake.load(name)
    snapshot = None
    if snapshot_id is not None:
        snapshot = iceberg.metadata.snapshot_by_id(snapshot_id)
        if snapshot is None:
            raise NotFound(f"table {name} has no snapshot {snapshot_id} (it may have been expired)")
    elif as_of is not None:
        snapshot = iceberg.snapshot_as_of_timestamp(int(as_of.timestamp() * 1000))
        if snapshot is None:
            raise NotFound(f"table {name} had no snapshot at {as_of.isoformat()}")
    else:
        snapshot = iceberg.current_snapshot()
    if snapshot is None:
        return TablePlan(str(name), None, None, file_schema(iceberg), [], lake.storage.is_s3)
    schema = iceberg.schemas().get(snapshot.schema_id) if snapshot.schema_id is not None else None
    from pyiceberg.io.pyarrow import schema_to_pyarrow

    arrow_schema = schema_to_pyarrow(schema, include_field_ids=False) if schema else file_schema(iceberg)
    if callable(row_filter):
        row_filter = row_filter(arrow_schema)
    scan = iceberg.scan(snapshot_id=snapshot.snapshot_id, row_filter=row_filter, case_sensitive=False)
    files = [
        PlannedFile(
            uri=task.file.file_path,
            path=lake.storage.path(task.file.file_path),
            record_count=task.file.record_count,
            file_size_in_bytes=task.file.file_size_in_bytes,
        )
        for task in scan.plan_files()
    ]
    return TablePlan(
        str(name),
        snapshot.snapshot_id,
        datetime.fromtimestamp(snapshot.timestamp_ms / 1000, UTC),
        arrow_schema,
        files,
        lake.storage.is_s3,
    )
