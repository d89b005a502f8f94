"""Chunked reading of SAS files through pyreadstat, shared by the XPT and SAS7BDAT readers.

pyreadstat's own ``read_file_in_chunks`` never stops with ``output_format="dict"`` (it
keeps yielding empty chunks), and the pandas output would add pandas as a dependency, so
this module pages with ``row_offset``/``row_limit`` itself and builds Arrow arrays.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyreadstat

from datalibrary.ingest.readers.base import ReadError

_KINDS = {
    "double": pa.float64(),
    "string": pa.string(),
    "int8": pa.int64(),
    "int16": pa.int64(),
    "int32": pa.int64(),
    "float": pa.float64(),
}


PAGE_ROWS = 100_000
PAGE_CELLS = 8_000_000  # readstat preallocates row_limit x columns values per page: ~64 MB


class ReadstatFile:
    """Metadata first (cheap), then pages of rows with one fixed Arrow schema."""

    def __init__(
        self,
        path: Path,
        name: str,
        function: Callable[..., Any],
        *,
        max_rows: int | None = None,
        check_count: bool = False,
        **options: Any,
    ) -> None:
        """``max_rows``: the rows the file's bytes can hold (no page asks for more);
        ``check_count``: the declared row count must be what the pages deliver."""
        self.path, self.name, self.function, self.options = path, name, function, options
        self.max_rows, self.check_count = max_rows, check_count
        try:
            _, self.meta = function(str(path), metadataonly=True, output_format="dict", **options)
        except Exception as exc:  # pyreadstat raises ReadstatError / PyreadstatError / OSError
            raise ReadError(name, f"not a readable {self.kind} file: {exc}") from exc
        for index, column in enumerate(self.meta.column_names or [], start=1):
            if not isinstance(column, str) or not column.strip():  # a damaged variable header
                raise ReadError(name, f"variable {index} of the {self.kind} header has no name")
        self.schema = pa.schema([pa.field(c, self._type(c)) for c in self.meta.column_names])

    @property
    def kind(self) -> str:
        return "SAS XPORT" if self.function is pyreadstat.read_xport else "SAS7BDAT"

    def _type(self, column: str) -> pa.DataType:
        fmt = (self.meta.original_variable_types.get(column) or "").upper()
        kind = self.meta.readstat_variable_types.get(column, "string")
        if kind != "string" and fmt.startswith(("DATETIME", "E8601DT", "IS8601DT")):
            return pa.timestamp("us")
        if kind != "string" and fmt.startswith(("DATE", "YYMMDD", "E8601DA", "IS8601DA", "MMDDYY", "DDMMYY")):
            return pa.date32()
        return _KINDS.get(kind, pa.string())

    def labels(self) -> dict[str, str]:
        pairs = zip(self.meta.column_names, self.meta.column_labels or [], strict=False)
        return {column: label for column, label in pairs if label}

    def pages(self, batch_rows: int, page_rows: int = PAGE_ROWS) -> Iterator[pa.RecordBatch]:
        """Batches of ``batch_rows`` cut from pages of at least ``page_rows`` rows.

        readstat reaches ``row_offset`` by parsing the rows before it, so each page costs its
        offset: large pages keep that quadratic term small, at a bounded memory cost.
        """
        columns = max(len(self.schema), 1)
        rows = max(1, min(max(batch_rows, page_rows), PAGE_CELLS // columns))
        offset = 0
        total = self.meta.number_rows if self.meta.number_rows and self.meta.number_rows > 0 else None
        if self.max_rows is not None:
            total = self.max_rows if total is None else min(total, self.max_rows)
        while total is None or offset < total:
            if total is not None:
                rows = max(1, min(rows, total - offset))
            try:
                data, _ = self.function(
                    str(self.path), row_offset=offset, row_limit=rows, output_format="dict", **self.options
                )
            except UnicodeDecodeError as exc:
                if "encoding" in self.options:
                    raise ReadError(
                        self.name, f"text is not {self.options['encoding']}: {exc.reason}"
                    ) from exc
                # SAS files without a declared encoding are often Windows-1252 (curly quotes):
                # ASCII pages already read are the same in both, so switch and go on.
                self.options["encoding"] = "WINDOWS-1252"
                continue
            except Exception as exc:
                raise ReadError(
                    self.name, f"{self.kind} data is damaged or truncated: {exc}", row=offset + 1
                ) from exc
            count = len(next(iter(data.values()), []))
            if count == 0:
                break
            page = self._batch(data, offset)
            for start in range(0, count, batch_rows):
                yield page.slice(start, batch_rows)
            offset += count
            if count < rows:
                break
        declared = self.meta.number_rows
        if self.check_count and declared and declared > 0 and offset != declared:
            raise ReadError(
                self.name,
                f"the {self.kind} file declares {declared} rows but holds {offset}: "
                "it is truncated or damaged",
            )

    def _batch(self, data: dict[str, list[Any]], offset: int) -> pa.RecordBatch:
        arrays = []
        for field in self.schema:
            values = data[field.name]
            if pa.types.is_string(field.type):
                values = [None if v is None or v == "" else str(v) for v in values]
            elif pa.types.is_timestamp(field.type) or pa.types.is_date(field.type):
                values = [v if isinstance(v, dt.date) else None for v in values]
            try:
                arrays.append(pa.array(values, type=field.type, from_pandas=True))
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
                raise ReadError(
                    self.name, f"unexpected value type: {exc}", row=offset + 1, column=field.name
                ) from exc
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)
