"""Parquet reader: row group by row group through ``ParquetFile.iter_batches``."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.parquet as pq

from datalibrary.ingest.readers.base import (
    DEFAULT_BATCH_ROWS,
    NO_LIMITS,
    NoOptions,
    ReadError,
    ReadLimits,
    parse_options,
)

_LABEL_KEYS = (b"label", b"description", b"title")


class ParquetReader:
    format: ClassVar[str] = "parquet"
    Options: ClassVar[type[NoOptions]] = NoOptions

    def __init__(
        self,
        path: Path,
        *,
        display_name: str | None = None,
        options: NoOptions | Mapping[str, Any] | None = None,
        limits: ReadLimits = NO_LIMITS,  # a Parquet file's width and pages are pyarrow's to bound
    ) -> None:
        self.path = Path(path)
        self.name = display_name or self.path.name
        parse_options(NoOptions, options, file=self.name, reader=self.format)
        try:
            self.file = pq.ParquetFile(self.path)
        except (pa.ArrowException, OSError) as exc:
            raise ReadError(self.name, f"not a readable Parquet file: {exc}") from exc

    def schema(self) -> pa.Schema:
        return self.file.schema_arrow

    def column_labels(self) -> dict[str, str]:
        """Labels from field metadata (``label``/``description``) or a ``column_labels`` JSON key."""
        schema = self.file.schema_arrow
        labels: dict[str, str] = {}
        extra = (schema.metadata or {}).get(b"column_labels")
        if extra:
            with contextlib.suppress(ValueError, AttributeError):
                labels.update({str(k): str(v) for k, v in json.loads(extra).items()})
        for field in schema:
            for key in _LABEL_KEYS:
                if field.metadata and field.metadata.get(key):
                    labels[field.name] = field.metadata[key].decode("utf-8", "replace")
                    break
        return labels

    def batches(self, batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        done = 0
        try:
            for batch in self.file.iter_batches(batch_size=batch_rows):
                done += batch.num_rows
                yield batch
        except (pa.ArrowException, OSError) as exc:
            raise ReadError(self.name, f"damaged or truncated Parquet data after row {done}: {exc}") from exc
