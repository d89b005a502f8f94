"""Run a guarded query in a DuckDB database that holds nothing but the caller's Arrow data.

Each database is built for one set of views: the planned Parquet files of each table are
registered as Arrow data restricted to the columns the view needs (hidden columns that no
filter uses are not even there): each query's columns come decoded from the process's column
cache (``column_cache``) when they fit its budget, else from a pyarrow dataset decoded for the
query (DuckDB pushes projections and filters into it). Views on top apply masks and the row filter
(``COALESCE(filter, FALSE)``: NULL means not visible); files whose statistics prove the filter
TRUE on every row (``RowSecurity.holds_everywhere``) form a second dataset read without it.
Before any user SQL runs: external access is off (no file, no URL, no ATTACH), Python
replacement scans are off (no variable of this process can be named), extensions cannot be
installed or loaded, and the configuration is locked. The only names the database knows are
the views, one or two sources per view under unguessable names, and DuckDB's system
catalog, which the guard never lets a query name.

Opening a database costs ~40 ms, so databases are pooled by their views; each query checks
one out for itself (one query at a time per database, so its memory limit is the query's).
Results up to 16 MB stay in memory; larger ones are written to an unlinked temporary Arrow IPC
file and read back memory-mapped: the API process never holds a large result on its heap.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import logging
import os
import secrets
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds

from datalibrary.access.rowsecurity import compile_filter
from datalibrary.config import EngineLimits
from datalibrary.errors import InvalidInput, Unavailable
from datalibrary.query import metering
from datalibrary.query.column_cache import COLUMNS, ColumnCache

log = logging.getLogger(__name__)
CONNECTION_CONFIG = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
    "enable_external_access": False,
    "python_enable_replacements": False,
}
BATCH_ROWS = 65_536
# Results up to this size stay on the heap; larger ones are spilled to a mapped file.
SPILL_BYTES = 16 << 20


@dataclass(frozen=True)
class ViewSpec:
    """One restricted view: what the caller may see of one table at one snapshot."""

    name: str
    files: Sequence[str]
    schema: pa.Schema
    # output column -> SQL expression over the table's columns (masks are expressions)
    columns: dict[str, str]
    # The grant's row filter (DuckDB SQL); rows where it is FALSE or NULL are not visible.
    row_filter: str | None = None
    # Files whose statistics prove the row filter TRUE on every row: read without it.
    proven: frozenset[str] = frozenset()


@dataclass
class EngineResult:
    """A query's rows, memory-mapped from a spilled Arrow IPC file (or empty)."""

    table: pa.Table
    truncated: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def num_rows(self) -> int:
        return self.table.num_rows


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def visible_predicate(row_filter: str | None) -> str:
    """The view's WHERE: a row is visible only where the filter is TRUE (never NULL)."""
    return "TRUE" if not row_filter else f"COALESCE(({row_filter}), FALSE)"


def duckdb_type(arrow_type: pa.DataType) -> str:
    """The DuckDB type of an Arrow type, via an empty relation (no string mapping to maintain)."""
    return _TYPES.get(arrow_type)


class _TypeNames:
    def __init__(self) -> None:
        self._cache: dict[pa.DataType, str] = {}
        self._lock = threading.Lock()

    def get(self, arrow_type: pa.DataType) -> str:
        with self._lock:
            if arrow_type not in self._cache:
                con = duckdb.connect()
                try:
                    relation = con.from_arrow(pa.table({"c": pa.array([], type=arrow_type)}))
                    self._cache[arrow_type] = str(relation.types[0])
                finally:
                    con.close()
            return self._cache[arrow_type]


_TYPES = _TypeNames()


def _is_string(arrow_type: pa.DataType) -> bool:
    return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)


def _source(view: ViewSpec, files: Sequence[str], filtered: bool) -> tuple[ds.Dataset, list[str]]:
    """The data of ``files`` as a pyarrow dataset of only the columns the view reads (and its
    row filter, if ``filtered``), and its columns read as Arrow dictionaries: string columns
    stored with a Parquet dictionary (no per-value decoding)."""
    needed: set[str] = set()
    if filtered and view.row_filter:
        needed |= set(compile_filter(view.row_filter).columns)  # type: ignore[union-attr]
    exprs = " ".join(view.columns.values()).lower()
    needed |= {f.name.lower() for f in view.schema if quote(f.name).lower() in exprs}
    fields = [f for f in view.schema if f.name.lower() in needed] or [view.schema.field(0)]
    if not files:
        return ds.dataset(pa.schema(fields).empty_table()), []
    encoded = metering.dictionary_columns(files)
    dictionary = [f.name for f in fields if f.name.lower() in encoded and _is_string(f.type)]
    schema = pa.schema(
        [f.with_type(pa.dictionary(pa.int32(), f.type)) if f.name in dictionary else f for f in fields]
    )
    file_format = ds.ParquetFileFormat(read_options=ds.ParquetReadOptions(dictionary_columns=dictionary))
    return ds.dataset(list(files), schema=schema, format=file_format), dictionary


