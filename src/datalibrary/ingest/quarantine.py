"""Quarantine: the one place that reads and writes quarantined files.

A quarantined file is raw, identified data that failed validation, so it is kept encrypted
at rest in the format and under the key of ``ingest.sealed`` (the landing area uses the same:
moving a file into quarantine and back for a retry is a rename, never a decryption). Reading
back (erasure's search) goes through ``iter_plain``; ``delete_file`` and
``apply_retention`` remove the files (the job and its reason stay, for the record).
"""

from __future__ import annotations

import contextlib
import logging
import os
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from datalibrary.audit.service import record
from datalibrary.config import Settings
from datalibrary.db import Database
from datalibrary.db.base import utcnow
from datalibrary.ingest.landing import ingest_dir, remove_scratch
from datalibrary.ingest.models import IngestJob
from datalibrary.ingest.sealed import MAGIC, SUFFIX, is_sealed, iter_plain, seal

__all__ = ["MAGIC", "SUFFIX", "apply_retention", "delete_file", "iter_plain", "restore", "store"]
log = logging.getLogger(__name__)


def holds(path: Path) -> bool:
    """Whether ``path`` is a quarantined file (``<home>/ingest/quarantine/<job>/<name>``), as
    opposed to one waiting in the landing area (``<home>/ingest/raw/<job>/<name>``)."""
    return path.parent.parent.name == "quarantine" and path.parent.parent.parent.name == "ingest"


def store(settings: Settings, job_id: str, raw: Path | None) -> Path | None:
    """Move the job's raw file into quarantine (sealed); return its new path."""
    if raw is None or not raw.exists():
        return None
    if holds(raw):  # already quarantined (a retry that failed again)
        return raw
    directory = ingest_dir(settings, "quarantine") / job_id
    directory.mkdir(mode=0o700, exist_ok=True)
    if is_sealed(raw):
        target = directory / raw.name
        os.replace(raw, target)
    else:  # landed in plain by an older version: sealed now, the plain copy removed
        with raw.open("rb") as source:
            target = seal(settings, source, directory / (raw.name + SUFFIX))
        raw.unlink(missing_ok=True)
    remove_scratch(raw.parent)
    with contextlib.suppress(OSError):
        raw.parent.rmdir()
    return target


def restore(settings: Settings, job: IngestJob) -> Path:
    """Move a quarantined file back into the job's landing area (a retry), still sealed."""
    source = Path(job.raw_path or "")
    directory = ingest_dir(settings, "raw") / job.id
    directory.mkdir(mode=0o700, exist_ok=True)
    target = directory / source.name
    os.replace(source, target)
    with contextlib.suppress(OSError):
        source.parent.rmdir()
    return target


def delete_file(path: Path | None) -> None:
    if path is None:
        return
    path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        path.parent.rmdir()


def apply_retention(settings: Settings, db: Database) -> list[str]:
    """Delete quarantined files older than ``ingest.quarantine_retention_days`` (the job, its
    reason and its SHA-256 stay); audited as ``ingest.quarantine-expired``."""
    days = settings.ingest.quarantine_retention_days
    if days <= 0:
        return []
    cutoff = utcnow() - timedelta(days=days)
    expired: list[str] = []
    with db.session() as session:
        rows = session.scalars(
            select(IngestJob).where(
                IngestJob.state.in_(("quarantined", "cancelled")),
                IngestJob.finished_at < cutoff,
                IngestJob.raw_path.is_not(None),
            )
        )
        for job in rows:
            delete_file(Path(job.raw_path or ""))
            job.raw_path = None
            expired.append(job.id)
            record(
                session,
                actor="system:retention",
                action="ingest.quarantine-expired",
                target=f"job:{job.id}",
                details={"job": job.id, "file": job.source_name, "sha256": job.sha256, "days": days},
            )
    return expired
