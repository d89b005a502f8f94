"""SAS XPORT (v5 and v8) reader: pyreadstat in pages, variable labels from the file and,
optionally, from a define.xml (its labels win: they are the study's reviewed metadata)."""

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
from datalibrary.ingest.readers.define_xml import define_labels
from datalibrary.ingest.readers.structure import xpt_layout


@dataclass(frozen=True)
class XptOptions:
    """How to read a SAS XPORT file."""

    define_xml: Path | None = None  # a CDISC define.xml whose labels win over the file's
    encoding: str | None = None  # default: the file's, else UTF-8, else Windows-1252


class XptReader:
    format: ClassVar[str] = "xpt"
    Options: ClassVar[type[XptOptions]] = XptOptions

    def __init__(
        self,
        path: Path,
        *,
        display_name: str | None = None,
        options: XptOptions | Mapping[str, Any] | None = None,
        limits: ReadLimits = NO_LIMITS,
    ) -> None:
        self.path = Path(path)
        self.name = display_name or self.path.name
        chosen = parse_options(XptOptions, options, file=self.name, reader=self.format)
        encoding = {"encoding": chosen.encoding} if chosen.encoding else {}
        # the layout is recomputed from the bytes first: truncation, a second member, an
        # unnamed variable are refused before readstat reads (and allocates for) any row
        self.layout = xpt_layout(self.path, self.name, max_columns=limits.max_columns)
        self.file = ReadstatFile(
            self.path, self.name, pyreadstat.read_xport, max_rows=self.layout.rows, **encoding
        )
        if len(self.file.meta.column_names) != self.layout.variables:
            raise ReadError(
                self.name,
                f"readstat sees {len(self.file.meta.column_names)} variables where the file "
                f"describes {self.layout.variables}: the file is damaged",
            )
        self.define_xml = Path(chosen.define_xml) if chosen.define_xml else None

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
