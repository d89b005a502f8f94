"""Sniffing of text files: encoding, delimiter and header, decided from the first bytes.

Kept apart from the CSV reader so format detection can use the same rules.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

SAMPLE_BYTES = 256 * 1024
DELIMITERS = (",", ";", "\t", "|")
_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


@dataclass(frozen=True)
class TextSniff:
    encoding: str  # a Python codec name: utf-8, utf-16, cp1252, latin-1
    has_bom: bool
    delimiter: str
    header: list[str]
    sample_rows: int  # complete records seen in the sample (header included)
    bytes_per_row: float


class SniffError(ValueError):
    """The sample is not text we can read (NUL bytes, empty, undecodable)."""


def read_sample(path: Path, size: int = SAMPLE_BYTES) -> bytes:
    with path.open("rb") as handle:
        return handle.read(size)


def detect_encoding(sample: bytes, *, complete: bool) -> tuple[str, bool]:
    """UTF-8 (with or without BOM) first, then UTF-16 by BOM, then cp1252, then latin-1."""
    if sample.startswith(_UTF8_BOM):
        return "utf-8", True
    if sample[:2] in _UTF16_BOMS:
        return "utf-16", True
    if b"\x00" in sample:
        raise SniffError("the file contains NUL bytes: it is binary or UTF-16 without a byte-order mark")
    body = sample if complete else sample[: max(len(sample) - 4, 0)]
    try:
        body.decode("utf-8")
        return "utf-8", False
    except UnicodeDecodeError:
        pass
    try:
        body.decode("cp1252")
        return "cp1252", False
    except UnicodeDecodeError:
        return "latin-1", False


def _records(text: str, delimiter: str, limit: int = 200) -> list[list[str]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"', strict=False)
    rows: list[list[str]] = []
    try:
        for row in reader:
            rows.append(row)
            if len(rows) >= limit:
                break
    except csv.Error:
        pass
    return rows


def detect_delimiter(text: str) -> str:
    """The candidate whose field count is most consistent across the sample's lines, then widest."""
    best, best_score = ",", (-1.0, 0)
    for delimiter in DELIMITERS:
        rows = [r for r in _records(text, delimiter) if r]
        if not rows:
            continue
        widths = [len(r) for r in rows]
        head = widths[0]
        if head < 2:
            continue
        share = sum(1 for w in widths if w == head) / len(widths)
        score = (share, head)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def clean_header(names: list[str]) -> list[str]:
    """Non-empty column names (blank -> column_N); a repeated name is refused, since which
    column a policy rule or a query means would be a guess (SQL names ignore case)."""
    seen: dict[str, int] = {}
    out: list[str] = []
    for index, raw in enumerate(names, start=1):
        name = raw.strip().strip("\ufeff") or f"column_{index}"
        if name.lower() in seen:
            raise SniffError(
                f"columns {seen[name.lower()]} and {index} are both named '{name}' (names ignore case)"
            )
        seen[name.lower()] = index
        out.append(name)
    return out


def sniff(path: Path, *, encoding: str | None = None, delimiter: str | None = None) -> TextSniff:
    sample = read_sample(path)
    if not sample.strip():
        raise SniffError("the file is empty")
    complete = len(sample) < SAMPLE_BYTES
    detected, has_bom = detect_encoding(sample, complete=complete)
    codec = encoding or detected
    raw = sample if complete else sample[: max(len(sample) - 4, 0)]
    text = raw.decode(codec, errors="replace").lstrip("\ufeff")
    if not complete:  # drop the partial last line
        text = text[: text.rfind("\n") + 1] or text
    chosen = delimiter or detect_delimiter(text)
    rows = _records(text, chosen, limit=100_000)
    if not rows:
        raise SniffError("no header line found")
    per_row = len(raw) / max(len(rows), 1)
    return TextSniff(codec, has_bom, chosen, clean_header(rows[0]), len(rows), per_row)
