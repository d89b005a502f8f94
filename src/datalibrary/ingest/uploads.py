"""REST uploads, streamed to disk: one request for small files, chunks for large ones.

A chunked upload is created, receives chunks at increasing offsets (a client that lost its
connection asks for the current size and continues), and is completed into a job. Sizes are
capped by ``ingest.upload_max_mb``; nothing is ever held in memory whole.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
from sqlalchemy.orm import Session

from datalibrary.auth.permissions import Permission, Principal, require
from datalibrary.config import Settings
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
    upload.size_bytes = await _append(settings, _path(settings, upload_id), stream, upload.size_bytes)
    return upload


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
