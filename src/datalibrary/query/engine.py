"""Run a guarded query in a DuckDB connection that is locked down before the caller's SQL runs.

Per query: a fresh in-memory connection; memory, threads and a timeout from settings; no
extension install or autoload; the caller's restricted views created over exactly the
planned Parquet files (``allowed_paths``), then external access turned off and the
configuration locked. Column restrictions, masks and row filters live inside the views, so
the optimizer still prunes and pushes down, and no SQL form can reach around them.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from datalibrary.errors import InvalidInput, Unavailable

CONNECTION_CONFIG = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
}


@dataclass(frozen=True)
class ViewSpec:
    """One restricted view: what the caller may see of one table at one snapshot."""

    name: str
    files: Sequence[str]
    schema: pa.Schema
    # output column -> SQL expression over the table's columns (masks are expressions)
    columns: dict[str, str]
    row_filter: str | None = None
    # Files whose statistics prove every row passes ``row_filter``: read without evaluating it.
    unfiltered: frozenset[str] = frozenset()


@dataclass(frozen=True)
class EngineLimits:
    memory_limit: str = "2GB"
    threads: int = 2
    timeout_seconds: float = 60.0
    max_rows: int = 1_000_000


@dataclass
class EngineResult:
    table: pa.Table
    truncated: bool = False
    warnings: list[str] = field(default_factory=list)


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _view_sql(view: ViewSpec) -> str:
    select = ", ".join(f"{expr} AS {quote(name)}" for name, expr in view.columns.items())
    if not view.files:  # an empty table at this snapshot: same columns, no rows
        types = {f.name: f.type for f in view.schema}
        empty = ", ".join(
            f"CAST(NULL AS {duckdb_type(types[name]) if name in types else 'VARCHAR'}) AS {quote(name)}"
            for name in view.columns
        )
        return f"CREATE VIEW {quote(view.name)} AS SELECT {empty} WHERE false"
    # Files of one table share its schema (the lake writes them so), so binding reads one footer.
    if not view.row_filter:
        return f"CREATE VIEW {quote(view.name)} AS SELECT {select} FROM {_source(view.files)}"
    checked = [f for f in view.files if f not in view.unfiltered]
    parts = [f"SELECT {select} FROM {_source(checked)} WHERE {view.row_filter}"] if checked else []
    proven = [f for f in view.files if f in view.unfiltered]
    if proven:
        parts.append(f"SELECT {select} FROM {_source(proven)}")
    return f"CREATE VIEW {quote(view.name)} AS " + " UNION ALL ".join(parts)


def _source(files: Sequence[str]) -> str:
    return "read_parquet([" + ", ".join(sql_string(f) for f in files) + "])"


def duckdb_type(arrow_type: pa.DataType) -> str:
    """The DuckDB type of an Arrow type, via an empty relation (no string mapping to maintain)."""
    con = duckdb.connect()
    try:
        relation = con.from_arrow(pa.table({"c": pa.array([], type=arrow_type)}))
        return str(relation.types[0])
    finally:
        con.close()


def open_locked(views: Sequence[ViewSpec], limits: EngineLimits) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:", config=CONNECTION_CONFIG)
    con.execute(f"SET memory_limit = {sql_string(limits.memory_limit)}")
    con.execute(f"SET threads = {int(limits.threads)}")
    paths = sorted({f for view in views for f in view.files})
    if paths:
        con.execute("SET allowed_paths = [" + ", ".join(sql_string(p) for p in paths) + "]")
    for view in views:
        con.execute(_view_sql(view))
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def view_key(view: ViewSpec) -> tuple[object, ...]:
    return (tuple(view.files), view.schema, tuple(view.columns.items()), view.row_filter, view.unfiltered)


def view_name(view: ViewSpec) -> str:
    """A name derived from what the view shows, so equal views share a locked database."""
    return "dl_" + hashlib.sha256(repr(view_key(view)).encode()).hexdigest()[:16]


class LockedDatabases:
    """Locked in-memory DuckDB databases, one per set of views, reused across queries.

    Opening and locking a database costs more than most small queries. The views a caller
    gets depend only on their grants and the planned files, so the same set of views is asked
    for again and again; each query gets a fresh connection (a cursor) on the locked database.
    A commit (new files) or a grant change yields other views, hence another database."""

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self._databases: OrderedDict[tuple[object, ...], duckdb.DuckDBPyConnection] = OrderedDict()
        self._lock = threading.Lock()

    def connect(self, views: Sequence[ViewSpec], limits: EngineLimits) -> duckdb.DuckDBPyConnection:
        key = (limits, tuple(sorted(view_key(v) + (v.name,) for v in views)))
        with self._lock:
            parent = self._databases.get(key)
            if parent is None:
                parent = self._databases[key] = open_locked(views, limits)
                while len(self._databases) > self.size:
                    self._databases.popitem(last=False)[1].close()
            self._databases.move_to_end(key)
            return parent.cursor()

    def clear(self) -> None:
        with self._lock:
            for con in self._databases.values():
                con.close()
            self._databases.clear()


DATABASES = LockedDatabases()


def run(sql: str, views: Sequence[ViewSpec], limits: EngineLimits) -> EngineResult:
    """Execute ``sql`` (already guarded and rendered) and fetch at most ``max_rows`` rows."""
    con = DATABASES.connect(views, limits)
    timer = threading.Timer(limits.timeout_seconds, con.interrupt)
    timer.start()
    try:
        relation = con.sql(sql)
        if relation is None:
            raise InvalidInput("only queries that return rows are allowed", field="sql")
        reader = relation.to_arrow_reader(65_536)
        batches, rows, truncated = [], 0, False
        for batch in reader:
            if rows + batch.num_rows > limits.max_rows:
                batches.append(batch.slice(0, limits.max_rows - rows))
                truncated = True
                break
            batches.append(batch)
            rows += batch.num_rows
        table = pa.Table.from_batches(batches, schema=reader.schema)
        return EngineResult(table=table, truncated=truncated)
    except duckdb.InterruptException:
        raise Unavailable(f"the query ran longer than {limits.timeout_seconds:g} s and was stopped") from None
    except duckdb.OutOfMemoryException:
        raise Unavailable(f"the query needed more than {limits.memory_limit} of memory") from None
    except duckdb.Error as exc:
        raise InvalidInput(safe_message(exc), field="sql") from None
    finally:
        timer.cancel()
        con.close()


def safe_message(exc: duckdb.Error) -> str:
    """DuckDB's message, unless it may echo data values (conversion errors quote the value,
    which could be a row the caller may not see)."""
    if isinstance(exc, (duckdb.ConversionException, duckdb.InvalidInputException)):
        return "the query failed: a value could not be converted (use TRY_CAST to skip such values)"
    message = str(exc).splitlines()[0]
    if isinstance(exc, duckdb.PermissionException):
        return "the query tried to reach something outside its tables"
    return f"the query failed: {message[:300]}"
