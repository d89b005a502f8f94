"""JSON (an array of objects, or an object holding a records list) and NDJSON readers.

Nested objects become dotted column names (``address.city``); lists are kept as JSON
text in JSON files and as Arrow lists in NDJSON files.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.json as pajson

from datalibrary.ingest.readers._jsonstream import (
    MAX_RECORD_BYTES,
    SURROGATE,
    BatchBuilder,
    JsonStream,
    check_width,
    flatten,
    open_text,
)
from datalibrary.ingest.readers.base import (
    DEFAULT_BATCH_ROWS,
    NO_LIMITS,
    NoOptions,
    ReadError,
    ReadLimits,
    parse_options,
)

NDJSON_BLOCK = 4 << 20


@dataclass(frozen=True)
class JsonOptions:
    """How to read a JSON document."""

    records_key: str | None = None  # the key of the records' array (default: the top-level array)


class JsonReader:
    format: ClassVar[str] = "json"
    Options: ClassVar[type[JsonOptions]] = JsonOptions

    def __init__(
        self,
        path: Path,
        *,
        display_name: str | None = None,
        options: JsonOptions | Mapping[str, Any] | None = None,
        limits: ReadLimits = NO_LIMITS,
    ) -> None:
        self.path = Path(path)
        self.name = display_name or self.path.name
        self.records_key = parse_options(JsonOptions, options, file=self.name, reader=self.format).records_key
        self.max_columns = limits.max_columns
        self.max_record_bytes = limits.max_record_bytes or MAX_RECORD_BYTES

    def column_labels(self) -> dict[str, str]:
        return {}

    def batches(self, batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        builder = BatchBuilder(self.name)
        rows: list[dict[str, Any]] = []
        try:
            with open_text(self.path, self.name) as handle:
                stream = JsonStream(handle, self.name, max_record_bytes=self.max_record_bytes)
                for number, record in enumerate(stream.records(self.records_key), 1):
                    if not isinstance(record, dict):
                        raise ReadError(
                            self.name, "each record must be a JSON object", row=number, value=record
                        )
                    row = flatten(record, self.name, number)
                    check_width(row, self.name, number, self.max_columns)
                    rows.append(row)
                    if len(rows) >= batch_rows:
                        yield builder.build(rows)
                        rows = []
        except UnicodeDecodeError as exc:
            raise ReadError(self.name, f"JSON must be UTF-8 text: {exc.reason}") from exc
        except UnicodeEncodeError as exc:
            raise ReadError(self.name, SURROGATE) from exc
        if rows or builder.schema is None:
            if not rows:
                raise ReadError(self.name, "the JSON holds no records")
            yield builder.build(rows)


def _flatten_structs(batch: pa.RecordBatch) -> pa.Table:
    """Struct columns become dotted columns (``lab.code``), level by level."""
    table = pa.Table.from_batches([batch])
    while any(pa.types.is_struct(f.type) for f in table.schema):
        table = table.flatten()
    return table


def _stable(schema: pa.Schema) -> pa.Schema:
    def fix(kind: pa.DataType) -> pa.DataType:
        if pa.types.is_null(kind):
            return pa.string()
        if pa.types.is_struct(kind):
            return pa.struct([pa.field(f.name, fix(f.type)) for f in kind])
        if pa.types.is_list(kind):
            return pa.list_(fix(kind.value_type))
        if pa.types.is_temporal(kind):
            return pa.string()
        return kind

    return pa.schema([pa.field(f.name, fix(f.type)) for f in schema])


def _leaf_count(schema: pa.Schema | pa.DataType) -> int:
    fields = list(schema) if isinstance(schema, pa.Schema) else list(schema)
    return sum(_leaf_count(f.type) if pa.types.is_struct(f.type) else 1 for f in fields)


class NdjsonReader:
    format: ClassVar[str] = "ndjson"
    Options: ClassVar[type[NoOptions]] = NoOptions

    def __init__(
        self,
        path: Path,
        *,
        display_name: str | None = None,
        options: NoOptions | Mapping[str, Any] | None = None,
        limits: ReadLimits = NO_LIMITS,
    ) -> None:
        self.path = Path(path)
        self.name = display_name or self.path.name
        parse_options(NoOptions, options, file=self.name, reader=self.format)
        self.max_columns = limits.max_columns
        self.max_record_bytes = limits.max_record_bytes or MAX_RECORD_BYTES
        self._schema: pa.Schema | None = None

    def column_labels(self) -> dict[str, str]:
        return {}

    def _open(self, schema: pa.Schema | None) -> pajson.JSONStreamingReader:
        parse = pajson.ParseOptions(
            explicit_schema=schema, unexpected_field_behavior="error" if schema is not None else "infer"
        )
        return pajson.open_json(
            self.path, read_options=pajson.ReadOptions(block_size=NDJSON_BLOCK), parse_options=parse
        )

    def source_schema(self) -> pa.Schema:
        if self._schema is None:
            try:
                reader = self._open(None)
                self._schema = _stable(reader.schema)
                reader.close()
                leaves = _leaf_count(self._schema)
                if self.max_columns is not None and leaves > self.max_columns:
                    raise ReadError(
                        self.name,
                        f"the lines have {leaves} fields, more than the limit of {self.max_columns} "
                        "columns (ingest.max_columns)",
                    )
            except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
                raise self._explain(exc, 0) from exc
        return self._schema

    def batches(self, batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        schema = self.source_schema()
        done = 0
        try:
            for batch in self._open(schema):
                done += batch.num_rows
                yield from _flatten_structs(batch).to_batches(max_chunksize=batch_rows)
        except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
            raise self._explain(exc, done) from exc

    def _explain(self, exc: Exception, done: int) -> ReadError:
        """Find the first bad line again with Python's json (error path only)."""
        known = set(self._schema.names) if self._schema is not None else None
        with self.path.open("rb") as handle:
            number = 0
            while line := handle.readline(self.max_record_bytes + 1):
                number += 1
                if len(line) > self.max_record_bytes:
                    return ReadError(
                        self.name, f"a line is longer than {self.max_record_bytes} bytes", row=number
                    )
                if not line.strip():
                    continue
                try:
                    record = json.loads(line.decode("utf-8"))
                except UnicodeDecodeError:
                    return ReadError(self.name, "the line is not UTF-8 text", row=number)
                except (ValueError, RecursionError) as err:
                    return ReadError(self.name, f"line is not valid JSON: {err}", row=number)
                if not isinstance(record, dict):
                    return ReadError(self.name, "each line must be a JSON object", row=number)
                if known is not None:
                    extra = [key for key in record if key not in known]
                    if extra:
                        return ReadError(
                            self.name,
                            "a field appears that the first lines did not have",
                            row=number,
                            column=extra[0],
                        )
        return ReadError(self.name, f"{str(exc).splitlines()[0][:300]} (after data row {done})")
