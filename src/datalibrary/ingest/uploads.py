"""REST uploads, streamed to disk: one request for small files, chunks for large ones.

A chunked upload is created, receives chunks at increasing offsets (a client that lost its
connection asks for the current size and continues), and is completed into a job. Sizes are
capped by ``ingest.upload_max_mb``; nothing is ever held in memory whole.

Each chunk is staged in a file of its own, then claimed with a compare-and-set on the
recorded size (``size = offset + n WHERE size = offset``): of two requests at the same offset
exactly one wins and writes its bytes at that offset; the other gets 409. Uploads left
unfinished longer than ``ingest.upload_expiry_hours`` are deleted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import anyio
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from datalibrary.auth.permissions import Permission, Principal, require
from datalibrary.config import Settings
from datalibrary.db import Database
from datalibrary.db.base import utcnow
from datalibrary.errors import Conflict, NotFound, TooLarge
from datalibrary.ingest import landing
from datalibrary.ingest.jobs import submit_file
from datalibrary.ingest.models import IngestJob, Upload


def _path(settings: Settings, upload_id: str) -> Path:
    return landing.ingest_dir(settings, "uploads") / upload_id


async def _append(settings: Settings, path: Path, stream: AsyncIterator[bytes], already: int) -> int:
    limit = settings.ingest.upload_max_mb << 20
    size = already
    with open(path, "ab") as handle:
        async for chunk in stream:
            size += len(chunk)
            if size > limit:
                handle.truncate(already)
                raise TooLarge(f"the upload exceeds the limit of {settings.ingest.upload_max_mb} MB")
            await anyio.to_thread.run_sync(handle.write, chunk)  # keep the event loop free
    return size


def start_upload(session: Session, principal: Principal, settings: Settings, filename: str) -> Upload:
    require(principal, Permission.INGEST_RUN)
    upload = Upload(id=uuid.uuid4().hex, filename=landing.safe_filename(filename), created_by=principal.name)
    _path(settings, upload.id).touch(mode=0o600)
    session.add(upload)
    session.flush()
    return upload


def get_upload(session: Session, principal: Principal, upload_id: str) -> Upload:
    require(principal, Permission.INGEST_RUN)
    upload = session.get(Upload, upload_id)
    if upload is None or (upload.created_by != principal.name and not principal.is_admin):
        raise NotFound(f"no upload {upload_id!r}")
    return upload


async def add_chunk(
    session: Session,
    principal: Principal,
    settings: Settings,
    upload_id: str,
    offset: int,
    stream: AsyncIterator[bytes],
) -> Upload:
    upload = get_upload(session, principal, upload_id)
    if upload.completed_job_id:
        raise Conflict("this upload is complete; start a new one")
    if offset != upload.size_bytes:
        raise Conflict(
            f"chunk offset {offset} does not continue the upload (it holds {upload.size_bytes} bytes)",
            size_bytes=upload.size_bytes,
        )
    main = _path(settings, upload_id)
    staged = main.with_name(f"{upload_id}.{uuid.uuid4().hex}.chunk")
    os.close(os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        end = await _append(settings, staged, stream, offset)
        with Session(session.get_bind()) as own:  # the claim commits at once, visible to rivals
            won = own.execute(
                update(Upload)
                .where(Upload.id == upload_id, Upload.size_bytes == offset, Upload.completed_job_id.is_(None))
                .values(size_bytes=end)
            ).rowcount  # type: ignore[attr-defined]
            own.commit()
        if won != 1:
            raise Conflict(
                f"another chunk at offset {offset} was stored first; ask for the upload's size and continue",
                size_bytes=upload.size_bytes,
            )
        await anyio.to_thread.run_sync(_write_at, main, staged, offset)
    finally:
        staged.unlink(missing_ok=True)
    set_committed_value(upload, "size_bytes", end)
    return upload


def _write_at(main: Path, staged: Path, offset: int) -> None:
    """The claimed chunk's bytes at their offset (never an append: order does not matter)."""
    with open(main, "r+b") as out, open(staged, "rb") as source:
        out.seek(offset)
        shutil.copyfileobj(source, out, 1 << 20)
        out.flush()
        os.fsync(out.fileno())


def expire_uploads(settings: Settings, db: Database) -> list[str]:
    """Delete chunked uploads nobody completed within ``ingest.upload_expiry_hours``."""
    cutoff = utcnow() - timedelta(hours=settings.ingest.upload_expiry_hours)
    expired = []
    with db.session() as session:
        for upload in session.scalars(
            select(Upload).where(Upload.completed_job_id.is_(None), Upload.created_at < cutoff)
        ):
            path = _path(settings, upload.id)
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime > cutoff.timestamp():
                    continue  # still receiving chunks
            path.unlink(missing_ok=True)
            session.delete(upload)
            expired.append(upload.id)
    return expired


def _define_path(
    session: Session, principal: Principal, settings: Settings, define_upload: str | None
) -> Path | None:
    """A define.xml sent as an upload of its own (not completed: it can serve several files)."""
    if not define_upload:
        return None
    upload = get_upload(session, principal, define_upload)
    if upload.completed_job_id:
        raise Conflict(f"upload {define_upload} became a job; upload the define.xml on its own")
    return _path(settings, upload.id)


def complete_upload(
    session: Session,
    principal: Principal,
    settings: Settings,
    upload_id: str,
    *,
    table: str,
    policy: str,
    mode: str = "append",
    format: str | None = None,
    define_upload: str | None = None,
) -> IngestJob:
    upload = get_upload(session, principal, upload_id)
    if upload.completed_job_id:
        raise Conflict(f"this upload already became job {upload.completed_job_id}")
    define = _define_path(session, principal, settings, define_upload)
    job = submit_file(
        session,
        principal,
        settings,
        _path(settings, upload_id),
        table=table,
        policy=policy,
        mode=mode,
        display_name=upload.filename,
        via="upload",
        format=format,
        move=True,
        define=define,
    )
    upload.completed_job_id = job.id
    return job


async def upload_file(
    session: Session,
    principal: Principal,
    settings: Settings,
    stream: AsyncIterator[bytes],
    *,
    filename: str,
    table: str,
    policy: str,
    mode: str = "append",
    format: str | None = None,
    define_upload: str | None = None,
) -> IngestJob:
    """One-request upload: stream the body to disk, then queue the job."""
    upload = start_upload(session, principal, settings, filename)
    path = _path(settings, upload.id)
    try:
        upload.size_bytes = await _append(settings, path, stream, 0)
        return complete_upload(
            session,
            principal,
            settings,
            upload.id,
            table=table,
            policy=policy,
            mode=mode,
            format=format,
            define_upload=define_upload,
        )
    finally:
        path.unlink(missing_ok=True)
