"""The private landing area: raw files stored (0700) with their SHA-256, and quarantine.

Raw files never reach the lake: they wait here until their job commits (then they are
deleted) or fails on bad input (then they move to quarantine with a machine-readable reason).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
from pathlib import Path

from datalibrary.config import Settings

CHUNK = 1 << 20


def ingest_dir(settings: Settings, kind: str) -> Path:
    """``raw``, ``quarantine`` or ``uploads`` under ``<home>/ingest`` (private)."""
    path = settings.home / "ingest" / kind
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    for part in (settings.home / "ingest", path):
        part.chmod(0o700)
    return path


def watched_dir(settings: Settings) -> Path:
    path = settings.home / "landing"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def safe_filename(name: str) -> str:
    """The last path component, with anything odd replaced (no traversal, no hidden files)."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".")
    return base[:200] or "file"


def land(
    settings: Settings, job_id: str, source: Path, display_name: str, *, move: bool = False
) -> tuple[Path, str, int]:
    """Store ``source`` as the job's raw file; return (path, sha256, size)."""
    directory = ingest_dir(settings, "raw") / job_id
    directory.mkdir(mode=0o700, exist_ok=True)
    target = directory / safe_filename(display_name)
    digest = hashlib.sha256()
    size = 0
    if move:
        try:
            os.replace(source, target)
        except OSError:
            shutil.move(str(source), target)
        with open(target, "rb") as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
    else:
        with open(source, "rb") as reader, open(target, "wb") as writer:
            while chunk := reader.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
                writer.write(chunk)
            writer.flush()
            os.fsync(writer.fileno())
    target.chmod(0o600)
    return target, digest.hexdigest(), size


def quarantine(settings: Settings, job_id: str, raw: Path | None) -> Path | None:
    """Move the job's raw file to quarantine; return its new path."""
    if raw is None or not raw.exists():
        return None
    directory = ingest_dir(settings, "quarantine") / job_id
    directory.mkdir(mode=0o700, exist_ok=True)
    target = directory / raw.name
    os.replace(raw, target)
    _remove_empty(raw.parent)
    return target


def discard(raw: Path | None) -> None:
    """Delete the job's raw file (after its rows are committed, or it was a duplicate)."""
    if raw is None:
        return
    raw.unlink(missing_ok=True)
    _remove_empty(raw.parent)


def _remove_empty(directory: Path) -> None:
    with contextlib.suppress(OSError):
        directory.rmdir()
