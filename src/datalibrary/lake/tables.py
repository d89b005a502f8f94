"""Writing to lake tables: Parquet (zstd) data files, then ONE snapshot by compare-and-swap.

Data files are written first under ``<table>/data/<tag>/`` where nobody reads them; the
commit makes them visible atomically. pyiceberg commits by compare-and-swap on the catalog
row; when another writer won, we reload the table and re-apply our change (up to
``lake.commit_retries`` times), re-checking the guard each time so that a concurrent
delivery of the same content is recognized, not appended twice.
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.io.pyarrow import parquet_file_to_data_file, schema_to_pyarrow
from pyiceberg.manifest import DataFile
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Operation, Snapshot
from pyiceberg.table.update.snapshot import _OverwriteFiles

from datalibrary.lake import locks
from datalibrary.lake.catalog import Lake, TableName

log = logging.getLogger(__name__)
PREFIX = "datalibrary."


def file_schema(table: Table) -> pa.Schema:
    """The Arrow schema data files of ``table`` are written with (no field ids: name mapping)."""
    return schema_to_pyarrow(table.schema(), include_field_ids=False)


def _with_field_ids(schema: pa.Schema, table: Table) -> pa.Schema:
    """``schema`` carrying the Iceberg field ids as Parquet field ids, as the Iceberg spec asks
    of data files (readers then resolve columns by id, not by the name-mapping fallback)."""
    with_ids = schema_to_pyarrow(table.schema(), include_field_ids=True)
    if with_ids.names != schema.names:
        return schema
    return pa.schema(
        [field.with_metadata(with_ids.field(field.name).metadata) for field in schema], schema.metadata
    )


class FileWriter:
    """Streams record batches into Parquet files of about ``target_bytes`` each.

    Batches are gathered into row groups of about ``row_group_bytes`` (uncompressed, never more
    than a file), so row groups follow data size rather than the readers' batch size; every file
    carries Iceberg field ids, column statistics and a page index."""

    def __init__(
        self,
        lake: Lake,
        table: Table,
        tag: str,
        schema: pa.Schema,
        target_bytes: int,
        row_group_bytes: int | None = None,
    ) -> None:
        self.lake = lake
        self.directory = f"{table.location()}/data/{tag}"
        self.schema = schema
        self.target_bytes = target_bytes
        configured = row_group_bytes or lake.settings.lake.row_group_mb << 20
        self.row_group_bytes = min(configured, target_bytes)
        self.files: list[str] = []
        self.rows = 0
        self.bytes_written = 0
        self._write_schema = _with_field_ids(schema, table)
        self._pending: list[pa.RecordBatch] = []
        self._pending_bytes = 0
        self._stream = None
        self._writer: pq.ParquetWriter | None = None

    def _open(self) -> None:
        uri = f"{self.directory}/part-{len(self.files):05d}-{uuid.uuid4().hex[:8]}.parquet"
        self._stream = self.lake.storage.open_output(uri)
        self._writer = pq.ParquetWriter(
            self._stream, self._write_schema, compression="zstd", compression_level=3, write_page_index=True
        )
        self.files.append(uri)

    def write(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        self._pending.append(batch)
        self._pending_bytes += batch.nbytes
        self.rows += batch.num_rows
        if self._pending_bytes >= self.row_group_bytes:
            self._flush_row_group()

    def _flush_row_group(self) -> None:
        if not self._pending:
            return
        if self._writer is None:
            self._open()
        assert self._writer is not None and self._stream is not None
        group = pa.Table.from_batches(self._pending)
        self._writer.write_table(group, row_group_size=group.num_rows)
        self._pending, self._pending_bytes = [], 0
        if self._stream.tell() >= self.target_bytes:
            self._finish()

    def _finish(self) -> None:
        if self._writer is not None and self._stream is not None:
            self._writer.close()
            self.bytes_written += self._stream.tell()
            self._stream.close()
        self._writer = self._stream = None

    def close(self) -> list[str]:
        self._flush_row_group()
        self._finish()
        return self.files

    def abort(self) -> None:
        self._pending, self._pending_bytes = [], 0
        try:
            self._finish()
        finally:
            self.lake.storage.delete_dir(self.directory)


class _ReplaceAll(_OverwriteFiles):
    """An overwrite that removes every live file and carries no earlier manifest forward.

    pyiceberg's overwrite keeps manifests whose entries are all ``DELETED``; those entries
    keep the column bounds of deleted files, which erasure must not leave behind."""

    def _existing_manifests(self) -> list:  # type: ignore[type-arg]
        return []


@dataclass
class CommitResult:
    snapshot_id: int | None
    attempts: int
    skipped: str | None = None  # why nothing was committed (the guard's answer)
    removed_files: list[str] = field(default_factory=list)


def lineage(table: Table) -> list[Snapshot]:
    """The current snapshot and its ancestors back to (and including) the last overwrite."""
    found: list[Snapshot] = []
    snapshot = table.current_snapshot()
    while snapshot is not None:
        found.append(snapshot)
        summary = snapshot.summary.additional_properties if snapshot.summary else {}
        if summary.get(f"{PREFIX}mode") == "overwrite":
            break
        if snapshot.parent_snapshot_id is None:
            break
        snapshot = table.metadata.snapshot_by_id(snapshot.parent_snapshot_id)
    return found


def summary_of(snapshot: Snapshot) -> dict[str, str]:
    summary = snapshot.summary
    if summary is None:
        return {}
    return {"operation": str(summary.operation.value), **summary.additional_properties}


def actions_from_summary(summary: dict[str, str]) -> dict[str, str]:
    """The per-column "what the policy did" of a snapshot ({} for snapshots before #14)."""
    try:
        return json.loads(summary.get("datalibrary.column-actions") or "{}")
    except ValueError:
        return {}


def risk_from_summary(summary: dict[str, str]) -> dict[str, Any] | None:
    raw = summary.get("datalibrary.risk")
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def current_data_files(table: Table) -> list[DataFile]:
    if table.current_snapshot() is None:
        return []
    return [task.file for task in table.scan().plan_files()]


def commit_files(
    lake: Lake,
    name: TableName,
    *,
    add: Iterable[str] = (),
    remove: Callable[[Table], list[DataFile]] | None = None,
    properties: dict[str, str] | None = None,
    guard: Callable[[Table], str | None] | None = None,
    holder: str = "commit",
    exclusive_held: bool = False,
    replace_all: bool = False,
) -> CommitResult:
    """Commit added files (and removals chosen on the fresh table) as one snapshot, retrying."""
    settings = lake.settings.lake
    added = list(add)
    props = {f"{PREFIX}{k}" if not k.startswith(PREFIX) else k: str(v) for k, v in (properties or {}).items()}

    def attempt_all() -> CommitResult:
        data_files: list[DataFile] | None = None
        for attempt in range(1, settings.commit_retries + 1):
            table = lake.load(name)
            if guard is not None and (reason := guard(table)):
                return CommitResult(None, attempt, skipped=reason)
            if data_files is None:
                data_files = [parquet_file_to_data_file(table.io, table.metadata, path) for path in added]
            removed = remove(table) if remove is not None else []
            if not data_files and not removed:
                return CommitResult(None, attempt, skipped="nothing to commit")
            transaction = table.transaction()
            update = transaction.update_snapshot(snapshot_properties=props)
            if replace_all:
                live = {f.file_path for f in current_data_files(table)}
                if live != {f.file_path for f in removed}:
                    raise ValueError("replace_all must remove every live data file")
                producer = _ReplaceAll(
                    operation=Operation.OVERWRITE,
                    transaction=transaction,
                    io=table.io,
                    snapshot_properties=props,
                )
            else:
                producer = update.overwrite() if removed else update.fast_append()
            with producer as change:
                for data_file in removed:
                    change.delete_data_file(data_file)
                for data_file in data_files:
                    change.append_data_file(data_file)
            try:
                committed = transaction.commit_transaction()
            except CommitFailedException:
                log.info("commit to %s lost a race (attempt %d); refreshing and re-applying", name, attempt)
                time.sleep(min(0.02 * 2**attempt, 1.0) * (0.5 + random.random()))  # noqa: S311
                continue
            snapshot = committed.current_snapshot()
            return CommitResult(
                snapshot.snapshot_id if snapshot else None,
                attempt,
                removed_files=[f.file_path for f in removed],
            )
        raise CommitFailedException(f"gave up committing to {name} after {settings.commit_retries} attempts")

    if exclusive_held:
        return attempt_all()
    with locks.lease(
        lake.catalog.engine,
        f"table:{name}",
        locks.SHARED,
        holder=locks.holder_name(holder),
        ttl=max(settings.lock_timeout_seconds, 60),
        timeout=settings.lock_timeout_seconds,
    ):
        return attempt_all()
