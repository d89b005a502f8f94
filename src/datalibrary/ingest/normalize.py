"""Normalize and validate batches: types the lake stores, then the table's declared schema.

Iceberg stores no unsigned or 8/16-bit integers, no nanosecond or zoned-non-UTC timestamps,
no large/view strings, no dictionaries and no null type: ``lake_type`` maps each Arrow type
to what we store. ``conform`` casts a batch to the table's schema and, when a value does not
fit, names the file, row, column and value.
"""

from __future__ import annotations

import unicodedata

import pyarrow as pa
import pyarrow.compute as pc

from datalibrary.ingest.readers.base import ReadError


def lake_type(kind: pa.DataType) -> pa.DataType:
    t = pa.types
    if t.is_dictionary(kind):
        return lake_type(kind.value_type)
    if t.is_null(kind) or t.is_large_string(kind) or t.is_string_view(kind):
        return pa.string()
    if t.is_large_binary(kind) or t.is_binary_view(kind) or t.is_fixed_size_binary(kind):
        return pa.binary()
    if t.is_int8(kind) or t.is_int16(kind) or t.is_uint8(kind) or t.is_uint16(kind):
        return pa.int32()
    if t.is_uint32(kind) or t.is_uint64(kind):
        return pa.int64()
    if t.is_float16(kind):
        return pa.float32()
    if t.is_timestamp(kind):
        return pa.timestamp("us", tz="UTC") if kind.tz else pa.timestamp("us")
    if t.is_date64(kind):
        return pa.date32()
    if t.is_time(kind):
        return pa.time64("us")
    if t.is_duration(kind):
        return pa.int64()
    if t.is_large_list(kind) or t.is_list_view(kind) or t.is_large_list_view(kind):
        return pa.list_(lake_type(kind.value_type))
    if t.is_list(kind):
        return pa.list_(lake_type(kind.value_type))
    if t.is_struct(kind):
        return pa.struct([pa.field(f.name, lake_type(f.type)) for f in kind])
    if t.is_map(kind):
        return pa.map_(lake_type(kind.key_type), lake_type(kind.item_type))
    return kind


# Letters of other scripts that render like Latin ones (Unicode confusables, the common part):
# a column named with a Cyrillic "А" must not pass for "AGE".
_CONFUSABLE = str.maketrans(
    "АВЕЗІЈКМНОРСТУХЅԁаеорсухіјѕԛԝӏΑΒΕΖΗΙΚΜΝΟΡΤΥΧαοιν",
    "ABE3IJKMHOPCTYXSdaeopcyxijsqwlABEZHIKMNOPTYXaoiv",
)


def column_key(name: str) -> str:
    """What a column name means to a reader of the catalog or a SQL query: NFKC (fullwidth
    letters), case folded, invisible characters (format, control) removed, look-alike letters
    of other scripts mapped to Latin."""
    text = unicodedata.normalize("NFKC", name)
    text = "".join(c for c in text if unicodedata.category(c) not in ("Cf", "Cc", "Mn", "Zs"))
    return text.translate(_CONFUSABLE).casefold()


def check_columns(names: list[str], *, file: str, limit: int) -> None:
    """Refuse a file with more than ``limit`` columns, or two names that look the same
    (``AGE``, ``ＡＧＥ``, Cyrillic ``АGE``, ``A\u200dGE``): a policy rule or a query would
    silently pick one of them. Linear in the number of columns."""
    if len(names) > limit:
        raise ReadError(
            file, f"the file has {len(names)} columns, more than the limit of {limit} (ingest.max_columns)"
        )
    seen: dict[str, str] = {}
    for name in names:
        key = column_key(name)
        if not key:
            raise ReadError(file, "a column name is empty or made of invisible characters", column=repr(name))
        if key in seen:
            raise ReadError(
                file,
                f"columns {seen[key]!r} and {name!r} look the same (they differ only in case, width, "
                "invisible characters or look-alike letters): rename one",
            )
        seen[key] = name


def lake_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema([pa.field(f.name, lake_type(f.type), nullable=True) for f in schema])


def conform(batch: pa.RecordBatch, schema: pa.Schema, *, file: str, first_row: int) -> pa.RecordBatch:
    """Cast ``batch`` to ``schema`` (by column name). ``first_row`` is the 1-based row of its first row."""
    have, want = set(batch.schema.names), set(schema.names)
    missing = [name for name in schema.names if name not in have]
    extra = [name for name in batch.schema.names if name not in want]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing column(s) {', '.join(missing)}")
        if extra:
            parts.append(f"unexpected column(s) {', '.join(extra)}")
        raise ReadError(file, "the columns differ from the table's schema: " + "; ".join(parts))
    arrays = []
    positions = {name: index for index, name in enumerate(batch.schema.names)}
    for field in schema:
        column = batch.column(positions[field.name])
        if column.type.equals(field.type):
            arrays.append(column)
            continue
        try:
            if pa.types.is_timestamp(column.type) and column.type.tz and field.type.tz is None:
                raise pa.ArrowInvalid("a zoned timestamp cannot go into a column without time zone")
            arrays.append(pc.cast(column, field.type, safe=True))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            row, value = _first_bad(column, field.type)
            raise ReadError(
                file,
                f"value does not fit the column type {field.type} ({str(exc).splitlines()[0][:120]})",
                row=None if row is None else first_row + row,
                column=field.name,
                value=value,
            ) from exc
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _first_bad(column: pa.Array, target: pa.DataType) -> tuple[int | None, object]:
    """Locate the first value that does not cast (the error path only: a Python loop is fine)."""
    for index in range(len(column)):
        item = column.slice(index, 1)
        try:
            pc.cast(item, target, safe=True)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return index, item[0].as_py()
    return None, None
