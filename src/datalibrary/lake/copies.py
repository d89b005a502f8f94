"""Copies of lake data outside the table locations, found and removed by erasure.

Lake data is copied to other places: the query planner's local Parquet cache of an S3
warehouse, export snapshots, workspace homes and their archives. Erasure must find every
copy, so each place registers a *copy scanner* here: lake's own (the query cache) below,
the upper layers' (pending and quarantined deliveries, exports, workspaces, file
collections) through :func:`register`, called by the hook :data:`SETUP` that ``wiring``
registers — lake never imports them, and an erasure without that hook refuses
(``hooks.NotWired``) instead of leaving a location unsearched. Each scanner removes the
copies holding the subject and returns one entry per file it checked, so the erasure proof
lists every location.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy.orm import Session

from datalibrary.config import Settings
from datalibrary.hooks import Hook
from datalibrary.lake.files import contains_token

log = logging.getLogger(__name__)
CHUNK = 8 << 20
MAX_DECODED_MEMBER = 512 << 20


@dataclass
class ErasureScope:
    """What a copy scanner needs: where, whom, and the lake files the erasure deleted."""

    settings: Settings
    session: Session
    namespace: str
    subject: str
    removed_uris: set[str] = field(default_factory=set)
    request: str = ""  # the erasure request id (named in what a scanner quarantines)
    counts: dict[str, int] = field(default_factory=dict)  # what scanners report besides files


Scanner = Callable[[ErasureScope], list[dict[str, Any]]]
_SCANNERS: dict[str, Scanner] = {}
# Registers the upper layers' scanners (idempotent); called before every erasure.
SETUP: Hook[[], None] = Hook("lake.copy_scanners")


def register(location: str, scanner: Scanner) -> None:
    """Register (or replace) the scanner of one location; idempotent."""
    _SCANNERS[location] = scanner


def scanners() -> dict[str, Scanner]:
    return dict(_SCANNERS)


def query_cache_dir(settings: Settings) -> Path:
    """The query planner's local copies of S3 data files (named by the SHA-256 of their URI)."""
    return settings.home / "cache" / "s3"


def cache_name(uri: str) -> str:
    return hashlib.sha256(uri.encode()).hexdigest() + ".parquet"


def _matches(column: pa.ChunkedArray | pa.Array, subject: str) -> bool:
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    as_text = column if pa.types.is_string(column.type) else pc.cast(column, pa.string())
    return bool(pc.any(pc.fill_null(pc.equal(as_text, subject), False)).as_py())


def _parquet_mentions(source: Any, subject: str) -> list[str]:
    found: list[str] = []
    parquet = pq.ParquetFile(source)
    meta = parquet.metadata
    for group in range(meta.num_row_groups):
        for col in range(meta.num_columns):
            stats = meta.row_group(group).column(col).statistics
            if stats is not None and stats.has_min_max and subject in (str(stats.min), str(stats.max)):
                found.append(f"statistics of {meta.schema.column(col).name}")
    for batch in parquet.iter_batches(batch_size=65_536):
        for name in batch.schema.names:
            try:
                if _matches(batch.column(name), subject):
                    found.append(f"values of {name}")
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                continue  # nested or binary: the raw-bytes check covers what is not compressed
    return sorted(set(found))


def _raw_mentions(handle: io.BufferedIOBase, needle: bytes) -> bool:
    tail = b""
    while chunk := handle.read(CHUNK):
        window = tail + chunk
        if contains_token(window, needle):
            return True
        tail = window[-(len(needle) + 1) :]
    return False


def bytes_mention(data: bytes, name: str, subject: str) -> list[str]:
    """Where ``subject`` occurs in a file's content (raw bytes; decoded Parquet / Arrow)."""
    found = ["raw bytes"] if contains_token(data, subject.encode()) else []
    try:
        if data[:4] == b"PAR1" or name.endswith(".parquet"):
            found += _parquet_mentions(io.BytesIO(data), subject)
        elif name.endswith((".arrow", ".arrows", ".feather")):
            reader = pa.ipc.open_stream(data) if name.endswith(".arrows") else pa.ipc.open_file(data)
            table = reader.read_all()
            found += [f"values of {n}" for n in table.column_names if _safe_match(table.column(n), subject)]
    except (pa.ArrowInvalid, OSError):
        pass  # not decodable as claimed: the raw-bytes check stands
    return found


def _safe_match(column: pa.ChunkedArray, subject: str) -> bool:
    try:
        return _matches(column, subject)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False


def file_mentions(path: Path, subject: str) -> list[str]:
    """Where ``subject`` occurs in a local file, read in chunks (Parquet decoded by batch)."""
    with open(path, "rb") as handle:
        head = handle.read(4)
        handle.seek(0)
        found = ["raw bytes"] if _raw_mentions(handle, subject.encode()) else []
    if head == b"PAR1" or path.suffix == ".parquet":
        with contextlib.suppress(pa.ArrowInvalid, OSError):
            found += _parquet_mentions(str(path), subject)
    elif path.suffix in (".arrow", ".arrows", ".feather") and path.stat().st_size <= MAX_DECODED_MEMBER:
        found += [f for f in bytes_mention(path.read_bytes(), path.name, subject) if f != "raw bytes"]
    return sorted(set(found))


def entry(location: str, path: Path | str, found: list[str], action: str, size: int | None = None) -> dict:
    return {
        "location": location,
        "uri": str(path),
        "kind": location,
        "bytes": size,
        "contains_subject": False,  # after the action: a copy found is removed
        "found_in": found,
        "action": action,
    }


def scan_and_delete(location: str, paths: Iterable[Path], subject: str) -> list[dict[str, Any]]:
    """Check each file; delete the ones holding the subject; one proof entry per file."""
    results = []
    for path in paths:
        if not path.is_file() or path.is_symlink():
            continue
        size = path.stat().st_size
        found = file_mentions(path, subject)
        action = "kept"
        if found:
            path.unlink(missing_ok=True)
            action = "deleted"
        result = entry(location, path, found, action, size)
        result["contains_subject"] = bool(found) and path.exists()
        results.append(result)
    return results


def _query_cache(scope: ErasureScope) -> list[dict[str, Any]]:
    """Cached copies of deleted lake files go; any other copy naming the subject goes too."""
    directory = query_cache_dir(scope.settings)
    if not directory.is_dir():
        return []
    stale = {cache_name(uri) for uri in scope.removed_uris}
    results = []
    for path in sorted(directory.iterdir()):
        if path.name in stale and path.is_file():
            size = path.stat().st_size
            found = file_mentions(path, scope.subject)
            path.unlink(missing_ok=True)
            results.append(entry("query cache", path, found, "deleted (its lake file was erased)", size))
    results += scan_and_delete("query cache", sorted(p for p in directory.iterdir() if p.name not in stale),
                               scope.subject)  # fmt: skip
    return results


register("query cache", _query_cache)
