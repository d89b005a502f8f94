"""What an export holds: a content-addressed snapshot taken at request time, and the review
summary computed from that snapshot in bounded memory.

The snapshot is the only thing reviewed and the only thing handed out: it is written once
under ``<home>/exports/objects/<sha256>`` (the name is the digest of the bytes), and every
later read checks the digest, so a file swapped after the request can never leave.

The summary streams the snapshot in record batches (never decoding a whole Parquet or CSV
file): rows, per-column type, nulls, distinct values (exact up to a cap), numeric min/max,
the first rows (cells cut to a length), and the risk report of :mod:`datalibrary.privacy.risk`.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from datalibrary.config import Settings
from datalibrary.errors import Conflict, InvalidInput, TooLarge
from datalibrary.privacy import risk

BATCH_ROWS = 8_192
SAMPLE_ROWS = 20
SAMPLE_CELL_CHARS = 200
DISTINCT_CAP = 10_000
TABULAR = {"csv": "csv", "tsv": "tsv", "parquet": "parquet", "arrows": "arrow"}


def exports_dir(settings: Settings) -> Path:
    path = settings.home / "exports"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def objects_dir(settings: Settings) -> Path:
    path = exports_dir(settings) / "objects"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def store_bytes(settings: Settings, content: bytes) -> tuple[Path, str, int]:
    """Write ``content`` once under its SHA-256 (atomic rename); returns (path, digest, size)."""
    if len(content) > settings.lineage.export_max_mb << 20:
        raise TooLarge(f"the export is larger than {settings.lineage.export_max_mb} MB")
    digest = hashlib.sha256(content).hexdigest()
    target = objects_dir(settings) / digest
    if not target.exists():
        partial = target.with_name(f".{digest}.{secrets.token_hex(4)}.part")
        with open(partial, "wb", opener=lambda p, f: os.open(p, f, 0o600)) as out:
            out.write(content)
        partial.replace(target)
    return target, digest, len(content)


def store_file(settings: Settings, source: Path) -> tuple[Path, str, int]:
    """Copy ``source`` into the store in chunks, hashing as it goes (the copy is what counts)."""
    limit = settings.lineage.export_max_mb << 20
    digest = hashlib.sha256()
    partial = objects_dir(settings) / f".copy-{secrets.token_hex(8)}.part"
    size = 0
    try:
        with open(source, "rb") as src, open(partial, "wb", opener=lambda p, f: os.open(p, f, 0o600)) as out:
            while chunk := src.read(1 << 20):
                size += len(chunk)
                if size > limit:
                    raise TooLarge(f"the file is larger than {settings.lineage.export_max_mb} MB")
                digest.update(chunk)
                out.write(chunk)
        target = partial.with_name(digest.hexdigest())
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target, digest.hexdigest(), size


def read_verified(path: Path, sha256: str | None) -> bytes:
    """The snapshot's bytes, only if they still hash to the digest recorded at request time."""
    try:
        content = path.read_bytes()
    except OSError:
        raise Conflict("the export's reviewed content is missing: request it again") from None
    if not sha256 or hashlib.sha256(content).hexdigest() != sha256:
        raise Conflict("the export's stored content changed since it was reviewed: nothing was handed out")
    return content


