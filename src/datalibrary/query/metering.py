"""Bytes scanned: the compressed Parquet bytes of the column chunks a query reads.

Counted from Parquet footers (no data read) over the files the planner kept after
partition and file pruning, for the columns the query and the caller's view reference.
Footers are immutable with their files, so they are cached by path.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

import pyarrow.parquet as pq


@lru_cache(maxsize=4096)
def column_bytes(path: str) -> dict[str, int]:
    """Compressed bytes per top-level column of one Parquet file."""
    metadata = pq.read_metadata(path)
    sizes: dict[str, int] = {}
    for rg in range(metadata.num_row_groups):
        row_group = metadata.row_group(rg)
        for c in range(row_group.num_columns):
            chunk = row_group.column(c)
            top = chunk.path_in_schema.split(".")[0].lower()
            sizes[top] = sizes.get(top, 0) + chunk.total_compressed_size
    return sizes


def bytes_scanned(files: Iterable[str], columns: set[str] | None) -> int:
    """Bytes of ``columns`` (lower-case names; None = every column) across ``files``."""
    total = 0
    for path in files:
        sizes = column_bytes(path)
        total += sum(size for name, size in sizes.items() if columns is None or name in columns)
    return total
