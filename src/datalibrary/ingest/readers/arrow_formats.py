"""Minimal CSV and Parquet readers on pyarrow (the readers branch replaces them with fuller ones).

They stream record batches, count the bytes they consumed (for job progress) and turn
pyarrow's errors into ``ReadError``s that name the file, column and value.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from datalibrary.ingest.readers.base import DEFAULT_BATCH_ROWS, ReadError

INFER_BLOCK_BYTES = 16 << 20


class CountingFile(io.RawIOBase):
    """A read-only file that counts the bytes handed out."""

    def __init__(self, path: Path) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close()
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self._file.readinto(buffer)
        self.bytes_read += count or 0
        return count or 0

    def close(self) -> None:
        self._file.close()
        super().close()


class CsvReader:
    """Comma- or tab-separated text with a header line (UTF-8)."""

    format: ClassVar[str] = "csv"

    def __init__(self, path: Path, *, display_name: str | None = None, **options: Any) -> None:
        self.path = Path(path)
        self.name = display_name or self.path.name
        self.delimiter = options.get("delimiter") or ("\t" if self.name.lower().endswith(".tsv") else ",")
        self._source: CountingFile | None = None

    def column_labels(self) -> dict[str, str]:
        return {}

    def bytes_read(self) -> int:
        return self._source.bytes_read if self._source else 0

    def batches(self, batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        self._source = CountingFile(self.path)
        rows = 0
        try:
            try:
                reader = pacsv.open_csv(
                    self._source,
                    read_options=pacsv.ReadOptions(block_size=INFER_BLOCK_BYTES),
                    parse_options=pacsv.ParseOptions(delimiter=self.delimiter),
                    convert_options=pacsv.ConvertOptions(strings_can_be_null=False),
                )
            except pa.ArrowInvalid as exc:
                raise self._error(exc, rows) from exc
            names = reader.schema.names
            if len(set(names)) != len(names) or any(not n.strip() for n in names):
                raise ReadError(self.name, "the header has empty or repeated column names", row=1)
            nulls = [f.name for f in reader.schema if pa.types.is_null(f.type)]
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    break
                except pa.ArrowInvalid as exc:
                    raise self._error(exc, rows) from exc
                if nulls:
                    batch = _nulls_as_strings(batch)
                for offset in range(0, batch.num_rows, batch_rows):
                    piece = batch.slice(offset, batch_rows)
                    rows += piece.num_rows
                    yield piece
        finally:
            self._source.close()

    def _error(self, exc: Exception, rows: int) -> ReadError:
        message = str(exc)
        column = None
        value = None
        match = re.search(r"CSV column #(\d+)", message)
        if match and self._source is not None:
            column = f"#{int(match.group(1)) + 1}"
        found = re.search(r"invalid value '([^']*)'", message)
        if found:
            value = found.group(1)
        row_match = re.search(r"[Rr]ow #(\d+)", message)
        row = int(row_match.group(1)) if row_match else (rows + 1 if rows else None)
        reason = message.split("\n")[0][:200]
        return ReadError(self.name, f"not valid CSV: {reason}", row=row, column=column, value=value)


def _nulls_as_strings(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Columns that were empty in the inference block become strings, not the null type."""
    fields = [pa.field(f.name, pa.string()) if pa.types.is_null(f.type) else f for f in batch.schema]
    return batch.cast(pa.schema(fields))


class ParquetReader:
    """Apache Parquet, read one row group at a time."""

    format: ClassVar[str] = "parquet"

    def __init__(self, path: Path, *, display_name: str | None = None, **options: Any) -> None:
        self.path = Path(path)
        self.name = display_name or self.path.name
        self._done = 0

    def column_labels(self) -> dict[str, str]:
        return {}

    def bytes_read(self) -> int:
        return self._done

    def batches(self, batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        try:
            parquet = pq.ParquetFile(self.path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise ReadError(self.name, f"not a valid Parquet file: {str(exc)[:200]}") from exc
        total = max(parquet.metadata.num_row_groups, 1)
        size = self.path.stat().st_size
        try:
            for index in range(parquet.metadata.num_row_groups):
                yield from parquet.iter_batches(batch_size=batch_rows, row_groups=[index])
                self._done = size * (index + 1) // total
        except (pa.ArrowInvalid, OSError) as exc:
            raise ReadError(self.name, f"corrupt Parquet data: {str(exc)[:200]}") from exc
