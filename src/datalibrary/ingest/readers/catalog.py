"""Format name -> reader class, for the registry in ``ingest/readers/__init__.py``."""

from __future__ import annotations

from datalibrary.ingest.readers.csv import CsvReader
from datalibrary.ingest.readers.fhir import FhirReader
from datalibrary.ingest.readers.json_formats import JsonReader, NdjsonReader
from datalibrary.ingest.readers.parquet import ParquetReader
from datalibrary.ingest.readers.sas7bdat import Sas7bdatReader
from datalibrary.ingest.readers.xpt import XptReader

READERS: dict[str, type] = {
    "csv": CsvReader,
    "xpt": XptReader,
    "sas7bdat": Sas7bdatReader,
    "parquet": ParquetReader,
    "json": JsonReader,
    "ndjson": NdjsonReader,
    "fhir": FhirReader,
}
