"""Erasure (``lake.erasure``) in what ingestion holds: deliveries and quarantined files.

Deliveries still waiting for ingestion are searched (their sealed raw files): one that
mentions the subject would bring it back, so it is quarantined with the reason and its file
deleted. Quarantined files that mention the subject are deleted, and quarantine reasons that
quote it are scrubbed. Erasure refuses to run while a job of the namespace is running
(:func:`refuse_while_running`): that job could commit the subject after the check.
``wiring`` registers these with the lake (copy scanners and the erasure guard).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from datalibrary.config import Settings
from datalibrary.db.base import utcnow
from datalibrary.errors import Conflict
from datalibrary.ingest import quarantine
from datalibrary.ingest.models import IngestJob
from datalibrary.lake import copies

QUARANTINE = "quarantine"
PENDING = "pending deliveries"


def _scrub_jobs(session: Session, namespace: str, subject: str) -> int:
    """Quarantine reasons quote offending values: drop any that quote the subject."""
    count = 0
    for job in session.scalars(
        select(IngestJob).where(IngestJob.namespace == namespace, IngestJob.reason.is_not(None))
    ):
        if subject in str(job.reason):
            job.reason = {"code": (job.reason or {}).get("code", "erased"), "message": "[erased on request]"}
            count += 1
    return count


def _stream_mentions(chunks: Iterable[bytes], subject: str) -> bool:
    """Whether ``subject`` occurs in a stream of chunks (matches across chunk borders too)."""
    needle = subject.encode()
    tail = b""
    for chunk in chunks:
        window = tail + chunk
        if needle in window:
            return True
        tail = window[-(len(needle) - 1) :] if len(needle) > 1 else b""
    return False


def refuse_while_running(session: Session, namespace: str) -> None:
    """A running job could commit the subject after erasure checked; a dead worker's job
    (lease run out) is only pending and is searched like a queued one."""
    running = session.scalars(
        select(IngestJob.id).where(
            IngestJob.namespace == namespace,
            IngestJob.state.in_(("running", "cancelling")),
            IngestJob.lease_expires_at >= utcnow(),
        )
    ).all()
    if running:
        raise Conflict(
            f"{len(running)} ingestion job(s) of namespace {namespace!r} are running "
            f"({', '.join(running[:5])}); erase when they have ended"
        )


def _raw_mentions(settings: Settings, path: Path, subject: str) -> list[str]:
    if path.suffix == quarantine.SUFFIX:  # encrypted at rest: search the decrypted stream
        return ["raw bytes"] if _stream_mentions(quarantine.iter_plain(settings, path), subject) else []
    return copies.file_mentions(path, subject)


def scan_pending(scope: copies.ErasureScope) -> list[dict[str, Any]]:
    """Deliveries of the namespace waiting for a worker (queued, or left by a dead one) that
    mention the subject are quarantined and their raw file deleted (the sender is asked for a
    delivery without the subject): each would bring it back. Each is listed."""
    session, namespace, subject, request = scope.session, scope.namespace, scope.subject, scope.request
    checked: list[dict[str, Any]] = []
    jobs = session.scalars(
        select(IngestJob).where(
            IngestJob.namespace == namespace,
            IngestJob.state.in_(("queued", "running")),
            IngestJob.raw_path.is_not(None),
        )
    ).all()
    for job in jobs:
        path = Path(job.raw_path or "")
        if not path.is_file():
            continue
        size = path.stat().st_size
        found = _raw_mentions(scope.settings, path, subject)
        action = "kept"
        if found:
            reason = {
                "code": "erased-subject",
                "message": f"this delivery holds a subject erased on request {request}; "
                "ask the sender for a delivery without them",
            }
            # Only a job no worker claimed meanwhile is taken (a claim is the same kind of update).
            taken = session.execute(
                update(IngestJob)
                .where(IngestJob.id == job.id, IngestJob.state == job.state, IngestJob.worker == job.worker)
                .values(state="quarantined", raw_path=None, reason=reason, finished_at=utcnow())
            )
            if taken.rowcount == 1:  # type: ignore[attr-defined]
                path.unlink(missing_ok=True)
                action = "deleted"
            else:
                action = "claimed by a worker meanwhile"
        item = copies.entry(PENDING, path, found, action, size)
        item["contains_subject"] = bool(found) and action != "deleted"  # still there: not erased
        checked.append(item)
    return checked


def scan_quarantine(scope: copies.ErasureScope) -> list[dict[str, Any]]:
    """Quarantined raw files of the namespace that mention the subject are deleted; every
    quarantined file of the namespace is listed in the proof. Reasons quoting the subject
    are scrubbed too."""
    session, namespace, subject = scope.session, scope.namespace, scope.subject
    scope.counts["job_reasons_scrubbed"] = _scrub_jobs(session, namespace, subject)
    count = 0
    checked: list[dict[str, Any]] = []
    jobs = session.scalars(
        select(IngestJob).where(IngestJob.namespace == namespace, IngestJob.state == "quarantined")
    )
    for job in jobs:
        if not job.raw_path:
            continue
        path = Path(job.raw_path)
        if not path.is_file():
            continue
        size = path.stat().st_size
        found = _raw_mentions(scope.settings, path, subject)
        if found:
            path.unlink()
            job.raw_path = None
            count += 1
        checked.append(copies.entry(QUARANTINE, path, found, "deleted" if found else "kept", size))
    scope.counts["quarantined_files_deleted"] = count
    return checked


def register() -> None:
    copies.register(QUARANTINE, scan_quarantine)
    copies.register(PENDING, scan_pending)
