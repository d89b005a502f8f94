"""SAS7BDAT reader: pyreadstat in pages, variable labels from the file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pyreadstat

from datalibrary.ingest.readers._readstat import ReadstatFile
from datalibrary.ingest.readers.base import DEFAULT_BATCH_ROWS, ReadError
from datalibrary.ingest.readers.structure import sas7bdat_check


class Sas7bdatReader:
    format: ClassVar[str] = "sas7bdat"

    def __init__(
        self,
        path: Path,
        *,
        display_name: str | None = None,
        encoding: str | None = None,
        max_columns: int | None = None,
        **_: Any,
    ) -> None:
        self.path = Path(path)
        self.name = display_name or self.path.name
        options = {"encoding": encoding} if encoding else {}
        sas7bdat_check(self.path, self.name)  # pages add up to the file's size
        self.file = ReadstatFile(self.path, self.name, pyreadstat.read_sas7bdat, check_count=True, **options)
        columns = len(self.file.meta.column_names)
        if max_columns is not None and columns > max_columns:
            raise ReadError(
                self.name,
                f"the file has {columns} columns, more than the limit of {max_columns} (ingest.max_columns)",
            )

    def schema(self) -> pa.Schema:
        return self.file.schema

    def column_labels(self) -> dict[str, str]:
        return self.file.labels()

    def batches(self, batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        yield from self.file.pages(batch_rows)
