"""Delivery manifests, as data transfer agreements specify them: for each file its name, its
SHA-256 and its row count. A manifest is optional; when one comes with a delivery (a
``manifest.json`` / ``manifest.csv`` inside the archive, or ``--manifest`` with the file),
every mismatch quarantines with the reason: a listed file missing, an unlisted file present,
another SHA-256, another row count.

``manifest.json``: ``{"files": [{"name": "dm.xpt", "sha256": "...", "rows": 306}, ...]}`` (or
the list alone); ``manifest.csv``: columns ``name,sha256,rows`` (``file`` also accepted for
``name``). SHA-256 and rows may each be left empty when the agreement does not give them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path, PurePosixPath
from typing import Any

from datalibrary.ingest.readers.base import ReadError

NAMES = ("manifest.json", "manifest.csv")
MAX_BYTES = 8 << 20


def is_manifest(path: Path) -> bool:
    return path.name.lower() in NAMES


def load(path: Path, shown: str | None = None) -> dict[str, dict[str, Any]]:
    """``{name: {"sha256": str | None, "rows": int | None}}``; ``ReadError`` when malformed."""
    shown = shown or path.name
    if path.stat().st_size > MAX_BYTES:
        raise ReadError(shown, f"the manifest is larger than {MAX_BYTES >> 20} MB")
    text = path.read_text(encoding="utf-8-sig", errors="strict")
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
            rows = data.get("files") if isinstance(data, dict) else data
            if not isinstance(rows, list):
                raise ValueError("expected a 'files' list")
        else:
            rows = list(csv.DictReader(io.StringIO(text)))
    except (ValueError, csv.Error) as exc:
        raise ReadError(shown, f"the manifest is not readable: {exc}") from exc
    entries: dict[str, dict[str, Any]] = {}
    for number, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise ReadError(shown, "each manifest entry must name a file", row=number)
        name = str(row.get("name") or row.get("file") or "").strip().replace("\\", "/")
        if not name:
            raise ReadError(shown, "a manifest entry has no file name", row=number)
        sha = str(row.get("sha256") or "").strip().lower() or None
        count = row.get("rows")
        try:
            rows_expected = None if count in (None, "") else int(count)
        except (TypeError, ValueError):
            raise ReadError(shown, "the row count is not a number", row=number, value=count) from None
        if name in entries:
            raise ReadError(shown, "the manifest lists a file twice", row=number, value=name)
        entries[name] = {"sha256": sha, "rows": rows_expected}
    return entries


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def entry_for(entries: dict[str, dict[str, Any]], relative: str) -> dict[str, Any] | None:
    """A member's entry, by its path in the delivery or, failing that, its file name."""
    if relative in entries:
        return entries[relative]
    base = PurePosixPath(relative).name
    matches = [v for k, v in entries.items() if PurePosixPath(k).name == base]
    return matches[0] if len(matches) == 1 else None


def check_members(
    entries: dict[str, dict[str, Any]], members: list[tuple[Path, str]], delivery: str
) -> dict[str, dict[str, Any]]:
    """Every member listed with its SHA-256, every listed file present; returns each member's
    expectations (the row count is checked by the member's own job before it commits)."""
    found: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    used: set[int] = set()
    for path, relative in members:
        entry = entry_for(entries, relative)
        if entry is None:
            problems.append(f"'{relative}' is not in the manifest")
            continue
        used.add(id(entry))
        if entry["sha256"] and entry["sha256"] != _sha256(path):
            problems.append(f"'{relative}' has another SHA-256 than the manifest says")
        found[relative] = entry
    missing = [name for name, entry in entries.items() if id(entry) not in used]
    problems.extend(f"'{name}' is in the manifest but not in the delivery" for name in missing)
    if problems:
        raise ReadError(delivery, "the delivery does not match its manifest: " + "; ".join(problems[:20]))
    return found
