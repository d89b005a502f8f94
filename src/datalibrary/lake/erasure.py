"""Erasure of one subject from a namespace (consent withdrawal, GDPR article 17).

Every table of the namespace is rewritten without the subject's rows (one snapshot per
table), then every older snapshot is expired and every file no longer referenced is deleted,
including earlier metadata files. The report then proves the result: it decodes every file
left under each table (Parquet values and statistics, decompressed Avro manifests, metadata
JSON) and checks that none contains the subject's identifier.

Deliveries still waiting for ingestion are searched too (their sealed raw files): one that
mentions the subject would bring it back, so it is quarantined with the reason and its file
deleted (the sender is asked for a delivery without the subject). Erasure refuses to run
while an ingestion job of the namespace is running: that job could commit the subject after
the check.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from datalibrary.audit.service import record
from datalibrary.auth.permissions import Permission, Principal, require
from datalibrary.db.base import utcnow
from datalibrary.errors import Conflict, InvalidInput, NotFound
from datalibrary.ingest import quarantine
from datalibrary.ingest.models import IngestJob
from datalibrary.lake import copies, locks
from datalibrary.lake.catalog import Lake, TableName, check_name
from datalibrary.lake.files import avro_payload, contains_token, metadata_files
from datalibrary.lake.maintenance import expire_and_delete, remove_orphans
from datalibrary.lake.models import Dataset, MaintenanceRun
from datalibrary.lake.tables import FileWriter, commit_files, current_data_files, file_schema
from datalibrary.lineage import events as trace


def _matches(column: pa.ChunkedArray | pa.Array, subject: str) -> pa.Array:
    """Rows of ``column`` equal to ``subject`` (compared as text)."""
    as_text = column if pa.types.is_string(column.type) else pc.cast(column, pa.string())
    return pc.fill_null(pc.equal(as_text, subject), False)


def _rewrite_without(
    lake: Lake, name: TableName, column: str | None, subject: str, actor: str, request: str
) -> dict[str, Any]:
    """Rewrite the data files holding the subject without its rows (one snapshot)."""
    table = lake.load(name)
    schema = file_schema(table)
    if column is None:
        return {"rows_removed": 0, "files_rewritten": 0}
    if column not in schema.names:
        raise InvalidInput(f"table {name} has no subject column {column!r}")
    writer = FileWriter(lake, table, f"erase-{request}", schema, lake.settings.lake.target_file_mb << 20)
    dirty: set[str] = set()
    removed_rows = 0
    try:
        for data_file in current_data_files(table):
            with lake.storage.fs.open_input_file(lake.storage.path(data_file.file_path)) as handle:
                data = pq.read_table(handle, schema=schema)
            hits = _matches(data.column(column), subject)
            count = pc.sum(hits).as_py() or 0
            if count:
                removed_rows += count
                dirty.add(data_file.file_path)
                for batch in data.filter(pc.invert(hits)).to_batches(max_chunksize=65_536):
                    writer.write(batch)
        written = writer.close()
        if dirty:
            commit_files(
                lake,
                name,
                add=written,
                remove=lambda t: [f for f in current_data_files(t) if f.file_path in dirty],
                properties={"operation": "erasure", "actor": actor, "erasure-request": request},
                exclusive_held=True,
            )
    except BaseException:
        writer.abort()
        raise
    return {"rows_removed": removed_rows, "files_rewritten": len(dirty)}


def _fresh_manifests(lake: Lake, name: TableName, actor: str, request: str) -> int | None:
    """Replace every live data file by a copy in one snapshot. Manifests keep entries of deleted
    files with their column bounds (which may name the subject); after this snapshot, and the
    expiry of every earlier one, the table's manifests list only clean files."""
    table = lake.load(name)
    live = current_data_files(table)
    if not live:
        return None
    directory = f"{table.location()}/data/erase-{request}-copy"
    copies = []
    try:
        for index, data_file in enumerate(live):
            copy = f"{directory}/part-{index:05d}-{data_file.file_path.rsplit('/', 1)[-1]}"
            lake.storage.copy(data_file.file_path, copy)
            copies.append(copy)
        paths = {f.file_path for f in live}
        result = commit_files(
            lake,
            name,
            add=copies,
            remove=lambda t: [f for f in current_data_files(t) if f.file_path in paths],
            properties={"operation": "erasure", "actor": actor, "erasure-request": request},
            exclusive_held=True,
            replace_all=True,
        )
    except BaseException:
        for copy in copies:
            lake.storage.delete(copy)
        raise
    return result.snapshot_id


def _delete_old_metadata(lake: Lake, name: TableName) -> int:
    """Keep only the current metadata JSON: earlier ones describe snapshots that are gone."""
    table = lake.load(name)
    deleted = 0
    for uri in metadata_files(table) - {table.metadata_location}:
        deleted += lake.storage.delete(uri)
    for item in lake.storage.list(f"{table.location()}/metadata"):
        if item.uri.endswith(".metadata.json") and item.uri != table.metadata_location:
            deleted += lake.storage.delete(item.uri)
    return deleted + _restart_metadata_log(lake, name)