def _parts(view: ViewSpec) -> list[tuple[list[str], bool]]:
    """(files, filtered) groups of the view: files read with the row filter, and files whose
    statistics prove it (read without it)."""
    if not view.row_filter:
        return [(list(view.files), False)]
    checked = [f for f in view.files if f not in view.proven]
    proven = [f for f in view.files if f in view.proven]
    if not proven:
        return [(checked, True)]
    return [(proven, False)] + ([(checked, True)] if checked else [])


try:  # DuckDB's scan sources (duckdb >= 2): a source chooses what it streams
    from duckdb._sources.nodes import Node
    from duckdb._sources.pyarrow import PyArrowDatasetSource
except ImportError:  # pragma: no cover - older DuckDB: plain registration, no row count or cache
    PyArrowDatasetSource = object
    Node = object


class _ParquetColumns(PyArrowDatasetSource):  # type: ignore[misc,valid-type]
    """A view's files for DuckDB: the columns a query asks for, decoded once and kept in the
    column cache while they fit its budget (DuckDB then applies every predicate itself), else
    decoded per query by the pyarrow dataset. It tells the optimizer its row count (from the
    Parquet footers): without it a join builds its hash table on the large side."""

    def __init__(
        self, dataset: ds.Dataset, files: Sequence[str], dictionary: list[str], cache: ColumnCache
    ) -> None:
        super().__init__(dataset)
        self._files, self._dictionary, self._cache = list(files), dictionary, cache
        self._rows = metering.row_count(files)

    def rows(self) -> int | None:
        return self._rows

    def accepts(self, predicate: Node) -> bool:
        return self._cache.budget <= 0 and super().accepts(predicate)

    def stream(self, columns: Sequence[int] | None, filters: Sequence[Node]) -> tuple[object, bool]:
        schema = self.declared_schema()
        fields = list(schema) if columns is None else [schema.field(i) for i in columns]
        if filters or not fields or not self._files or not self._cache.fits(self._files, fields):
            return super().stream(columns, filters)
        table = self._cache.table(self._files, pa.schema(fields), self._dictionary)
        return table.__arrow_c_stream__(), columns is not None


def _register(
    con: duckdb.DuckDBPyConnection, name: str, view: ViewSpec, files: Sequence[str], filtered: bool
) -> None:
    dataset, dictionary = _source(view, files, filtered)
    hook = getattr(con, "_register_arrow_source", None)  # DuckDB's hook for scan sources
    if hook is None or PyArrowDatasetSource is object:
        con.register(name, dataset)
    else:
        hook(name, _ParquetColumns(dataset, files, dictionary, COLUMNS))


def open_locked(views: Sequence[ViewSpec], limits: EngineLimits) -> duckdb.DuckDBPyConnection:
    """A fresh database with the views over Arrow data, locked before it is handed out."""
    COLUMNS.budget, COLUMNS.idle_seconds = limits.cache_bytes, limits.cache_idle_seconds
    for view in views:
        _refuse_case_twins(view)
    con = duckdb.connect(
        ":memory:",
        config=CONNECTION_CONFIG | {"memory_limit": limits.memory_limit, "threads": int(limits.threads)},
    )
    try:
        for view in views:
            select = ", ".join(f"{expr} AS {quote(name)}" for name, expr in view.columns.items())
            parts = []
            for files, filtered in _parts(view):
                source = "dl_src_" + secrets.token_hex(12)
                _register(con, source, view, files, filtered)
                where = visible_predicate(view.row_filter if filtered else None)
                parts.append(f"SELECT {select} FROM {quote(source)} WHERE {where}")
            con.execute(f"CREATE TEMP VIEW {quote(view.name)} AS {' UNION ALL '.join(parts)}")
        con.execute("SET lock_configuration = true")
    except duckdb.Error as exc:
        con.close()
        raise InvalidInput(safe_message(exc), field="sql") from None
    return con


