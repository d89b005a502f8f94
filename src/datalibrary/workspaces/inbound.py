"""Files written into a workspace from outside are scanned like ingestion deliveries.

An upload is a path for identified data into the platform that bypasses anonymization, so
the proxy scans what it carries with ingestion's fail-closed detector
(``privacy.detect``): column names and values that look like names, SSNs, e-mail
addresses, phone numbers, street addresses, medical record numbers, birth dates. Tabular
files in binary formats (Parquet, SAS XPORT, SAS7BDAT) are read with ingestion's own readers,
every batch; text (CSV, notebooks, code) is scanned line by line, every line. Archives
cannot be scanned here and are refused (upload their files), as is a tabular file the readers
cannot read. Evidence describes what matched, never the values, so the audit entry of a
refusal repeats no identifier.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path, PurePosixPath

import pyarrow as pa
import pyarrow.compute as pc

from datalibrary.ingest.readers import open_reader
from datalibrary.privacy.detect import CONTENT_PATTERNS, name_evidence, scan_column

TABULAR_BINARY = (".parquet", ".pq", ".xpt", ".xport", ".sas7bdat")
DELIMITED = (".csv", ".tsv", ".txt", ".dat")
ARCHIVES = (".zip", ".gz", ".tgz", ".tar", ".bz2", ".xz", ".7z", ".rar", ".zst")
ARCHIVE_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"\x1f\x8b", b"7z\xbc\xaf", b"BZh", b"\xfd7zXZ", b"Rar!")


def _lines_evidence(text: str) -> list[str]:
    lines = pa.array(text.splitlines(), pa.large_string())
    found = []
    for kind, pattern in CONTENT_PATTERNS.items():
        hits = pc.sum(pc.match_substring_regex(lines, pattern)).as_py() or 0
        if hits:
            found.append(f"{hits} line(s) look like they hold a {kind}")
    return found


def _header_evidence(text: str) -> list[str]:
    header = text.split("\n", 1)[0].strip("\r\ufeff")
    delimiter = max(("\t", ";", "|", ","), key=header.count)
    found = []
    for number, column in enumerate(header.split(delimiter), start=1):
        found += [f"column {number}'s {kind}" for kind in name_evidence(column.strip().strip('"'))]
    return found


def _tabular_evidence(name: str, data: bytes) -> list[str]:
    suffix = PurePosixPath(name).suffix.lower()
    fd, temporary = tempfile.mkstemp(suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        found: list[str] = []
        try:
            reader = open_reader(Path(temporary), display_name=PurePosixPath(name).name)
            for batch in reader.batches():
                for field, column in zip(batch.schema, batch.columns, strict=True):
                    for item in scan_column(field.name, column):
                        text = f"a column's {item}" if item.startswith("name") else f"a column: {item}"
                        if text not in found:
                            found.append(text)
        except Exception as exc:  # noqa: BLE001 - unreadable means unscannable: refused
            kind = type(exc).__name__
            return [f"the file cannot be read as {suffix[1:]} ({kind}), so it cannot be scanned"]
        return found
    finally:
        os.unlink(temporary)


def evidence(name: str, data: bytes, *, first_chunk: bool = True) -> list[str]:
    """Why this upload looks like identified data (empty: nothing found)."""
    lower = name.lower()
    if lower.endswith(ARCHIVES) or data.startswith(ARCHIVE_MAGIC):
        return ["an archive: its members cannot be scanned here (upload the files themselves)"]
    if lower.endswith(TABULAR_BINARY):
        if not first_chunk:
            return ["a binary table sent in chunks cannot be scanned: upload it whole"]
        return _tabular_evidence(name, data)
    text = data.decode("utf-8", "replace")
    found = _header_evidence(text) if first_chunk and lower.endswith(DELIMITED) else []
    return found + _lines_evidence(text)