def verify(path: Path, sha256: str | None) -> None:
    """Streamed digest check (the review reads the snapshot in batches, so check it first)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except OSError:
        raise Conflict("the export's reviewed content is missing: request it again") from None
    if digest.hexdigest() != sha256:
        raise Conflict("the export's stored content changed since it was requested")


def tabular_format(name: str) -> str | None:
    return TABULAR.get(Path(name).suffix.lower().lstrip("."))


def _csv_reader(path: Path, fmt: str) -> pacsv.CSVStreamingReader:
    """CSV read as text in 1 MB blocks: the review shows what the file says, and a later block
    whose values do not fit a type guessed from the first one cannot fail the review."""
    parse = pacsv.ParseOptions(delimiter="\t" if fmt == "tsv" else ",")
    read = pacsv.ReadOptions(block_size=1 << 20)
    names = pacsv.open_csv(path, parse_options=parse, read_options=read).schema.names
    convert = pacsv.ConvertOptions(column_types={name: pa.string() for name in names})
    return pacsv.open_csv(path, parse_options=parse, read_options=read, convert_options=convert)


def _batches(path: Path, fmt: str) -> Iterator[pa.RecordBatch]:
    if fmt == "parquet":
        yield from pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS)
        return
    if fmt == "arrow":  # an Arrow IPC stream, read batch by batch from a memory map
        yield from pa.ipc.open_stream(pa.memory_map(str(path)))
        return
    yield from _csv_reader(path, fmt)


def schema_of(path: Path, fmt: str) -> pa.Schema:
    if fmt == "parquet":
        return pq.ParquetFile(path).schema_arrow
    if fmt == "arrow":
        return pa.ipc.open_stream(pa.memory_map(str(path))).schema
    return _csv_reader(path, fmt).schema


class _ColumnStats:
    """Nulls, distinct values (exact up to ``DISTINCT_CAP``), min/max of numbers and dates."""

    def __init__(self, field: pa.Field) -> None:
        self.field = field
        self.nulls = 0
        self.distinct: set[Any] | None = set()
        self.low: Any = None
        self.high: Any = None
        kind = field.type
        self.ranged = pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_temporal(kind)
        self.hashable = not (pa.types.is_nested(kind) or pa.types.is_binary(kind))

    def add(self, column: pa.Array) -> None:
        self.nulls += column.null_count
        if isinstance(column.type, pa.DictionaryType):
            # Decode only the distinct values: a dictionary column may expand enormously.
            column = pc.unique(column).dictionary_decode()
        if self.distinct is not None and self.hashable:
            values = pc.unique(column)
            if len(values) + len(self.distinct) > DISTINCT_CAP * 4:
                values = values.slice(0, DISTINCT_CAP * 4)
            self.distinct.update(
                v if not isinstance(v, str) else hashlib.blake2b(v.encode(), digest_size=8).digest()
                for v in values.to_pylist()
            )
            if len(self.distinct) > DISTINCT_CAP:
                self.distinct = None
        if self.ranged and len(column) > column.null_count:
            bounds = pc.min_max(column)
            low, high = bounds["min"].as_py(), bounds["max"].as_py()
            self.low = low if self.low is None else min(self.low, low)
            self.high = high if self.high is None else max(self.high, high)

    def as_dict(self, rows: int) -> dict[str, Any]:
        return {
            "name": self.field.name,
            "type": str(self.field.type),
            "nulls": self.nulls,
            "distinct": len(self.distinct) if self.distinct is not None else None,
            "distinct_over": None if self.distinct is not None else DISTINCT_CAP,
            "min": None if self.low is None else str(self.low)[:64],
            "max": None if self.high is None else str(self.high)[:64],
        }


def _cell(value: Any) -> Any:
    if value is None:
        return None
    text = value.hex() if isinstance(value, (bytes, bytearray)) else str(value)
    return text if len(text) <= SAMPLE_CELL_CHARS else text[: SAMPLE_CELL_CHARS - 1] + "…"


def summarize_file(
    path: Path,
    fmt: str,
    *,
    quasi_identifiers: list[str] | None = None,
    count_column: str | None = None,
    aggregate_cells: list[int] | None = None,
    threshold: float = risk.DEFAULT_MAX_RISK,
) -> dict[str, Any]:
    """What the steward reviews, streamed from the snapshot: content, sample and risk.

    The result is *aggregate* when a count column is named (each row a group, its count the
    class size) or when the query's group sizes were measured (``aggregate_cells``);
    otherwise it is *row-level* and the risk is k-anonymity on the quasi-identifiers."""
    try:
        schema = schema_of(path, fmt)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InvalidInput(f"the file cannot be read as a table: {str(exc)[:200]}") from None
    names = schema.names
    named = [q.strip() for q in (quasi_identifiers or []) if q and q.strip()]
    qis, missing = risk.resolve_columns(names, named or risk.suggest_quasi_identifiers(names))
    count = None
    if count_column:
        found, absent = risk.resolve_columns(names, [count_column])
        if absent:
            raise InvalidInput(
                f"the export has no column {count_column!r} to count cells", field="count_column"
            )
        count = found[0]
    counter = risk.RiskCounter(qis) if qis and count is None else None
    stats = [_ColumnStats(f) for f in schema]
    cells: list[int] = []
    sample: list[list[Any]] = []
    rows = 0
    try:
        for batch in _batches(path, fmt):
            rows += batch.num_rows
            for index, column_stats in enumerate(stats):
                column_stats.add(batch.column(index))
            if counter is not None:
                counter.add(batch.select(qis))
            if count is not None:
                numbers = pc.cast(batch.column(count), pa.int64(), safe=False)
                cells.extend(v for v in numbers.to_pylist() if v is not None)
            if len(sample) < SAMPLE_ROWS:
                head = batch.slice(0, SAMPLE_ROWS - len(sample))
                columns = [head.column(i).to_pylist() for i in range(head.num_columns)]
                sample.extend([_cell(v) for v in row] for row in zip(*columns, strict=True))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        raise InvalidInput(f"the file cannot be read as a table: {str(exc)[:200]}") from None
    if count is not None:
        report = risk.smallest_cell(cells, threshold=threshold, column=count)
        report["named_by"] = "steward"
    elif aggregate_cells is not None:
        report = risk.smallest_cell(aggregate_cells, threshold=threshold, column="COUNT(*) of each group")
        report["named_by"] = "measured from the query's groups"
    else:
        report = risk.airlock_report(counter, rows=rows, missing=missing, threshold=threshold)
        report["named_by"] = "steward" if named else "suggested from column names"
    return {
        "tabular": True,
        "format": fmt,
        "result_kind": report["kind"],
        "columns": [s.as_dict(rows) for s in stats],
        "rows": rows,
        "bytes": path.stat().st_size,
        "sample": {"columns": names, "rows": sample, "cell_chars": SAMPLE_CELL_CHARS},
        "risk": report,
    }


def summarize_opaque(path: Path, name: str) -> dict[str, Any]:
    return {
        "tabular": False,
        "result_kind": "file",
        "bytes": path.stat().st_size,
        "name": name,
        "note": "not a table (CSV, TSV or Parquet): review the file's nature by its name and purpose",
        "risk": {"kind": "file", "passes": False, "note": "the risk of a non-tabular file is unknown"},
    }
