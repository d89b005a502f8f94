"""SAS XPORT (v5 and v8) reader: pyreadstat in pages, variable labels from the file and,
optionally, from a define.xml (its labels win: they are the study's reviewed metadata)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pyreadstat

from datalibrary.ingest.readers._readstat import ReadstatFile
from datalibrary.ingest.readers.base import DEFAULT_BATCH_ROWS, ReadError
from datalibrary.ingest.readers.define_xml import define_labels


class XptReader:
    format: ClassVar[str] = "xpt"

    def __init__(
        self,
        path: Path,
        *,
        display_name: str | None = None,
        define_xml: Path | None = None,
        encoding: str | None = None,
        **_: Any,
    ) -> None:
        self.path = Path(path)
        self.name = display_name or self.path.name
        options = {"encoding": encoding} if encoding else {}
        size = self.path.stat().st_size
        if size % 80:  # XPORT v5 and v8 are sequences of 80-byte records
            raise ReadError(self.name, f"truncated SAS XPORT file: {size} bytes is not a multiple of 80")
        self.file = ReadstatFile(self.path, self.name, pyreadstat.read_xport, **options)
        self.define_xml = Path(define_xml) if define_xml else None

    @property
    def table_name(self) -> str:
        """The member (dataset) name stored in the file, e.g. ``DM``; the file stem otherwise."""
        return (self.file.meta.table_name or self.path.stem).upper()

    def schema(self) -> pa.Schema:
        return self.file.schema

    def column_labels(self) -> dict[str, str]:
        labels = self.file.labels()
        if self.define_xml:
            labels.update(define_labels(self.define_xml).get(self.table_name, {}))
        return labels

    def batches(self, batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        yield from self.file.pages(batch_rows)
