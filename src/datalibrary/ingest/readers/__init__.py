"""Reader registry: format names and file suffixes -> reader classes, imported lazily.

A new format is one line in ``READERS`` ("format": "module:Class") and its suffixes in
``SUFFIXES``. Classes are imported on first use, so a reader whose dependency is missing
only fails when a file of its format arrives. ``register`` adds entries at run time.

Each reader declares its options as a frozen dataclass (``Reader.Options``); options given
as a mapping (a job's stored options) are checked against it, and an unknown one is an
``UnknownOption`` naming the file, the reader and the option, never silently dropped.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from datalibrary.errors import InvalidInput
from datalibrary.ingest.readers.base import (
    DEFAULT_BATCH_ROWS,
    NO_LIMITS,
    Reader,
    ReadError,
    ReadLimits,
    UnknownOption,
)

__all__ = [
    "DEFAULT_BATCH_ROWS",
    "NO_LIMITS",
    "READERS",
    "SUFFIXES",
    "ReadError",
    "ReadLimits",
    "Reader",
    "ReportsProgress",
    "UnknownOption",
    "detect_format",
    "open_reader",
    "reader_class",
    "register",
]


@runtime_checkable
class ReportsProgress(Protocol):
    """Optional for readers: how many bytes of the source file were consumed so far (job progress)."""

    def bytes_read(self) -> int: ...


# format name -> "module:Class"
READERS: dict[str, str] = {
    "csv": "datalibrary.ingest.readers.csv:CsvReader",
    "xpt": "datalibrary.ingest.readers.xpt:XptReader",
    "sas7bdat": "datalibrary.ingest.readers.sas7bdat:Sas7bdatReader",
    "parquet": "datalibrary.ingest.readers.parquet:ParquetReader",
    "json": "datalibrary.ingest.readers.json_formats:JsonReader",
    "ndjson": "datalibrary.ingest.readers.json_formats:NdjsonReader",
    "fhir": "datalibrary.ingest.readers.fhir:FhirReader",
}

# file suffix (lower case, may be compound like ".csv.gz") -> format name; longest match wins
SUFFIXES: dict[str, str] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".xpt": "xpt",
    ".sas7bdat": "sas7bdat",
    ".json": "json",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
}


def register(format: str, target: str | type[Reader], suffixes: tuple[str, ...] = ()) -> None:
    """Add or replace a reader (``target`` is a class or a "module:Class" string)."""
    READERS[format] = target if isinstance(target, str) else f"{target.__module__}:{target.__qualname__}"
    for suffix in suffixes:
        SUFFIXES[suffix.lower()] = format


def reader_class(format: str) -> type[Reader]:
    target = READERS.get(format)
    if target is None:
        known = ", ".join(sorted(READERS))
        raise InvalidInput(f"unknown file format {format!r} (known: {known})", reason="unknown-format")
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def detect_format(name: str) -> str:
    """The format of a file from its name's suffixes (``lb.csv.gz`` tries ``.csv.gz`` then ``.gz``)."""
    suffixes = [s.lower() for s in Path(name).suffixes]
    for start in range(len(suffixes)):
        candidate = "".join(suffixes[start:])
        if candidate in SUFFIXES:
            return SUFFIXES[candidate]
    raise InvalidInput(
        f"cannot tell the format of {name!r} from its name: use one of "
        f"{', '.join(sorted(SUFFIXES))} or name the format explicitly",
        reason="unknown-format",
    )


def open_reader(
    path: Path,
    *,
    format: str | None = None,
    display_name: str | None = None,
    options: Mapping[str, Any] | None = None,
    limits: ReadLimits = NO_LIMITS,
) -> Reader:
    """A reader for ``path`` (format detected from ``display_name`` or the path if not given);
    ``options`` are checked against the reader's ``Options`` (``UnknownOption`` if unknown)."""
    fmt = format or detect_format(display_name or path.name)
    return reader_class(fmt)(path, display_name=display_name or path.name, options=options, limits=limits)
