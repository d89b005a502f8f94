"""CSV / TSV reader: sniffed encoding and delimiter, streamed with ``pyarrow.csv.open_csv``.

Types are decided once, from the first block, and every later block is read with exactly
those types, so all batches share one schema. A later value that does not fit raises
``ReadError`` with its row and column (or, with ``on_type_error="string"``, a validation
pass first turns such columns into strings). Row numbers count data records from 1, the
header excluded.
"""

from __future__ import annotations

import csv as pycsv
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import pyarrow as pa
import pyarrow.csv as pacsv

from datalibrary.ingest.readers._text import SniffError, TextSniff, sniff
from datalibrary.ingest.readers.base import (
    DEFAULT_BATCH_ROWS,
    NO_LIMITS,
    ReadError,
    ReadLimits,
    parse_options,
)

MIN_BLOCK = 1 << 20
DEFAULT_MAX_FIELD = 4 << 20  # also pyarrow's block size: a record must fit in one block
_RAGGED = re.compile(r"Expected (\d+) columns, got (\d+)")
_CONVERSION = re.compile(r"column #(\d+).*?conversion error to ([^:]+): invalid value '(.*)'", re.S)


def _stable_type(kind: pa.DataType, parse_dates: bool) -> pa.DataType:
    """What a first-block type becomes for the whole file: no null columns, dates kept as text."""
    if pa.types.is_null(kind):
        return pa.string()
    if not parse_dates and (pa.types.is_temporal(kind)):
        return pa.string()
    return kind


@dataclass(frozen=True)
class CsvOptions:
    """How to read a CSV / TSV file; every field has a default that sniffs or infers."""

    encoding: str | None = None  # default: sniffed (UTF-8/16 with BOM, cp1252, latin-1)
    delimiter: str | None = None  # default: sniffed among , ; tab |
    header: bool = True  # False: columns are named column_1...
    on_type_error: Literal["error", "string"] = "error"  # "string": a first pass widens such columns
    parse_dates: bool = False  # True: keep pyarrow's temporal types
    column_types: Mapping[str, pa.DataType] | None = None
    null_values: list[str] | None = None  # default: only empty cells are null
    max_field_bytes: int = DEFAULT_MAX_FIELD

    def __post_init__(self) -> None:
        if self.on_type_error not in ("error", "string"):
            raise ValueError(f"on_type_error must be 'error' or 'string', not {self.on_type_error!r}")


