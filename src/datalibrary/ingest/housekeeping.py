"""What lake maintenance (a layer below) must ask ingestion: the jobs still writing to a table
(their files are not orphans) and the raw copies killed processes left. ``wiring`` registers
these as the hooks of ``lake.maintenance``."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from datalibrary.config import Settings
from datalibrary.ingest.landing import ingest_dir
from datalibrary.ingest.models import IngestJob


def active_writes(session: Session, namespace: str, table: str) -> set[str]:
    """Ids of the jobs still queued or running that write to ``namespace.table``."""
    return set(
        session.scalars(
            select(IngestJob.id).where(
                IngestJob.namespace == namespace,
                IngestJob.table_name == table,
                IngestJob.state.in_(("queued", "running")),
            )
        )
    )


def remove_stale_raw_files(settings: Settings, session: Session, grace: timedelta) -> int:
    """Raw copies left by a process killed while landing a file (no job row was committed),
    and the dangling links of decrypted views whose reader was killed (they hold no data)."""
    limit = datetime.now(UTC).timestamp() - grace.total_seconds()
    removed = 0
    for directory in ingest_dir(settings, "raw").iterdir():
        if not directory.is_dir() or directory.stat().st_mtime > limit:
            continue
        if session.get(IngestJob, directory.name) is None:
            for item in directory.iterdir():
                item.unlink()
            directory.rmdir()
            removed += 1
    for holder in ingest_dir(settings, "work").iterdir():  # links left by killed readers
        if holder.is_dir() and holder.stat().st_mtime <= limit:
            shutil.rmtree(holder, ignore_errors=True)
    return removed
