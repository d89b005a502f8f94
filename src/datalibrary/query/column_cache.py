"""Decoded columns of the lake's Parquet files, kept in memory for the next query.

Scientists query the same tables again and again; decoding Parquet is most of a query's time
when DuckDB reads through Arrow (the locked engine cannot read files itself). Data files never
change once written, so a decoded column of one file stays valid for as long as the file
exists: entries are keyed by path and checked against the file at every use (an erased or
expired file is never served, and its entries go), dropped least recently used past a byte
budget, and dropped when unused for a while (so a value of an erased subject does not linger
in a replica that never queries that table again).

What is cached is what the engine would have decoded anyway: whole columns of files the
planner chose, every row. Which rows and columns a caller sees is still decided by the views
(``engine``) — the cache never decides anything.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds

from datalibrary.lake import copies
from datalibrary.query import metering

MEMORY = "query column cache"

# (path, column name, Arrow type as text) -> (file identity, column, last use)
_Key = tuple[str, str, str]


class ColumnCache:
    """Least-recently-used decoded columns per file, up to ``budget`` bytes."""

    def __init__(self, budget: int = 1 << 30, idle_seconds: float = 600.0) -> None:
        self.budget, self.idle_seconds = budget, idle_seconds
        self._entries: OrderedDict[_Key, tuple[tuple[int, ...], pa.ChunkedArray, float]] = OrderedDict()
        self._held = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    @property
    def held_bytes(self) -> int:
        return self._held

    def fits(self, files: Sequence[str], fields: Sequence[pa.Field]) -> bool:
        """Whether the decoded columns of ``files`` (estimated from the footers) fit in half the
        budget: one query never flushes everything else, and a huge table streams instead."""
        if self.budget <= 0:
            return False
        names = {f.name.lower() for f in fields}
        return metering.decoded_bytes(files, names) <= self.budget // 2

    def table(self, files: Sequence[str], schema: pa.Schema, dictionary: Sequence[str]) -> pa.Table:
        """The columns of ``schema`` over ``files`` (one chunk per file), decoded once."""
        parts = [self._file(path, schema, dictionary) for path in files]
        if not parts:
            return schema.empty_table()
        return pa.concat_tables(parts)

    def _file(self, path: str, schema: pa.Schema, dictionary: Sequence[str]) -> pa.Table:
        identity = _identity(path)
        columns: dict[str, pa.ChunkedArray] = {}
        now = time.monotonic()
        with self._lock:
            self._expire(now)
            for field in schema:
                key = (path, field.name, str(field.type))
                found = self._entries.get(key)
                if found is None:
                    continue
                if found[0] != identity:  # the file was replaced or removed: never serve it
                    self._drop(key)
                    continue
                self._entries[key] = (found[0], found[1], now)
                self._entries.move_to_end(key)
                columns[field.name] = found[1]
        missing = [field for field in schema if field.name not in columns]
        self.hits += len(columns)
        if missing:
            self.misses += len(missing)
            decoded = _decode(path, pa.schema(missing), dictionary)
            with self._lock:
                for field in missing:
                    column = decoded.column(field.name)
                    key = (path, field.name, str(field.type))
                    if key not in self._entries:
                        self._held += column.nbytes
                    else:
                        self._held -= self._entries[key][1].nbytes - column.nbytes
                    self._entries[key] = (identity, column, now)
                    columns[field.name] = column
                self._evict()
        return pa.table([columns[f.name] for f in schema], schema=schema)

    def forget(self, paths: Sequence[str] | None = None) -> int:
        """Drop the entries of ``paths`` (every entry when None); returns the bytes freed."""
        with self._lock:
            before = self._held
            for key in [k for k in self._entries if paths is None or k[0] in paths]:
                self._drop(key)
            return before - self._held

    def _drop(self, key: _Key) -> None:
        self._held -= self._entries.pop(key)[1].nbytes

    def _evict(self) -> None:
        while self._held > self.budget and self._entries:
            self._drop(next(iter(self._entries)))

    def _expire(self, now: float) -> None:
        while self._entries:
            key, (_, _, used) = next(iter(self._entries.items()))
            if now - used <= self.idle_seconds:
                break
            self._drop(key)


def _identity(path: str) -> tuple[int, ...]:
    """Device, inode, size, modification and change times: a path whose file was removed,
    replaced or rewritten in place is another file. The change time is there because the
    modification time can be set back (``os.utime``) and the change time cannot."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return (-1,)
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


def _decode(path: str, schema: pa.Schema, dictionary: Sequence[str]) -> pa.Table:
    """The columns of ``schema`` of one file, cast to it (columns a file lacks read as NULL)."""
    wanted = [name for name in dictionary if name in schema.names]
    file_format = ds.ParquetFileFormat(read_options=ds.ParquetReadOptions(dictionary_columns=wanted))
    return ds.dataset([path], schema=schema, format=file_format).to_table()


COLUMNS = ColumnCache()


def _erasure_scan(scope: copies.ErasureScope) -> list[dict[str, Any]]:
    """An erasure empties this process's cache: the erased subject's values may be in it.
    (Other processes never serve a removed file and drop what they hold once it is idle.)"""
    freed = COLUMNS.forget()
    return [copies.entry(MEMORY, "memory", [], "cleared", freed)] if freed else []


def register() -> None:
    copies.register(MEMORY, _erasure_scan)
