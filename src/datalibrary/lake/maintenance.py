"""Maintenance: compaction of small files, snapshot expiry that deletes the files no snapshot
references any more, and orphan-file cleanup. Each table is maintained under an exclusive
lease, so it never runs while a commit to that table does."""

from __future__ import annotations

import logging
import shutil
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow.parquet as pq
from sqlalchemy import select
from sqlalchemy.orm import Session

from datalibrary.audit.service import record
from datalibrary.auth.permissions import Permission, Principal, require
from datalibrary.db.base import utcnow
from datalibrary.ingest.models import IngestJob
from datalibrary.lake import locks
from datalibrary.lake.catalog import Lake, TableName
from datalibrary.lake.files import metadata_files, reachable_files
from datalibrary.lake.models import MaintenanceRun
from datalibrary.lake.tables import FileWriter, commit_files, current_data_files, file_schema

log = logging.getLogger(__name__)


def compact(lake: Lake, name: TableName, *, actor: str) -> dict[str, Any]:
    """Rewrite the table's small data files into larger ones (one snapshot)."""
    table = lake.load(name)
    small_limit = lake.settings.lake.small_file_mb << 20
    small = [f for f in current_data_files(table) if f.file_size_in_bytes < small_limit]
    if len(small) < 2:
        return {"files_compacted": 0, "files_written": 0}
    schema = file_schema(table)
    writer = FileWriter(
        lake, table, f"compact-{uuid.uuid4().hex[:12]}", schema, lake.settings.lake.target_file_mb << 20
    )
    try:
        for data_file in small:
            with lake.storage.fs.open_input_file(lake.storage.path(data_file.file_path)) as handle:
                parquet = pq.ParquetFile(handle)
                for batch in parquet.iter_batches(batch_size=65_536):
                    writer.write(batch.select(schema.names).cast(schema) if batch.schema != schema else batch)
        written = writer.close()
        paths = {f.file_path for f in small}
        result = commit_files(
            lake,
            name,
            add=written,
            remove=lambda t: [f for f in current_data_files(t) if f.file_path in paths],
            properties={"operation": "compaction", "actor": actor},
            exclusive_held=True,
        )
    except BaseException:
        writer.abort()
        raise
    return {"files_compacted": len(small), "files_written": len(written), "snapshot_id": result.snapshot_id}


def expire_and_delete(lake: Lake, name: TableName, older_than: datetime) -> dict[str, Any]:
    """Expire snapshots older than ``older_than`` (never the current one) and delete the files
    only they referenced, plus metadata files the log no longer names."""
    table = lake.load(name)
    current = table.current_snapshot()
    before = reachable_files(table)
    cutoff = int(older_than.timestamp() * 1000)
    expired = [
        s.snapshot_id
        for s in table.metadata.snapshots
        if s.timestamp_ms < cutoff and (current is None or s.snapshot_id != current.snapshot_id)
    ]
    if expired:
        table.maintenance.expire_snapshots().by_ids(expired).commit()
        table = lake.load(name)
    after = reachable_files(table)
    deleted = [uri for uri in sorted(before - after) if lake.storage.delete(uri)]
    return {"snapshots_expired": len(expired), "files_deleted": len(deleted), "deleted": deleted}


def remove_orphans(lake: Lake, name: TableName, session: Session, grace: timedelta) -> dict[str, Any]:
    """Delete files under the table's location that no snapshot or metadata log references,
    older than ``grace`` and not written by a job still queued or running."""
    table = lake.load(name)
    keep = reachable_files(table) | metadata_files(table)
    active = set(
        session.scalars(
            select(IngestJob.id).where(
                IngestJob.namespace == name.namespace,
                IngestJob.table_name == name.name,
                IngestJob.state.in_(("queued", "running")),
            )
        )
    )
    protected = tuple(f"{table.location()}/data/job-{job_id}/" for job_id in active)
    limit = datetime.now(UTC) - grace
    deleted = []
    for item in lake.storage.list(table.location()):
        if item.uri in keep or item.uri.startswith(protected):
            continue
        if item.modified is not None and item.modified.astimezone(UTC) > limit:
            continue
        if lake.storage.delete(item.uri):
            deleted.append(item.uri)
    return {"orphans_deleted": len(deleted), "orphans": deleted}


