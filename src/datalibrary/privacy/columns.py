"""Arrow column helpers shared by the actions and the per-variable dispatch (``by_variable``):
one module below both, so neither imports the other."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc


def as_strings(column: pa.Array) -> pa.Array:
    """The column as UTF-8 text, whatever its type; whole floats lose their ".0"."""
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if pa.types.is_string(column.type):
        return column
    if pa.types.is_large_string(column.type):
        return column.cast(pa.string())
    if pa.types.is_floating(column.type):
        # 1.0 -> "1": identifiers stored as SAS numerics normalize like their text form.
        whole = pc.equal(column, pc.floor(column))
        as_int = pc.if_else(whole, column, None).cast(pa.int64(), safe=False).cast(pa.string())
        return pc.if_else(whole, as_int, column.cast(pa.string()))
    return column.cast(pa.string())
