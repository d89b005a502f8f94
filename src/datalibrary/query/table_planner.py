"""What the query service needs from the lake: a table planned at a snapshot.

The lake implements ``TablePlanner``; the query service never touches Iceberg directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import pyarrow as pa


@dataclass(frozen=True)
class PlannedTable:
    namespace: str
    table: str
    schema: pa.Schema
    files: Sequence[str]  # local Parquet paths to read, after pruning
    snapshot_id: int | None  # None: the table has no snapshot yet


class TablePlanner(Protocol):
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
        """Plan ``namespace.table`` at a snapshot (or the snapshot current at ``as_of``, or the
        latest); ``row_filter`` (the caller's grant) and ``pushdown`` (the query's own simple
        predicates), both DuckDB SQL over the table's columns, may prune files.
        Raise NotFound for an unknown table or snapshot."""
        ...