def _refuse_case_twins(view: ViewSpec) -> None:
    """DuckDB binds identifiers without regard to case, so of two columns whose names differ
    only by case a view's expression may read the other one (a hidden column shown under a
    visible one's name): such a table is not queried."""
    seen: dict[str, str] = {}
    for name in view.schema.names:
        twin = seen.setdefault(name.lower(), name)
        if twin != name:
            raise InvalidInput(
                f"the table has columns {twin!r} and {name!r}, which differ only by case; "
                "queries cannot tell them apart (ask a data steward to rename one)",
                field="sql",
            )


def view_key(view: ViewSpec) -> tuple[object, ...]:
    columns = tuple(view.columns.items())
    return (tuple(view.files), view.schema, columns, view.row_filter, tuple(sorted(view.proven)))


def view_name(view: ViewSpec) -> str:
    """A name derived from what the view shows, so equal views share pooled databases."""
    return "dl_" + hashlib.sha256(repr(view_key(view)).encode()).hexdigest()[:16]


class LockedDatabases:
    """Pools of locked databases, one pool per set of views, least recently used dropped.

    A database serves one query at a time: it is checked out, used and given back (or
    closed, if the query was interrupted or ran out of memory). A commit (new files) or a
    grant change yields other views, hence another pool."""

    def __init__(self, keys: int = 32, per_key: int = 2) -> None:
        self.keys, self.per_key = keys, per_key
        self._idle: OrderedDict[tuple[object, ...], list[duckdb.DuckDBPyConnection]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(views: Sequence[ViewSpec], limits: EngineLimits) -> tuple[object, ...]:
        return (limits.memory_limit, limits.threads, tuple(sorted(view_key(v) + (v.name,) for v in views)))

    def checkout(self, views: Sequence[ViewSpec], limits: EngineLimits) -> duckdb.DuckDBPyConnection:
        key = self.key(views, limits)
        with self._lock:
            idle = self._idle.get(key)
            if idle:
                self._idle.move_to_end(key)
                return idle.pop()
        return open_locked(views, limits)

    def checkin(
        self, views: Sequence[ViewSpec], limits: EngineLimits, con: duckdb.DuckDBPyConnection
    ) -> None:
        key = self.key(views, limits)
        with self._lock:
            idle = self._idle.setdefault(key, [])
            self._idle.move_to_end(key)
            if len(idle) < self.per_key:
                idle.append(con)
                con = None  # type: ignore[assignment]
            while len(self._idle) > self.keys:
                for old in self._idle.popitem(last=False)[1]:
                    old.close()
        if con is not None:
            con.close()

    def clear(self) -> None:
        with self._lock:
            for idle in self._idle.values():
                for con in idle:
                    con.close()
            self._idle.clear()


DATABASES = LockedDatabases()


class Watchdog:
    """One thread that interrupts queries past their deadline (a thread per query, as
    ``threading.Timer`` starts, costs milliseconds on a busy machine)."""

    def __init__(self) -> None:
        self._deadlines: list[tuple[float, int, Callable[[], None]]] = []
        self._pending: set[int] = set()
        self._cancelled: set[int] = set()
        self._counter = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float, action: Callable[[], None]) -> int:
        ticket = next(self._counter)
        with self._wake:
            heapq.heappush(self._deadlines, (time.monotonic() + seconds, ticket, action))
            self._pending.add(ticket)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="query-watchdog", daemon=True)
                self._thread.start()
            self._wake.notify()
        return ticket

    def disarm(self, ticket: int) -> None:
        with self._wake:
            if ticket in self._pending:
                self._pending.discard(ticket)
                self._cancelled.add(ticket)
            if len(self._cancelled) > 64 and len(self._cancelled) * 2 > len(self._deadlines):
                # drop finished queries' deadlines now (they hold their connections)
                self._deadlines = [d for d in self._deadlines if d[1] not in self._cancelled]
                heapq.heapify(self._deadlines)
                self._cancelled.clear()

    def _loop(self) -> None:
        while True:
            with self._wake:
                while self._deadlines and self._deadlines[0][1] in self._cancelled:
                    self._cancelled.discard(heapq.heappop(self._deadlines)[1])
                if not self._deadlines:
                    self._wake.wait()
                    continue
                due, ticket, action = self._deadlines[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                heapq.heappop(self._deadlines)
                self._pending.discard(ticket)
            try:
                action()
            except Exception:  # a connection closed meanwhile: nothing left to stop
                log.debug("query interrupt failed", exc_info=True)


WATCHDOG = Watchdog()


def run(sql: str, views: Sequence[ViewSpec], limits: EngineLimits) -> EngineResult:
    """Execute ``sql`` (already guarded and rendered) and keep at most ``max_rows`` rows."""
    con = DATABASES.checkout(views, limits)
    healthy = False
    timer = WATCHDOG.arm(limits.timeout_seconds, con.interrupt)
    try:
        relation = con.sql(sql)
        if relation is None:
            raise InvalidInput("only queries that return rows are allowed", field="sql")
        result = _spill(relation.to_arrow_reader(BATCH_ROWS), limits.max_rows)
        healthy = True
        return result
    except duckdb.InterruptException:
        raise Unavailable(f"the query ran longer than {limits.timeout_seconds:g} s and was stopped") from None
    except duckdb.OutOfMemoryException:
        raise Unavailable(f"the query needed more than {limits.memory_limit} of memory") from None
    except duckdb.Error as exc:
        healthy = True
        raise InvalidInput(safe_message(exc), field="sql") from None
    except (pa.ArrowException, OSError) as exc:  # a DuckDB error raised while batches stream
        raise streamed_error(str(exc), limits) from None
    finally:
        WATCHDOG.disarm(timer)
        if healthy:
            DATABASES.checkin(views, limits, con)
        else:
            con.close()


def _spill(reader: pa.RecordBatchReader, max_rows: int) -> EngineResult:
    """Keep a small result in memory; past ``SPILL_BYTES`` write the batches to an unlinked
    temporary IPC file and map it: bounded heap, any size, no file for the common small case."""
    kept: list[pa.RecordBatch] = []
    held, rows, truncated = 0, 0, False
    batches = iter(reader)
    for batch in batches:
        if rows + batch.num_rows > max_rows:
            kept.append(batch.slice(0, max_rows - rows))
            truncated = True
            break
        kept.append(batch)
        rows += batch.num_rows
        held += batch.nbytes
        if held > SPILL_BYTES:
            return _to_file(reader.schema, kept, batches, rows, max_rows)
    return EngineResult(table=pa.Table.from_batches(kept, schema=reader.schema), truncated=truncated)


def _to_file(
    schema: pa.Schema, kept: list[pa.RecordBatch], rest: Iterator[pa.RecordBatch], rows: int, max_rows: int
) -> EngineResult:
    handle, path = tempfile.mkstemp(prefix="datalibrary-result-", suffix=".arrow")
    os.close(handle)
    try:
        truncated = False
        with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
            for batch in kept:
                writer.write_batch(batch)
            kept.clear()
            for batch in rest:
                if rows + batch.num_rows > max_rows:
                    writer.write_batch(batch.slice(0, max_rows - rows))
                    truncated = True
                    break
                writer.write_batch(batch)
                rows += batch.num_rows
        table = pa.ipc.open_file(pa.memory_map(path, "r")).read_all()
    finally:
        os.unlink(path)  # the mapping keeps the data readable; nothing is left on disk
    return EngineResult(table=table, truncated=truncated)


def streamed_error(message: str, limits: EngineLimits) -> InvalidInput | Unavailable:
    """A DuckDB error that reached us through Arrow (only its kind is kept: the text may quote
    a value the caller cannot see)."""
    kind = message.split(":", 1)[0].strip()[:60]
    if "Interrupt" in kind:
        return Unavailable(f"the query ran longer than {limits.timeout_seconds:g} s and was stopped")
    if "Out of Memory" in kind:
        return Unavailable(f"the query needed more than {limits.memory_limit} of memory")
    if "Conversion" in kind or "Invalid Input" in kind:
        return InvalidInput(
            "the query failed: a value could not be converted (use TRY_CAST to skip such values)", field="sql"
        )
    return InvalidInput(f"the query failed while it ran ({kind or 'error'})", field="sql")


def safe_message(exc: duckdb.Error) -> str:
    """DuckDB's message, unless it may echo data values (conversion errors quote the value,
    which could be a row the caller may not see)."""
    if isinstance(exc, (duckdb.ConversionException, duckdb.InvalidInputException)):
        return "the query failed: a value could not be converted (use TRY_CAST to skip such values)"
    message = str(exc).splitlines()[0]
    if isinstance(exc, duckdb.PermissionException):
        return "the query tried to reach something outside its tables"
    return f"the query failed: {message[:300]}"