def _restart_metadata_log(lake: Lake, name: TableName) -> int:
    """A new current metadata file whose ``metadata-log`` is empty: the earlier files it named
    are deleted, and the Iceberg spec lets a log start anew (readers must not find a log entry
    whose file is gone). The catalog pointer moves with a compare-and-swap; the previous
    current file is deleted too. Returns the number of files deleted (1)."""
    from pyiceberg.serializers import ToOutputFile

    table = lake.load(name)
    old = table.metadata_location
    if not table.metadata.metadata_log:
        return 0
    version = int(old.rsplit("/", 1)[-1].split("-", 1)[0]) + 1
    new = f"{table.location()}/metadata/{version:05d}-{uuid.uuid4()}.metadata.json"
    now_ms = max(int(datetime.now(UTC).timestamp() * 1000), table.metadata.last_updated_ms + 1)
    fresh = table.metadata.model_copy(update={"metadata_log": [], "last_updated_ms": now_ms})
    ToOutputFile.table_metadata(fresh, table.io.new_output(new))
    with lake.catalog.engine.begin() as connection:
        moved = connection.execute(
            text(
                "UPDATE iceberg_tables SET metadata_location = :new, previous_metadata_location = NULL "
                "WHERE catalog_name = :catalog AND table_namespace = :namespace AND table_name = :table "
                "AND metadata_location = :old"
            ),
            {
                "new": new,
                "old": old,
                "catalog": lake.catalog.name,
                "namespace": name.namespace,
                "table": name.name,
            },
        ).rowcount
    if moved != 1:  # another commit came first (the table is locked for erasure: not expected)
        lake.storage.delete(new)
        raise RuntimeError(f"the metadata of {name} changed during erasure; run the erasure again")
    return int(lake.storage.delete(old))


def check_file(lake: Lake, uri: str, subject: str) -> dict[str, Any]:
    """Look for the subject in one file; decode what is compressed."""
    needle = subject.encode()
    raw = lake.storage.read_bytes(uri)
    found: list[str] = []
    if contains_token(raw, needle):
        found.append("raw bytes")
    if uri.endswith(".parquet"):
        kind = "data"
        with lake.storage.fs.open_input_file(lake.storage.path(uri)) as handle:
            parquet = pq.ParquetFile(handle)
            meta = parquet.metadata
            for group in range(meta.num_row_groups):
                for col in range(meta.num_columns):
                    stats = meta.row_group(group).column(col).statistics
                    if (
                        stats is not None
                        and stats.has_min_max
                        and subject in (str(stats.min), str(stats.max))
                    ):
                        found.append(f"statistics of {meta.schema.column(col).name}")
            data = parquet.read()
        for field in data.schema:
            try:
                if pc.sum(_matches(data.column(field.name), subject)).as_py():
                    found.append(f"values of {field.name}")
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                continue  # nested or binary: covered by the raw-bytes check of decoded pages below
    elif uri.endswith(".avro"):
        kind = "manifest"
        if contains_token(avro_payload(raw), needle):
            found.append("decoded Avro content")
    elif uri.endswith(".json"):
        kind = "metadata"
    else:
        kind = "other"
    return {"uri": uri, "kind": kind, "bytes": len(raw), "contains_subject": bool(found), "found_in": found}


