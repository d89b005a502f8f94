"""Bytes scanned: the compressed Parquet bytes of the column chunks a query reads.

Counted from Parquet footers (no data read) over the files the planner kept after
partition and file pruning, for the columns the query and the caller's view reference.
Footers are immutable with their files, so they are cached by path.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import pyarrow.parquet as pq

# Python types of Parquet bounds that compare as DuckDB compares the column's values.
BOUND_TYPES = (str, int, dt.date)


@dataclass(frozen=True)
class FileFacts:
    """What one Parquet footer says that queries need: bytes per column, dictionary columns."""

    sizes: dict[str, int]  # compressed bytes per top-level column (lower-case)
    decoded: dict[str, int]  # uncompressed bytes per top-level column (lower-case)
    dictionary: frozenset[str]  # top-level columns (lower-case) dictionary-encoded in every row group
    rows: int
    # lower-case column -> (min, max, NULL count) over the file, where every row group has them
    bounds: dict[str, tuple[object, object, int]]


@lru_cache(maxsize=4096)
def file_facts(path: str) -> FileFacts:
    metadata = pq.read_metadata(path)
    sizes: dict[str, int] = {}
    decoded: dict[str, int] = {}
    plain: set[str] = set()
    bounds: dict[str, tuple[object, object, int] | None] = {}
    for rg in range(metadata.num_row_groups):
        row_group = metadata.row_group(rg)
        for c in range(row_group.num_columns):
            chunk = row_group.column(c)
            top = chunk.path_in_schema.split(".")[0].lower()
            sizes[top] = sizes.get(top, 0) + chunk.total_compressed_size
            decoded[top] = decoded.get(top, 0) + chunk.total_uncompressed_size
            if not chunk.has_dictionary_page:
                plain.add(top)
            if top != chunk.path_in_schema.lower():  # nested: no bounds
                bounds[top] = None
            elif top not in bounds or bounds[top] is not None:
                bounds[top] = _merge(bounds.get(top), chunk.statistics, chunk.num_values)
    encoded = frozenset(sizes) - plain if metadata.num_row_groups else frozenset()
    known = {name: found for name, found in bounds.items() if found is not None}
    return FileFacts(sizes, decoded, encoded, metadata.num_rows, known)


def _merge(
    so_far: tuple[object, object, int] | None, statistics: pq.Statistics | None, values: int
) -> tuple[object, object, int] | None:
    """One more row group's (min, max, NULL count) merged in; None once any is unknown."""
    if statistics is None or not statistics.has_null_count:
        return None
    nulls = statistics.null_count
    if statistics.has_min_max:
        low, high = statistics.min, statistics.max
        if type(low) not in BOUND_TYPES or type(high) is not type(low):
            return None
    elif nulls == values:  # only NULLs: no bounds to merge
        low = high = None
    else:
        return None
    if so_far is None:
        return low, high, nulls
    old_low, old_high, old_nulls = so_far
    if low is None:
        return old_low, old_high, old_nulls + nulls
    if old_low is None:
        return low, high, old_nulls + nulls
    if type(old_low) is not type(low):
        return None
    return min(old_low, low), max(old_high, high), old_nulls + nulls  # type: ignore[type-var]


def column_bytes(path: str) -> dict[str, int]:
    """Compressed bytes per top-level column of one Parquet file."""
    return file_facts(path).sizes


def dictionary_columns(files: Iterable[str]) -> frozenset[str]:
    """Columns (lower-case) dictionary-encoded in every file: reading them as Arrow dictionaries
    skips decoding every value (DuckDB then groups and filters on the dictionary)."""
    common: frozenset[str] | None = None
    for path in files:
        found = file_facts(path).dictionary
        common = found if common is None else common & found
    return common or frozenset()


def bytes_scanned(files: Iterable[str], columns: set[str] | None) -> int:
    """Bytes of ``columns`` (lower-case names; None = every column) across ``files``."""
    total = 0
    for path in files:
        sizes = column_bytes(path)
        total += sum(size for name, size in sizes.items() if columns is None or name in columns)
    return total


def decoded_bytes(files: Iterable[str], columns: set[str]) -> int:
    """About the bytes ``columns`` take once decoded into Arrow (at least 8 per value: a
    dictionary-encoded column is small on disk but one index per row in memory)."""
    total = 0
    for path in files:
        facts = file_facts(path)
        total += sum(max(facts.decoded.get(name, 0), 8 * facts.rows) for name in columns)
    return total


def row_count(files: Iterable[str]) -> int:
    """Rows across ``files``, from their footers."""
    return sum(file_facts(path).rows for path in files)
