"""Encoding a query result as a file (csv, parquet, arrow): one implementation that the API
streams and the CLI writes to a file, so both give the same bytes."""

from __future__ import annotations

import io
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from datalibrary import csvsafe

BATCH_ROWS = 65_536


def write(table: pa.Table, fmt: str, sink: Any) -> None:
    """Encode ``table`` batch by batch into ``sink`` (a file object): bounded memory for any
    result size. CSV cells and headers that a spreadsheet would run as formulas are neutralized."""
    batches = table.to_batches(max_chunksize=BATCH_ROWS)
    if fmt == "csv":
        schema = pa.schema([f.with_name(csvsafe.neutralize(f.name)) for f in table.schema])
        with pacsv.CSVWriter(sink, schema) as writer:
            for batch in batches:
                writer.write_batch(csvsafe.neutralize_batch(batch.rename_columns(schema.names)))
    elif fmt == "parquet":
        with pq.ParquetWriter(sink, table.schema, compression="zstd") as writer:
            for batch in batches:
                writer.write_batch(batch)
    else:
        with pa.ipc.new_stream(sink, table.schema) as writer:
            for batch in batches:
                writer.write_batch(batch)


def encode(table: pa.Table, fmt: str) -> bytes:
    """The whole encoded result (the CLI writes it to a file); the API streams instead."""
    sink = io.BytesIO()
    write(table, fmt, sink)
    return sink.getvalue()
