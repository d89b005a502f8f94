"""REST uploads, streamed to disk: one request for small files, chunks for large ones.

A chunked upload is created, receives chunks at increasing offsets (a client that lost its
connection asks for the current size and continues), and is completed into a job. Sizes are
capped by ``ingest.upload_max_mb``; nothing is ever held in memory whole.

Each chunk is staged, sealed (the landing area's encryption: an upload in progress is raw,
identified data too), in a file of its own, then claimed with a compare-and-set on the
recorded size (``size = offset + n WHERE size = offset``): of two requests at the same offset
exactly one wins and its sealed chunk becomes the part at that offset; the other gets 409.
Completing the upload reads the parts in order through an unnamed plain view into the job's
sealed raw file. Uploads left unfinished longer than ``ingest.upload_expiry_hours`` are
deleted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
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
from datalibrary.ingest import landing, sealed
from datalibrary.ingest.models import IngestJob, Upload
from datalibrary.ingest.submit import submit_file


def _path(settings: Settings, upload_id: str) -> Path:
    """The upload's directory: one sealed part per claimed chunk, named by its offset."""
    return landing.ingest_dir(settings, "uploads") / upload_id


def _parts(directory: Path) -> list[Path]:
    """The claimed parts in offset order (staged ones are not named by a number)."""
    return sorted(p for p in directory.glob(f"*{sealed.SUFFIX}") if p.name[:20].isdigit())


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:  # an upload an older version stored as one plain file
        path.unlink(missing_ok=True)


async def _append(settings: Settings, path: Path, stream: AsyncIterator[bytes], already: int) -> int:
    """Seal ``stream`` into ``path``; return the upload's size after it."""
    limit = settings.ingest.upload_max_mb << 20
    size = already
    writer = await anyio.to_thread.run_sync(sealed.SealedWriter, settings, path)
    try:
        async for chunk in stream:
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"the upload exceeds the limit of {settings.ingest.upload_max_mb} MB")
            await anyio.to_thread.run_sync(writer.write, chunk)  # keep the event loop free
        await anyio.to_thread.run_sync(writer.close)
    except BaseException:
        writer.abort()
        raise
    return size


def start_upload(session: Session, principal: Principal, settings: Settings, filename: str) -> Upload:
    require(principal, Permission.INGEST_RUN)
    upload = Upload(id=uuid.uuid4().hex, filename=landing.safe_filename(filename), created_by=principal.name)
    _path(settings, upload.id).mkdir(mode=0o700)
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
    directory = _path(settings, upload_id)
    if not directory.is_dir():
        raise Conflict(f"upload {upload_id} was started by an older version; start it again")
    staged = directory / f"staged-{uuid.uuid4().hex}{sealed.SUFFIX}"
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
        if end > offset:  # the part at this offset (never an append: order does not matter)
            os.replace(staged, directory / f"{offset:020d}{sealed.SUFFIX}")
    finally:
        staged.unlink(missing_ok=True)
    set_committed_value(upload, "size_bytes", end)
    return upload


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
            _remove(path)
            session.delete(upload)
            expired.append(upload.id)
    return expired


@contextlib.contextmanager
def _plain(settings: Settings, upload: Upload) -> Iterator[Path]:
    """The upload's plain bytes while the block runs (an unnamed view, see ``landing``)."""
    with landing.joined_view(settings, _parts(_path(settings, upload.id)), upload.filename) as view:
        if view.stat().st_size != upload.size_bytes:
            raise Conflict(
                f"upload {upload.id} holds {view.stat().st_size} of {upload.size_bytes} bytes; send it again"
            )
        yield view


def _define_upload(session: Session, principal: Principal, define_upload: str | None) -> Upload | None:
    """A define.xml sent as an upload of its own (not completed: it can serve several files)."""
    if not define_upload:
        return None
    upload = get_upload(session, principal, define_upload)
    if upload.completed_job_id:
        raise Conflict(f"upload {define_upload} became a job; upload the define.xml on its own")
    return upload


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
    define = _define_upload(session, principal, define_upload)
    with contextlib.ExitStack() as stack:
        plain = stack.enter_context(_plain(settings, upload))
        define_path = stack.enter_context(_plain(settings, define)) if define is not None else None
        job = submit_file(
            session,
            principal,
            settings,
            plain,
            table=table,
            policy=policy,
            mode=mode,
            display_name=upload.filename,
            via="upload",
            format=format,
            define=define_path,
        )
    upload.completed_job_id = job.id
    _remove(_path(settings, upload_id))
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
        upload.size_bytes = await _append(settings, path / f"{0:020d}{sealed.SUFFIX}", stream, 0)
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
        _remove(path)
