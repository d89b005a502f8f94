"""Format detection: magic bytes and content first, the file name's suffix only as a tie-break."""

from __future__ import annotations

import json
from pathlib import Path

from datalibrary.ingest.readers.base import ReadError

SAS7BDAT_MAGIC = bytes.fromhex("000000000000000000000000c2ea8160b31411cfbd92080009c7318c181f1011")
_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".xpt": "xpt",
    ".xport": "xpt",
    ".sas7bdat": "sas7bdat",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "json",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".gz": "gzip",
    ".zip": "zip",
}
FORMATS = ("csv", "xpt", "sas7bdat", "parquet", "json", "ndjson", "fhir", "gzip", "zip")


def _json_kind(head: bytes, suffix: str | None) -> str | None:
    text = head.decode("utf-8", "replace").lstrip("\ufeff \t\r\n")
    if not text or text[0] not in "[{":
        return None
    fhir = '"resourceType"' in text[:65536]
    first = text.split("\n", 1)[0].strip()
    if text[0] == "{":
        try:
            record = json.loads(first)
        except (ValueError, RecursionError):
            record = None
        if isinstance(record, dict):
            is_lines = "\n" in text.strip() or suffix == "ndjson"
            if fhir and record.get("resourceType") not in (None, "Bundle"):
                return "fhir"
            if is_lines:
                return "ndjson"
    if fhir and '"Bundle"' in text[:65536]:
        return "fhir"
    return "json"


def detect_format(path: Path) -> str:
    """One of ``FORMATS``; raises ``ReadError`` when the content matches none."""
    path = Path(path)
    with path.open("rb") as handle:
        head = handle.read(65536)
        handle.seek(-4, 2) if path.stat().st_size >= 8 else None
        tail = handle.read(4)
    suffix = _SUFFIXES.get(path.suffix.lower())
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"PAR1") and tail == b"PAR1":
        return "parquet"
    if head.startswith(b"HEADER RECORD*******LIB") or head.startswith(b"HEADER RECORD*******LIBV8"):
        return "xpt"
    if head[:32] == SAS7BDAT_MAGIC:
        return "sas7bdat"
    if not head.strip():
        raise ReadError(path.name, "the file is empty")
    json_kind = _json_kind(head, suffix)
    if json_kind:
        return json_kind
    if b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ReadError(path.name, "binary content of an unknown format")
    return "csv"  # text that is not JSON: delimited text, whatever the suffix says
