"""The contract every file-format reader fulfils, and the error it raises on bad input.

A reader streams a file as Arrow record batches in bounded memory; it never loads the
whole file. Column labels (XPT labels, define.xml, FHIR paths) travel with the reader so
the catalog can show them. Bad input raises ``ReadError`` naming file, row, column, value.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

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


@runtime_checkable
class Reader(Protocol):
    """One source file of one format (after decompression / archive extraction)."""

    format: ClassVar[str]  # short name: csv, xpt, sas7bdat, parquet, json, ndjson, fhir

    def __init__(self, path: Path, *, display_name: str | None = None, **options: Any) -> None: ...

    def column_labels(self) -> dict[str, str]:
        """Human labels by column name (empty when the format has none)."""
        ...

    def batches(self, batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        """The rows as record batches that all share one schema."""
        ...
