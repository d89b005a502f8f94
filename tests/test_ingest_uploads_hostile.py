"""Chunked uploads and quarantine under attack (issue 22): one winner per offset, abandoned
uploads expire, quarantined files are encrypted at rest and expire by policy."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import timedelta
from pathlib import Path

import pytest

from datalibrary.db.base import utcnow
from datalibrary.errors import Conflict
from datalibrary.ingest import quarantine, sealed, uploads
from datalibrary.ingest.models import IngestJob, Upload
from tests.helpers import Platform
from tests.lake_helpers import SYSTEM, add_policy, ingest


async def _slow(data: bytes, pause: float):  # type: ignore[no-untyped-def]
    for start in range(0, len(data), 4096):
        await asyncio.sleep(pause)
        yield data[start : start + 4096]


def test_two_chunks_at_the_same_offset_one_wins(sqlite_platform: Platform) -> None:
    platform = sqlite_platform
    with platform.db.session() as session:
        upload_id = uploads.start_upload(session, SYSTEM, platform.settings, "a.csv").id
    first, second = b"A" * 40_000, b"B" * 40_000

    async def put(data: bytes) -> object:
        with platform.db.session() as session:
            try:
                await uploads.add_chunk(session, SYSTEM, platform.settings, upload_id, 0, _slow(data, 0.001))
                return "ok"
            except Conflict as exc:
                return exc

    async def both() -> list[object]:
        return list(await asyncio.gather(put(first), put(second)))

    results = asyncio.run(both())
    assert sorted(r == "ok" for r in results) == [False, True], results
    path = platform.settings.home / "ingest" / "uploads" / upload_id
    with platform.db.session() as session:
        recorded = session.get(Upload, upload_id).size_bytes
    parts = sorted(path.iterdir())
    assert [p.name for p in parts] == [f"{0:020d}.dlq"], "one part; no staged chunk is left"
    assert first[:64] not in parts[0].read_bytes() and second[:64] not in parts[0].read_bytes()  # sealed
    data = b"".join(sealed.iter_plain(platform.settings, parts[0]))
    assert recorded == len(data) == 40_000 and data in (first, second)


def test_abandoned_uploads_expire(sqlite_platform: Platform) -> None:
    platform = sqlite_platform
    with platform.db.session() as session:
        old = uploads.start_upload(session, SYSTEM, platform.settings, "old.csv")
        old.created_at = utcnow() - timedelta(hours=100)
        fresh = uploads.start_upload(session, SYSTEM, platform.settings, "new.csv").id
        old_id = old.id
    path = platform.settings.home / "ingest" / "uploads" / old_id
    stale = time.time() - 100 * 3600
    os.utime(path, (stale, stale))
    assert uploads.expire_uploads(platform.settings, platform.db) == [old_id]
    assert not path.exists()
    with platform.db.session() as session:
        assert session.get(Upload, old_id) is None and session.get(Upload, fresh) is not None


def test_quarantine_is_encrypted_at_rest_and_expires(sqlite_platform: Platform, tmp_path: Path) -> None:
    platform = sqlite_platform
    add_policy(platform)
    bad = tmp_path / "bad.json"
    secret = "SSN-123-45-6789-canary"
    bad.write_text('[{"name": "' + secret + '"}, {"name": ')
    job_id, state = ingest(platform, bad, "h.q")
    assert state == "quarantined"
    with platform.db.session() as session:
        job = session.get(IngestJob, job_id)
        stored = Path(job.raw_path)
    assert stored.exists() and secret.encode() not in stored.read_bytes()
    assert b"".join(quarantine.iter_plain(platform.settings, stored)) == bad.read_bytes()
    truncated = tmp_path / "cut.dlq"
    truncated.write_bytes(stored.read_bytes()[:-5])
    with pytest.raises(Exception):  # noqa: B017 - any authentication failure will do
        b"".join(quarantine.iter_plain(platform.settings, truncated))
    with platform.db.session() as session:
        session.get(IngestJob, job_id).finished_at = utcnow() - timedelta(days=400)
    assert quarantine.apply_retention(platform.settings, platform.db) == [job_id]
    assert not stored.exists()
    with platform.db.session() as session:
        job = session.get(IngestJob, job_id)
        assert job.raw_path is None and job.reason["code"] and job.sha256
