"""Streaming JSON: records of a top-level array (or of one array inside a top-level object)
decoded one at a time, flattened to dotted names, and assembled into Arrow batches whose
schema is fixed by the first batch.

Bounded memory: the buffer holds one record at a time (``max_record_bytes``), so a 10 GB
JSON array streams like NDJSON. Deeply nested values are refused (``max_depth``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import pyarrow as pa

from datalibrary.ingest.readers.base import ReadError

CHUNK = 1 << 20
MAX_RECORD_BYTES = 64 << 20
MAX_DEPTH = 32
_WS = " \t\r\n"
_decoder = json.JSONDecoder()


class JsonStream:
    """Iterates the records of ``[ {...}, ... ]`` or ``{"key": [ {...}, ... ], ...}``."""

    def __init__(self, handle: TextIO, name: str, *, max_record_bytes: int = MAX_RECORD_BYTES) -> None:
        self.handle, self.name, self.limit = handle, name, max_record_bytes
        self.buf, self.pos, self.eof = "", 0, False

    def _fill(self) -> bool:
        if self.eof:
            return False
        self.buf = self.buf[self.pos :]
        self.pos = 0
        chunk = self.handle.read(max(CHUNK, len(self.buf)))
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def _peek(self) -> str:
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in _WS:
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._fill():
                return ""

    def _expect(self, char: str, where: str) -> None:
        found = self._peek()
        if found != char:
            raise ReadError(
                self.name, f"invalid JSON: expected '{char}' {where}, found {found or 'end of file'!r}"
            )
        self.pos += 1

    def _too_large(self, row: int | None) -> ReadError:
        return ReadError(self.name, f"a JSON record is larger than {self.limit} bytes or malformed", row=row)

    def _value(self, row: int | None) -> Any:
        self._peek()  # raw_decode does not skip leading whitespace
        while True:
            try:
                value, end = _decoder.raw_decode(self.buf, self.pos)
                if end - self.pos > self.limit:  # valid, but larger than a record may be
                    raise self._too_large(row)
                if end < len(self.buf) or self.eof:
                    self.pos = end
                    return value
                self._fill()  # the value touches the buffer end: a number may go on
                continue
            except RecursionError as exc:
                raise ReadError(self.name, f"JSON nested deeper than {MAX_DEPTH} levels", row=row) from exc
            except json.JSONDecodeError as exc:
                if len(self.buf) - self.pos > self.limit:
                    raise self._too_large(row) from exc
                if not self._fill():
                    raise ReadError(self.name, f"invalid or truncated JSON: {exc.msg}", row=row) from exc
            except ValueError as exc:  # e.g. an integer longer than Python converts (4300 digits)
                raise ReadError(self.name, f"invalid JSON value: {str(exc)[:120]}", row=row) from exc

    def records(self, key: str | None = None) -> Iterator[Any]:
        first = self._peek()
        if first == "{":
            self.pos += 1
            self._seek_key(key)  # leaves the position inside the records list
        elif first != "[":
            raise ReadError(self.name, "JSON must be an array of objects or an object holding a records list")
        else:
            self.pos += 1
        row = 0
        if self._peek() == "]":
            self.pos += 1
            return
        while True:
            row += 1
            yield self._value(row)
            nxt = self._peek()
            if nxt == ",":
                self.pos += 1
                continue
            if nxt == "]":
                self.pos += 1
                return
            raise ReadError(self.name, f"invalid JSON after record: found {nxt or 'end of file'!r}", row=row)

    def _seek_key(self, key: str | None) -> None:
        while True:
            if self._peek() == "}":
                wanted = f"a '{key}' list" if key else "a list of records"
                raise ReadError(self.name, f"the JSON object holds no {wanted}")
            name = self._value(None)
            if not isinstance(name, str):
                raise ReadError(self.name, "invalid JSON: object key is not a string")
            self._expect(":", f"after key {name!r}")
            if self._peek() == "[" and (key is None or name == key):
                self.pos += 1
                return
            self._value(None)
            if self._peek() == ",":
                self.pos += 1


def open_text(path: Path, name: str) -> TextIO:
    with path.open("rb") as raw:
        head = raw.read(4)
    if b"\x00" in head:
        raise ReadError(name, "JSON must be UTF-8 text; the file contains NUL bytes")
    return path.open(encoding="utf-8-sig", errors="strict")


def flatten(record: dict[str, Any], name: str, row: int, prefix: str = "", depth: int = 0) -> dict[str, Any]:
    """Nested objects become dotted columns; lists stay whole, as JSON text."""
    if depth > MAX_DEPTH:
        raise ReadError(name, f"JSON nested deeper than {MAX_DEPTH} levels", row=row, column=prefix)
    out: dict[str, Any] = {}
    for key, value in record.items():
        column = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            out.update(flatten(value, name, row, column, depth + 1))
        elif isinstance(value, list):
            out[column] = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        else:
            out[column] = value
    return out


def _as_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


def check_width(row: dict[str, Any], name: str, number: int, limit: int | None) -> None:
    """A record with more (flattened) keys than the column limit is refused at once."""
    if limit is not None and len(row) > limit:
        raise ReadError(
            name,
            f"the record has {len(row)} fields, more than the limit of {limit} columns (ingest.max_columns)",
            row=number,
        )


SURROGATE = "text holds an invalid character (a lone UTF-16 surrogate): the file is not valid Unicode"


class BatchBuilder:
    """Rows (flat dicts) to record batches; the first batch fixes columns and types."""

    def __init__(self, name: str, schema: pa.Schema | None = None) -> None:
        self.name = name
        self.schema = schema
        self.rows_done = 0

    def _infer(self, rows: list[dict[str, Any]]) -> pa.Schema:
        columns: dict[str, None] = {}
        for row in rows:
            columns.update(dict.fromkeys(row))
        fields = []
        for column in columns:
            values = [row.get(column) for row in rows]
            try:
                column.encode("utf-8")
                kind = pa.array(values).type
            except UnicodeEncodeError as exc:
                raise ReadError(
                    self.name, SURROGATE, column=column.encode("utf-8", "replace").decode()
                ) from exc
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
                kind = pa.string()
            if pa.types.is_null(kind) or not (
                pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)
            ):
                kind = pa.string()
            fields.append(pa.field(column, kind))
        return pa.schema(fields)

    def build(self, rows: list[dict[str, Any]]) -> pa.RecordBatch:
        if self.schema is None:
            self.schema = self._infer(rows)
        known = set(self.schema.names)
        for offset, row in enumerate(rows):
            for column in row:
                if column not in known:
                    raise ReadError(
                        self.name,
                        "a column appears that the first records did not have; declare the schema",
                        row=self.rows_done + offset + 1,
                        column=column,
                    )
        arrays = []
        for field in self.schema:
            values = [row.get(field.name) for row in rows]
            if pa.types.is_string(field.type):
                values = [_as_text(v) for v in values]
            try:
                arrays.append(pa.array(values, type=field.type))
            except UnicodeEncodeError as exc:
                raise ReadError(self.name, SURROGATE, column=field.name) from exc
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError) as exc:
                raise self._locate(field, values) from exc
        self.rows_done += len(rows)
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def _locate(self, field: pa.Field, values: list[Any]) -> ReadError:
        for offset, value in enumerate(values):
            try:
                pa.array([value], type=field.type)
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
                return ReadError(
                    self.name,
                    f"value does not fit the column type {field.type} inferred from the first records",
                    row=self.rows_done + offset + 1,
                    column=field.name,
                    value=value,
                )
        return ReadError(self.name, f"values do not fit the column type {field.type}", column=field.name)
