"""The query service's ``TablePlanner`` over the lake: pyiceberg plans the files of a
snapshot, pruned by the caller's row filter and the query's own simple predicates.

DuckDB cannot read S3 here (its httpfs extension cannot be downloaded), so files of an S3
warehouse are read through a local cache of immutable Parquet files under the state dir.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pyarrow as pa
from pyarrow import fs as pafs
from pyiceberg.catalog.sql import IcebergTables
from pyiceberg.expressions import AlwaysTrue, And, BooleanExpression
from sqlalchemy import select

from datalibrary.access.rowsecurity import compile_filter
from datalibrary.config import Settings
from datalibrary.lake.catalog import TableName, open_lake
from datalibrary.lake.copies import cache_name, query_cache_dir
from datalibrary.lake.scan_planning import TablePlan, plan_table
from datalibrary.query.table_planner import PlannedTable

log = logging.getLogger(__name__)


def pruning_filter(*predicates: str | None) -> Callable[[pa.Schema], BooleanExpression]:
    """The conjunction of the predicates as an Iceberg pruning expression, built by the one
    row-security compiler (sound for pruning: it never drops a file with a TRUE row)."""
    compiled = [compile_filter(p) for p in predicates if p]

    def build(schema: pa.Schema) -> BooleanExpression:
        expression: BooleanExpression = AlwaysTrue()
        for predicate in compiled:
            if predicate is not None:
                expression = And(expression, predicate.iceberg(schema))
        return expression

    return build


class LakePlanner:
    """Plans are cached by the table's metadata file: every commit writes a new one, so a
    cached plan can never be stale, and a repeated query skips reading metadata and manifests."""

    CACHE_SIZE = 512

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.cache_dir = query_cache_dir(settings)  # erasure finds and purges copies here
        self._plans: OrderedDict[tuple[object, ...], PlannedTable] = OrderedDict()
        self._lock = threading.Lock()

    def _metadata_location(self, namespace: str, table: str) -> str | None:
        lake = open_lake(self.settings)
        with lake.catalog.engine.connect() as connection:
            return connection.execute(
                select(IcebergTables.metadata_location).where(
                    IcebergTables.catalog_name == lake.catalog.name,
                    IcebergTables.table_namespace == namespace,
                    IcebergTables.table_name == table,
                )
            ).scalar()

    def plan(
        self,
        namespace: str,
        table: str,
        *,
        snapshot_id: int | None = None,
        as_of: datetime | None = None,
        row_filter: str | None = None,
        pushdown: str | None = None,
    ) -> PlannedTable:
        location = self._metadata_location(namespace, table)
        key = (location, namespace, table, snapshot_id, as_of, row_filter, pushdown)
        with self._lock:
            if location is not None and key in self._plans:
                self._plans.move_to_end(key)
                return self._plans[key]
        lake = open_lake(self.settings)
        name = TableName(namespace, table)
        try:
            plan = plan_table(
                lake,
                name,
                snapshot_id=snapshot_id,
                as_of=as_of,
                row_filter=pruning_filter(row_filter, pushdown),
            )
        except (ValueError, TypeError):  # a predicate that does not bind to the table: plan without it
            plan = plan_table(lake, name, snapshot_id=snapshot_id, as_of=as_of)
        files = self._local_files(plan) if plan.is_s3 else [f.path for f in plan.files]
        planned = PlannedTable(namespace, table, plan.schema, files, plan.snapshot_id)
        with self._lock:
            self._plans[key] = planned
            while len(self._plans) > self.CACHE_SIZE:
                self._plans.popitem(last=False)
        return planned

    def _local_files(self, plan: TablePlan) -> list[str]:
        """Local copies of the plan's S3 files; data files never change, so a copy stays valid."""
        lake = open_lake(self.settings)
        self.cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        local = []
        for planned in plan.files:
            target = self.cache_dir / cache_name(planned.uri)
            if not target.exists():
                partial = target.with_suffix(f".{os.getpid()}.part")
                filesystem: pafs.FileSystem = lake.storage.fs
                pafs.copy_files(planned.path, str(partial), source_filesystem=filesystem,
                                destination_filesystem=pafs.LocalFileSystem())  # fmt: skip
                Path(partial).replace(target)
            local.append(str(target))
        return local
