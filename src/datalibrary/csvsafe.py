"""Spreadsheet-safe CSV cells, shared by every CSV the platform writes (audit exports, query
results).

A cell that starts with ``=``, ``+``, ``-``, ``@`` (or a tab / carriage return) is a formula
to Excel and LibreOffice; such cells are prefixed with ``'`` (OWASP "CSV injection"). Query
results are neutralized column by column (Arrow compute, no Python loop over rows); only text
columns can hold a formula, numbers and dates are written as they are."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_PATTERN = "^[=+\\-@\t\r]"


def neutralize(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def neutralize_column(column: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """The text column with every formula-looking cell prefixed by ``'`` (NULLs stay NULL)."""
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return column
    risky = pc.match_substring_regex(column, _FORMULA_PATTERN)
    return pc.if_else(risky, pc.binary_join_element_wise("'", column, ""), column)


def neutralize_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    columns = [neutralize_column(c) for c in batch.columns]
    return pa.RecordBatch.from_arrays(columns, schema=batch.schema)
