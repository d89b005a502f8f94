"""The landing area is encrypted at rest like quarantine (issue 22): a planted plaintext marker
is never in the bytes on disk while a delivery waits, moves to quarantine or back for a retry,
or is being read; ingestion, quarantine and retry still work from the sealed files."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from datalibrary.ingest import landing, sealed
from datalibrary.ingest.models import IngestJob
from datalibrary.ingest.submit import retry_job, submit_file
from datalibrary.ingest.uploads import add_chunk, complete_upload, start_upload
from datalibrary.ingest.watch import LandingWatcher
from datalibrary.ingest.worker import run_one
from tests.helpers import Platform
from tests.lake_helpers import SYSTEM, add_policy, read_table

MARKER = "CANARY-PLAIN-7f3a9c-SMITH-JOHN"


def _csv(marker: str = MARKER) -> bytes:
    return f"ID,NOTE\n1,{marker}\n2,other\n".encode()


def _files_with(home: Path, needle: bytes) -> list[str]:
    """Every regular file under ``home`` whose bytes hold ``needle`` (links are not followed)."""
    found = []
    for directory, _, names in os.walk(home):
        for name in names:
            path = Path(directory) / name
            if path.is_symlink() or not path.is_file():
                continue
            if needle in path.read_bytes():
                found.append(str(path.relative_to(home)))
    return found


def _raw_path(platform: Platform, job_id: str) -> Path:
    with platform.db.session() as session:
        return Path(session.get(IngestJob, job_id).raw_path)


def _state(platform: Platform, job_id: str) -> str:
    with platform.db.session() as session:
        return session.get(IngestJob, job_id).state


def test_every_way_in_waits_sealed_and_ingests(sqlite_platform: Platform, tmp_path: Path) -> None:
    platform = sqlite_platform
    home = platform.settings.home
    add_policy(platform)
    needle = MARKER.encode()
    given = tmp_path / "given.csv"
    given.write_bytes(_csv())
    with platform.db.session() as session:
        by_cli = submit_file(
            session, SYSTEM, platform.settings, given, table="rest.cli", policy="keep-all"
        ).id
        upload = start_upload(session, SYSTEM, platform.settings, "up.csv").id

    data = _csv()
    half = len(data) // 2

    async def first_half():  # type: ignore[no-untyped-def]
        yield data[:half]

    async def second_half():  # type: ignore[no-untyped-def]
        yield data[half:]

    with platform.db.session() as session:
        asyncio.run(add_chunk(session, SYSTEM, platform.settings, upload, 0, first_half()))
    with platform.db.session() as session:
        asyncio.run(add_chunk(session, SYSTEM, platform.settings, upload, half, second_half()))
    # an upload in progress is raw data too: its chunks wait sealed
    assert _files_with(home, needle) == [] and _files_with(home, data[:40]) == []
    with platform.db.session() as session:
        by_upload = complete_upload(
            session, SYSTEM, platform.settings, upload, table="rest.up", policy="keep-all"
        ).id
    folder = home / "landing" / "rest" / "dropped"
    folder.mkdir(parents=True)
    (folder / "POLICY").write_text("keep-all\n")
    dropped = folder / "drop.csv"
    dropped.write_bytes(_csv())
    old = time.time() - 60
    os.utime(dropped, (old, old))
    watcher = LandingWatcher(platform.settings, platform.db)
    watcher.scan()
    (by_landing,) = watcher.scan()

    assert _files_with(home, needle) == [], "no waiting delivery is stored in plain"
    for job_id in (by_cli, by_upload, by_landing):
        raw = _raw_path(platform, job_id)
        assert raw.parent.parent == home / "ingest" / "raw" and sealed.is_sealed(raw)
        assert raw.read_bytes()[:4] == sealed.MAGIC
        assert b"".join(sealed.iter_plain(platform.settings, raw)) == _csv(), "sealed, not altered"
    assert not dropped.exists() and given.exists(), "moved from the landing folder, copied from the CLI"

    for job_id, table in ((by_cli, "rest.cli"), (by_upload, "rest.up"), (by_landing, "rest.dropped")):
        assert run_one(platform.settings, platform.db, "w", job_id) == (job_id, "succeeded")
        assert MARKER in read_table(platform, table).column("NOTE").to_pylist()
        assert not _raw_path(platform, job_id).exists(), "the sealed copy is deleted after the commit"
    assert list((home / "ingest" / "work").iterdir()) == [], "no decrypted view is left"


def test_quarantine_and_retry_move_sealed_bytes_only(sqlite_platform: Platform, tmp_path: Path) -> None:
    platform = sqlite_platform
    home = platform.settings.home
    add_policy(platform)
    add_policy(platform, "name: only-id\nversion: 1\ncolumns:\n  ID: keep\n")
    source = tmp_path / "q.csv"
    source.write_bytes(_csv())
    with platform.db.session() as session:
        job_id = submit_file(session, SYSTEM, platform.settings, source, table="rest.q", policy="only-id").id
    source.unlink()
    landed = _raw_path(platform, job_id)
    assert run_one(platform.settings, platform.db, "w", job_id) == (job_id, "quarantined")
    parked = _raw_path(platform, job_id)
    assert parked.parent.parent == home / "ingest" / "quarantine" and not landed.exists()
    assert _files_with(home, MARKER.encode()) == [], "quarantine holds sealed bytes only"

    with platform.db.session() as session:
        job = session.get(IngestJob, job_id)
        job.policy_name = "keep-all"  # the steward's fix: a policy that covers NOTE
        retry_job(session, SYSTEM, job_id, platform.settings)
    back = _raw_path(platform, job_id)
    assert back.parent.parent == home / "ingest" / "raw" and sealed.is_sealed(back)
    assert _files_with(home, MARKER.encode()) == [], "a retried file waits sealed again"
    assert run_one(platform.settings, platform.db, "w", job_id) == (job_id, "succeeded")
    assert MARKER in read_table(platform, "rest.q").column("NOTE").to_pylist()


def test_the_reading_view_has_no_name_on_disk(sqlite_platform: Platform, tmp_path: Path) -> None:
    platform = sqlite_platform
    home = platform.settings.home
    source = tmp_path / "v.csv"
    source.write_bytes(_csv() * 5000)  # several sealed chunks
    raw, sha, size = landing.land(platform.settings, "view1", source, "v.csv")
    assert size == len(_csv()) * 5000
    with landing.plain_view(platform.settings, raw) as view:
        assert view.name == "v.csv", "readers still see the delivered name and suffix"
        assert view.read_bytes() == source.read_bytes()
        assert _files_with(home, MARKER.encode()) == [], "the decrypted copy has no name"
    assert list((home / "ingest" / "work").iterdir()) == []


def test_a_tampered_waiting_file_is_not_read(sqlite_platform: Platform, tmp_path: Path) -> None:
    platform = sqlite_platform
    add_policy(platform)
    source = tmp_path / "t.csv"
    source.write_bytes(_csv())
    with platform.db.session() as session:
        job_id = submit_file(session, SYSTEM, platform.settings, source, table="rest.t", policy="keep-all").id
    raw = _raw_path(platform, job_id)
    data = bytearray(raw.read_bytes())
    data[-3] ^= 0x01
    raw.write_bytes(bytes(data))
    _, state = run_one(platform.settings, platform.db, "w", job_id)
    assert state == "failed"
    with platform.db.session() as session:
        assert session.get(IngestJob, job_id).reason["code"] == "internal"


def test_members_left_by_a_killed_extraction_leave_with_the_file(
    sqlite_platform: Platform, tmp_path: Path
) -> None:
    from datalibrary.ingest import quarantine

    platform = sqlite_platform
    source = tmp_path / "a.zip"
    source.write_bytes(b"PK\x05\x06" + b"\0" * 18)
    raw, _, _ = landing.land(platform.settings, "killed1", source, "a.zip")
    scratch = raw.parent / "extract"
    scratch.mkdir()
    (scratch / "member.csv").write_bytes(_csv())  # a worker killed mid-extraction left it
    moved = quarantine.store(platform.settings, "killed1", raw)
    assert moved is not None and sealed.is_sealed(moved)
    assert not raw.parent.exists() and _files_with(platform.settings.home, MARKER.encode()) == []
