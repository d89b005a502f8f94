"""SAS7BDAT reader: pyreadstat in pages, variable labels from the file."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pyreadstat

from datalibrary.ingest.readers._readstat import ReadstatFile
from datalibrary.ingest.readers.base import (
    DEFAULT_BATCH_ROWS,
    NO_LIMITS,
    ReadError,
    ReadLimits,
    parse_options,
)
from datalibrary.ingest.readers.structure import sas7bdat_check


@dataclass(frozen=True)
class Sas7bdatOptions:
    """How to read a SAS7BDAT file."""

    encoding: str | None = None  # default: the file's, else UTF-8, else Windows-1252


class Sas7bdatReader:
    format: ClassVar[str] = "sas7bdat"
    Options: ClassVar[type[Sas7bdatOptions]] = Sas7bdatOptions

    def __init__(
        self,
        path: Path,
        *,
        display_name: str | None = None,
        options: Sas7bdatOptions | Mapping[str, Any] | None = None,
        limits: ReadLimits = NO_LIMITS,
    ) -> None:
        self.path = Path(path)
        self.name = display_name or self.path.name
        chosen = parse_options(Sas7bdatOptions, options, file=self.name, reader=self.format)
        encoding = {"encoding": chosen.encoding} if chosen.encoding else {}
        sas7bdat_check(self.path, self.name)  # pages add up to the file's size
        self.file = ReadstatFile(self.path, self.name, pyreadstat.read_sas7bdat, check_count=True, **encoding)
        columns = len(self.file.meta.column_names)
        max_columns = limits.max_columns
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