class CsvReader:
    format: ClassVar[str] = "csv"
    Options: ClassVar[type[CsvOptions]] = CsvOptions

    def __init__(
        self,
        path: Path,
        *,
        display_name: str | None = None,
        options: CsvOptions | Mapping[str, Any] | None = None,
        limits: ReadLimits = NO_LIMITS,
    ) -> None:
        self.path = Path(path)
        self.name = display_name or self.path.name
        chosen = parse_options(CsvOptions, options, file=self.name, reader=self.format)
        self.header = chosen.header
        self.on_type_error = chosen.on_type_error
        self.parse_dates = chosen.parse_dates
        self.declared = dict(chosen.column_types or {})
        self.null_values = chosen.null_values if chosen.null_values is not None else [""]
        self.max_field_bytes = max(chosen.max_field_bytes, MIN_BLOCK)
        try:
            self.sniffed: TextSniff = sniff(self.path, encoding=chosen.encoding, delimiter=chosen.delimiter)
        except (SniffError, LookupError) as exc:
            raise ReadError(self.name, str(exc)) from exc
        width = len(self.sniffed.header)
        max_columns = limits.max_columns
        if max_columns is not None and width > max_columns:
            raise ReadError(
                self.name,
                f"the file has {width} columns, more than the limit of {max_columns} (ingest.max_columns)",
            )
        if self.header:
            self.columns = self.sniffed.header
        else:
            self.columns = [f"column_{i}" for i in range(1, len(self.sniffed.header) + 1)]
        self._schema: pa.Schema | None = None

    # -- options ---------------------------------------------------------------------------
    def _read_options(self, block_size: int) -> pacsv.ReadOptions:
        return pacsv.ReadOptions(
            column_names=self.columns,
            skip_rows=1 if self.header else 0,
            block_size=block_size,
            encoding=self.sniffed.encoding,
        )

    def _parse_options(self) -> pacsv.ParseOptions:
        return pacsv.ParseOptions(delimiter=self.sniffed.delimiter, quote_char='"', newlines_in_values=True)

    def _convert_options(self, types: dict[str, pa.DataType] | None) -> pacsv.ConvertOptions:
        return pacsv.ConvertOptions(
            column_types=types,
            null_values=self.null_values,
            strings_can_be_null=True,
            true_values=["true", "True", "TRUE"],
            false_values=["false", "False", "FALSE"],
        )

    def _open(self, block_size: int, types: dict[str, pa.DataType] | None) -> pacsv.CSVStreamingReader:
        return pacsv.open_csv(
            self.path,
            read_options=self._read_options(block_size),
            parse_options=self._parse_options(),
            convert_options=self._convert_options(types),
        )

    # -- schema ----------------------------------------------------------------------------
    def schema(self) -> pa.Schema:
        """The one schema of every batch: inferred from the first block, then frozen."""
        if self._schema is None:
            try:
                reader = self._open(self.max_field_bytes, self.declared or None)
                inferred = reader.schema
                reader.close()
            except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
                raise self._explain(exc, 0) from exc
            for field in inferred:
                if pa.types.is_binary(field.type) and field.name not in self.declared:
                    raise ReadError(
                        self.name,
                        f"values are not valid {self.sniffed.encoding} text; pass the file's encoding",
                        column=field.name,
                    )
            fields = [
                pa.field(f.name, self.declared.get(f.name) or _stable_type(f.type, self.parse_dates))
                for f in inferred
            ]
            self._schema = pa.schema(fields)
            if self.on_type_error == "string":
                self._schema = self._widen_until_valid(self._schema)
        return self._schema

    def _widen_until_valid(self, schema: pa.Schema) -> pa.Schema:
        """Validation pass: a column whose later values do not fit its type becomes string."""
        while True:
            try:
                for _ in self._open(self.max_field_bytes, dict(zip(schema.names, schema.types, strict=True))):
                    pass
                return schema
            except pa.ArrowInvalid as exc:
                match = _CONVERSION.search(str(exc))
                if not match:
                    raise self._explain(exc, 0) from exc
                index = int(match.group(1))
                schema = schema.set(index, pa.field(schema.names[index], pa.string()))

    def column_labels(self) -> dict[str, str]:
        return {}

    # -- reading ---------------------------------------------------------------------------
    def batches(self, batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        schema = self.schema()
        done = 0
        try:
            reader = self._open(self.max_field_bytes, dict(zip(schema.names, schema.types, strict=True)))
            for block in reader:
                for start in range(0, block.num_rows, batch_rows):
                    batch = block.slice(start, batch_rows)
                    done += batch.num_rows
                    yield batch
            if done and self._ends_inside_quotes(batch):
                raise ReadError(
                    self.name, "a quote is never closed: the last value runs to the end of the file"
                )
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            raise self._explain(exc, done) from exc
        if done == 0:
            yield pa.RecordBatch.from_pylist([], schema=schema)

    def _ends_inside_quotes(self, last: pa.RecordBatch) -> bool:
        """pyarrow lets an unclosed quote swallow the rest of the file; catch it by quote parity.

        The full count runs only when the last row holds a line break, as such a row does.
        """
        row = last.slice(last.num_rows - 1, 1).to_pylist()[0]
        if not any(isinstance(v, str) and "\n" in v for v in row.values()):
            return False
        quotes = 0
        with self.path.open("rb") as handle:
            while chunk := handle.read(16 << 20):
                quotes += chunk.count(b'"')
        return quotes % 2 == 1

    # -- errors ----------------------------------------------------------------------------
    def _records(self) -> Iterator[tuple[int, list[str]]]:
        """Data records with their 1-based number, parsed again by Python's csv (error path only)."""
        pycsv.field_size_limit(2**31 - 1)
        with self.path.open(encoding=self.sniffed.encoding, errors="replace", newline="") as handle:
            reader = pycsv.reader(handle, delimiter=self.sniffed.delimiter, quotechar='"', strict=False)
            if self.header:
                next(reader, None)
            yield from enumerate(reader, start=1)

    def _explain(self, exc: Exception, done: int) -> ReadError:
        message = str(exc)
        if isinstance(exc, UnicodeDecodeError) or "invalid UTF8" in message:
            return ReadError(
                self.name,
                f"text is not valid {self.sniffed.encoding} after data row {done}; pass the file's encoding",
            )
        ragged = _RAGGED.search(message)
        if ragged:
            expected = int(ragged.group(1))
            for number, record in self._records():
                if record and len(record) != expected:
                    return ReadError(
                        self.name,
                        f"ragged row: expected {expected} fields, found {len(record)}",
                        row=number,
                    )  # no value: a whole record may hold identifiers
            return ReadError(self.name, f"ragged row: expected {expected} fields, found {ragged.group(2)}")
        converted = _CONVERSION.search(message)
        if converted:
            index, kind, value = int(converted.group(1)), converted.group(2), converted.group(3)
            column = self.columns[index] if index < len(self.columns) else None
            reason = f"value does not fit the column type {kind} inferred from the first rows"
            hint = "; declare the column type or read with on_type_error='string'"
            for number, record in self._records():
                if number > done and index < len(record) and record[index] == value:
                    return ReadError(self.name, reason + hint, row=number, column=column, value=value)
            return ReadError(self.name, reason + hint, column=column, value=value)
        if "straddl" in message:
            return ReadError(
                self.name,
                f"a field or quoted value is larger than max_field_bytes ({self.max_field_bytes} bytes)"
                f" or a quote is never closed (somewhere after data row {done})",
            )
        return ReadError(self.name, message.splitlines()[0][:300], row=done + 1 if done else None)