def remove_stale_raw_files(lake: Lake, session: Session, grace: timedelta) -> int:
    """Raw copies left by a process killed while landing a file (no job row was committed),
    and the dangling links of decrypted views whose reader was killed (they hold no data)."""
    from datalibrary.ingest.landing import ingest_dir

    limit = datetime.now(UTC).timestamp() - grace.total_seconds()
    removed = 0
    for directory in ingest_dir(lake.settings, "raw").iterdir():
        if not directory.is_dir() or directory.stat().st_mtime > limit:
            continue
        if session.get(IngestJob, directory.name) is None:
            for item in directory.iterdir():
                item.unlink()
            directory.rmdir()
            removed += 1
    for holder in ingest_dir(lake.settings, "work").iterdir():  # links left by killed readers
        if holder.is_dir() and holder.stat().st_mtime <= limit:
            shutil.rmtree(holder, ignore_errors=True)
    return removed


def maintain_table(
    lake: Lake, session: Session, name: TableName, *, actor: str, retention: timedelta, grace: timedelta
) -> dict[str, Any]:
    settings = lake.settings.lake
    with locks.lease(
        lake.catalog.engine,
        f"table:{name}",
        locks.EXCLUSIVE,
        holder=locks.holder_name(f"maintain:{actor}"),
        ttl=max(settings.lock_timeout_seconds * 4, 600),
        timeout=settings.lock_timeout_seconds,
    ):
        report: dict[str, Any] = {"table": str(name)}
        report.update(compact(lake, name, actor=actor))
        expired = expire_and_delete(lake, name, datetime.now(UTC) - retention)
        report.update({k: v for k, v in expired.items() if k != "deleted"})
        orphans = remove_orphans(lake, name, session, grace)
        report["orphans_deleted"] = orphans["orphans_deleted"]
    return report


def maintain(
    session: Session,
    principal: Principal,
    lake: Lake,
    *,
    table: str | None = None,
    retention_hours: float | None = None,
    grace_minutes: float | None = None,
) -> dict[str, Any]:
    """Maintain every table (or one): compaction, expiry with file deletion, orphan cleanup."""
    require(principal, Permission.LAKE_MAINTAIN)
    from datalibrary.lake.catalog import parse_table_name

    settings = lake.settings.lake
    retention = timedelta(
        hours=settings.snapshot_retention_hours if retention_hours is None else retention_hours
    )
    grace = timedelta(minutes=settings.orphan_grace_minutes if grace_minutes is None else grace_minutes)
    names = [parse_table_name(table)] if table else [n for ns in lake.namespaces() for n in lake.tables(ns)]
    if table:
        lake.load(names[0])
    # The run row is written at the end: an open write transaction here would block the
    # lease rows (SQLite has one writer) that each table's maintenance takes.
    started = utcnow()
    tables = []
    for name in names:
        try:
            tables.append(
                maintain_table(lake, session, name, actor=principal.name, retention=retention, grace=grace)
            )
        except Exception as exc:  # one broken table must not stop the others
            log.exception("maintenance of %s failed", name)
            tables.append({"table": str(name), "error": f"{type(exc).__name__}: {exc}"[:300]})
    stale = remove_stale_raw_files(lake, session, grace) if table is None else 0
    report = {
        "tables": tables,
        "stale_raw_files_deleted": stale,
        "files_compacted": sum(t.get("files_compacted", 0) for t in tables),
        "snapshots_expired": sum(t.get("snapshots_expired", 0) for t in tables),
        "files_deleted": sum(t.get("files_deleted", 0) for t in tables),
        "orphans_deleted": sum(t.get("orphans_deleted", 0) for t in tables),
        "errors": sum(1 for t in tables if "error" in t),
    }
    outcome = "success" if not report["errors"] else "failure"
    run = MaintenanceRun(
        kind="maintain",
        actor=principal.name,
        started_at=started,
        finished_at=utcnow(),
        outcome=outcome,
        report=report,
    )
    session.add(run)
    session.flush()
    report["run"] = run.id
    record(
        session,
        actor=principal,
        action="lake.maintain",
        target=f"table:{table}" if table else "lake:*",
        outcome=outcome,
        details={k: v for k, v in report.items() if k != "tables"},
    )
    return report


def last_run(session: Session, kind: str = "maintain") -> MaintenanceRun | None:
    return session.scalars(
        select(MaintenanceRun)
        .where(MaintenanceRun.kind == kind)
        .order_by(MaintenanceRun.started_at.desc())
        .limit(1)
    ).first()