def erase_subject(
    session: Session, principal: Principal, lake: Lake, *, namespace: str, subject: str
) -> dict[str, Any]:
    """Remove every row of ``subject`` from ``namespace`` and prove that no file keeps it."""
    require(principal, Permission.LAKE_MAINTAIN)
    check_name(namespace, "namespace")
    subject = (subject or "").strip()
    if not subject or len(subject) > 200:
        raise InvalidInput("give the subject's identifier (1-200 characters)")
    names = lake.tables(namespace)
    if not names:
        raise NotFound(f"namespace {namespace!r} has no tables")
    _refuse_while_running(session, namespace)
    request = uuid.uuid4().hex[:12]
    started = utcnow()
    rows = {d.name: d for d in session.scalars(select(Dataset).where(Dataset.namespace == namespace))}
    settings = lake.settings.lake
    tables = []
    removed: set[str] = set()
    for name in names:
        dataset = rows.get(name.name)
        column = dataset.subject_column if dataset else None
        entry: dict[str, Any] = {"table": str(name), "subject_column": column}
        before = {item.uri for item in lake.storage.list(lake.load(name).location())}
        with locks.lease(
            lake.catalog.engine,
            f"table:{name}",
            locks.EXCLUSIVE,
            holder=locks.holder_name(f"erase:{request}"),
            ttl=max(settings.lock_timeout_seconds * 4, 600),
            timeout=settings.lock_timeout_seconds,
        ):
            entry.update(_rewrite_without(lake, name, column, subject, principal.name, request))
            entry["snapshot_id"] = _fresh_manifests(lake, name, principal.name, request)
            if not column:
                entry["note"] = "no subject column declared"
            future = datetime.now(UTC) + timedelta(seconds=1)
            expired = expire_and_delete(lake, name, future)
            entry["snapshots_expired"] = expired["snapshots_expired"]
            entry["files_deleted"] = expired["files_deleted"]
            entry["orphans_deleted"] = remove_orphans(lake, name, session, timedelta(0))["orphans_deleted"]
            entry["metadata_deleted"] = _delete_old_metadata(lake, name)
            table = lake.load(name)
            after = list(lake.storage.list(table.location()))
            entry["files"] = [check_file(lake, item.uri, subject) for item in after]
        removed |= before - {item.uri for item in after}
        tables.append(entry)
    # DB writes come last: an open write transaction would block the lease rows on SQLite.
    for dataset in rows.values():
        dataset.profile, dataset.profile_snapshot_id = None, None  # cached min/max may name the subject
    scrubbed = _scrub_jobs(session, namespace, subject)
    quarantine, quarantine_files = _erase_quarantine(session, lake, namespace, subject)
    pending_files = _erase_pending(session, lake, namespace, subject, request)
    scope = copies.ErasureScope(lake.settings, session, namespace, subject, removed)
    locations: dict[str, list[dict[str, Any]]] = {
        "quarantine": quarantine_files,
        "pending deliveries": pending_files,
    }
    for location, scan in sorted(copies.scanners().items()):
        locations[location] = scan(scope)
    files_checked = sum(len(t["files"]) for t in tables) + sum(len(v) for v in locations.values())
    dirty = [f["uri"] for t in tables for f in t["files"] if f["contains_subject"]]
    dirty += [f["uri"] for found in locations.values() for f in found if f["contains_subject"]]
    checked = [
        {"location": "lake tables", "files": sum(len(t["files"]) for t in tables), "removed": len(removed)},
        *(
            {
                "location": location,
                "files": len(found),
                "removed": sum(1 for f in found if f["found_in"] and not f["contains_subject"]),
            }
            for location, found in locations.items()
        ),
    ]
    report = {
        "request": request,
        "namespace": namespace,
        "tables": tables,
        "rows_removed": sum(t["rows_removed"] for t in tables),
        "files_checked": files_checked,
        "files_containing_subject": dirty,
        "job_reasons_scrubbed": scrubbed,
        "quarantined_files_deleted": quarantine,
        "locations": checked,
        "copies": locations,
        "ok": not dirty,
        "checked_at": utcnow(),
    }
    summary = {k: v for k, v in report.items() if k not in ("tables", "checked_at", "copies")}
    summary["tables"] = [{k: v for k, v in t.items() if k != "files"} for t in tables]
    outcome = "success" if report["ok"] else "failure"
    run = MaintenanceRun(
        kind="erase",
        actor=principal.name,
        started_at=started,
        finished_at=utcnow(),
        outcome=outcome,
        report=summary,
    )
    session.add(run)
    trace.record_erasure(
        session, user=principal.name, request=request, started=started, tables=tables, ok=report["ok"]
    )
    record(
        session,
        actor=principal,
        action="lake.erase",
        target=f"namespace:{namespace}",
        outcome=outcome,
        details={
            "request": request,
            "tables": len(tables),
            "rows_removed": report["rows_removed"],
            "files_checked": files_checked,
            "ok": report["ok"],
        },
    )
    return report


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


def _refuse_while_running(session: Session, namespace: str) -> None:
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


def _raw_mentions(lake: Lake, path: Path, subject: str) -> list[str]:
    if path.suffix == quarantine.SUFFIX:  # encrypted at rest: search the decrypted stream
        return ["raw bytes"] if _stream_mentions(quarantine.iter_plain(lake.settings, path), subject) else []
    return copies.file_mentions(path, subject)


def _erase_pending(
    session: Session, lake: Lake, namespace: str, subject: str, request: str
) -> list[dict[str, Any]]:
    """Deliveries of the namespace waiting for a worker (queued, or left by a dead one) that
    mention the subject are quarantined and their raw file deleted; each is listed."""
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
        found = _raw_mentions(lake, path, subject)
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
        item = copies.entry("pending deliveries", path, found, action, size)
        item["contains_subject"] = bool(found) and action != "deleted"  # still there: not erased
        checked.append(item)
    return checked


def _erase_quarantine(
    session: Session, lake: Lake, namespace: str, subject: str
) -> tuple[int, list[dict[str, Any]]]:
    """Quarantined raw files of the namespace that mention the subject are deleted; every
    quarantined file of the namespace is listed in the proof."""
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
        found = _raw_mentions(lake, path, subject)
        if found:
            path.unlink()
            job.raw_path = None
            count += 1
        checked.append(copies.entry("quarantine", path, found, "deleted" if found else "kept", size))
    return count, checked
