"""The contract every file-format reader fulfils, and the error it raises on bad input.

A reader streams a file as Arrow record batches in bounded memory; it never loads the
whole file. Column labels (XPT labels, define.xml, FHIR paths) travel with the reader so
the catalog can show them. Bad input raises ``ReadError`` naming file, row, column, value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

import pyarrow as pa

from datalibrary.errors import InvalidInput

DEFAULT_BATCH_ROWS = 65_536


class ReadError(InvalidInput):
    """A file cannot be read as its format; says where and why, never the whole row."""

    slug = "invalid-input"

    def __init__(
        self,
        file: str,
        reason: str,
        *,
        row: int | None = None,
        column: str | None = None,
        value: Any = None,
    ) -> None:
        where = [f"file '{file}'"]
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column '{column}'")
        shown = "" if value is None else f" (value {str(value)[:80]!r})"
        super().__init__(f"{', '.join(where)}: {reason}{shown}", file=file, row=row, column=column)
        self.file, self.row, self.column, self.reason = file, row, column, reason


class UnknownOption(InvalidInput):
    """An option the reader does not have: refused, since a misspelt option silently ignored
    would read the file another way than its sender asked for."""

    def __init__(self, file: str, reader: str, unknown: list[str], known: list[str]) -> None:
        names = ", ".join(repr(name) for name in unknown)
        accepted = ", ".join(known) if known else "none"
        super().__init__(
            f"file '{file}': the {reader} reader has no option {names} (its options: {accepted})",
            code="unknown-option",
            file=file,
            reader=reader,
            options=unknown,
        )


@dataclass(frozen=True)
class ReadLimits:
    """Limits the platform puts on every file (``ingest.max_columns``, ``ingest.max_record_mb``);
    each reader applies those that mean something for its format. Not options: a sender cannot
    change them."""

    max_columns: int | None = None
    max_record_bytes: int | None = None


NO_LIMITS = ReadLimits()


@dataclass(frozen=True)
class NoOptions:
    """The options of a reader that takes none."""


Options = TypeVar("Options")


def parse_options(
    kind: type[Options], given: Options | Mapping[str, Any] | None, *, file: str, reader: str
) -> Options:
    """Typed options from a mapping (a job's stored options, an API body); an unknown name is an
    ``UnknownOption`` naming the file, the reader and the option."""
    if given is None:
        return kind()
    if isinstance(given, kind):
        return given
    if not isinstance(given, Mapping):  # another reader's options: a programming error
        raise TypeError(f"the {reader} reader takes {kind.__name__} or a mapping, not {type(given).__name__}")
    known = [field.name for field in dataclasses.fields(kind)]  # type: ignore[arg-type]
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise UnknownOption(file, reader, unknown, known)
    try:
        return kind(**given)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"file '{file}': bad options for the {reader} reader: {exc}", file=file) from exc


@runtime_checkable
class Reader(Protocol):
    """One source file of one format (after decompression / archive extraction).

    ``options`` is the reader's own frozen dataclass (``Options``), ``limits`` the platform's."""

    format: ClassVar[str]  # short name: csv, xpt, sas7bdat, parquet, json, ndjson, fhir
    Options: ClassVar[type[Any]]  # the frozen dataclass of the reader's options

    def __init__(
        self,
        path: Path,
        *,
        display_name: str | None = None,
        options: Any = None,
        limits: ReadLimits = NO_LIMITS,
    ) -> None: ...

    def column_labels(self) -> dict[str, str]:
        """Human labels by column name (empty when the format has none)."""
        ...

    def batches(self, batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        """The rows as record batches that all share one schema."""
        ...
