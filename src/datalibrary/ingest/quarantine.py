"""Quarantine: the one place that reads and writes quarantined files.

A quarantined file is raw, identified data that failed validation, so it is kept encrypted
at rest: AES-256-GCM in 1 MiB chunks (each chunk authenticated with its index and a last-chunk
flag, so chunks cannot be reordered, dropped or cut off) under a key derived with HKDF from
the master key (the key never leaves memory; the lake and logs never see it). Reading back
(a retry, a steward's download) goes through ``open_plain`` / ``iter_plain``; ``delete`` and
``apply_retention`` remove the files (the job and its reason stay, for the record).
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select

from datalibrary.audit.service import record
from datalibrary.config import Settings
from datalibrary.db import Database
from datalibrary.db.base import utcnow
from datalibrary.ingest.landing import CHUNK, ingest_dir
from datalibrary.ingest.models import IngestJob

log = logging.getLogger(__name__)
MAGIC = b"DLQ1"
SUFFIX = ".dlq"
_HEADER = struct.Struct(">4s8s")  # magic, random file id


def _key(settings: Settings) -> bytes:
    from datalibrary.privacy.keys import load_master_key

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"datalibrary/quarantine/v1").derive(
        load_master_key(settings)
    )


def _nonce(file_id: bytes, index: int, last: bool) -> tuple[bytes, bytes]:
    return file_id + struct.pack(">I", index), struct.pack(">QB", index, 1 if last else 0)


def store(settings: Settings, job_id: str, raw: Path | None) -> Path | None:
    """Encrypt the job's raw file into quarantine and remove the plain copy; return the path."""
    if raw is None or not raw.exists():
        return None
    if raw.name.endswith(SUFFIX):  # already quarantined (a retry that failed again)
        return raw
    directory = ingest_dir(settings, "quarantine") / job_id
    directory.mkdir(mode=0o700, exist_ok=True)
    target = directory / (raw.name + SUFFIX)
    cipher = AESGCM(_key(settings))
    file_id = os.urandom(8)
    partial = target.with_suffix(".part")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as out, raw.open("rb") as source:
        out.write(_HEADER.pack(MAGIC, file_id))
        index = 0
        chunk = source.read(CHUNK)
        while True:
            following = source.read(CHUNK) if chunk else b""
            last = not following
            nonce, extra = _nonce(file_id, index, last)
            sealed = cipher.encrypt(nonce, chunk, extra)
            out.write(struct.pack(">I", len(sealed)) + sealed)
            if last:
                break
            chunk, index = following, index + 1
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, target)
    raw.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        raw.parent.rmdir()
    return target


def iter_plain(settings: Settings, path: Path) -> Iterator[bytes]:
    """The quarantined file's plain bytes, chunk by chunk, each authenticated."""
    cipher = AESGCM(_key(settings))
    with path.open("rb") as handle:
        magic, file_id = _HEADER.unpack(handle.read(_HEADER.size))
        if magic != MAGIC:
            raise ValueError(f"{path.name} is not a quarantined file")
        index = 0
        while True:
            size_bytes = handle.read(4)
            if len(size_bytes) < 4:
                raise ValueError(f"{path.name} is cut short")
            sealed = handle.read(struct.unpack(">I", size_bytes)[0])
            last = handle.peek(1)[:1] == b"" if hasattr(handle, "peek") else False
            nonce, extra = _nonce(file_id, index, last)
            yield cipher.decrypt(nonce, sealed, extra)
            if last:
                return
            index += 1


def restore(settings: Settings, job: IngestJob) -> Path:
    """Decrypt a quarantined file back into the job's raw area (a retry); return its path."""
    source = Path(job.raw_path or "")
    directory = ingest_dir(settings, "raw") / job.id
    directory.mkdir(mode=0o700, exist_ok=True)
    target = directory / source.name.removesuffix(SUFFIX)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as out:
        for chunk in iter_plain(settings, source):
            out.write(chunk)
    delete_file(source)
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
