"""Lineage of the ways data leaves the lake: queries, result downloads and erasures.

A query's START + COMPLETE/FAIL (:func:`record_query`, the query service's ``TRACE`` hook)
name the tables it read, at the snapshots read; a refused or failed query names only those
that exist (a query naming a missing table creates no node).

A download is its own run (job ``download``) next to the query that produced it: its
inputs are the tables the query read (at the snapshots read), its output the response
handed to the caller, named where it was served: ``<public URL>`` /
``/api/v1/query#<query run id>.<format>``, with its row and byte counts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from datalibrary.auth.permissions import Principal
from datalibrary.config import Settings
from datalibrary.lake.catalog import open_lake, parse_table_name
from datalibrary.lineage import facets
from datalibrary.lineage.naming import naming_for
from datalibrary.lineage.service import DatasetRef, RunState, emit, existing, new_run_id, table_ref
from datalibrary.query.models import QueryRecord
from datalibrary.query.service import TableRead


def _pair(
    session: Session,
    ok: bool,
    started: datetime | None,
    rows: int | None = None,
    size: int | None = None,
    error: str | None = None,
    **common: Any,
) -> str:
    run_id = new_run_id()
    emit(session, event_type=RunState.START, run_id=run_id, event_time=started, **common)
    emit(
        session,
        event_type=RunState.COMPLETE if ok else RunState.FAIL,
        run_id=run_id,
        rows=rows,
        size=size,
        error=error,
        **common,
    )
    return run_id


def record_query(
    session: Session, record: QueryRecord, reads: list[TableRead], via: str, operator: str | None = None
) -> None:
    """START + COMPLETE/FAIL of one finished query run (the query service's ``TRACE`` hook)."""
    if record.outcome == "success":
        inputs = [
            table_ref(r.name, r.snapshot_id, schema=facets.schema_facet(r.columns))
            if r.columns is not None
            else table_ref(r.name, r.snapshot_id)
            for r in reads
        ]
    else:
        inputs = [table_ref(name) for name in existing(session, [r.name for r in reads])]
    common: dict[str, Any] = {
        "run_id": record.run_id,
        "job_name": "query",
        "user": record.user,
        "project": record.project,
        "via": via,
        "operator": operator,
        "job_facets": {"sql": facets.sql_facet(record.sql)},
    }
    emit(session, event_type=RunState.START, event_time=record.started_at, inputs=inputs, **common)
    emit(
        session,
        event_type=RunState.COMPLETE if record.outcome == "success" else RunState.FAIL,
        error=f"{record.outcome}: {record.error}" if record.error else None,
        inputs=inputs,
        rows=record.rows_returned,
        size=record.bytes_scanned,
        **common,
    )


def record_download(
    session: Session,
    *,
    user: str,
    project: str | None,
    query_run_id: str,
    tables: list[dict[str, Any]],
    fmt: str,
    rows: int,
    size: int,
    via: str | None = None,
    operator: str | None = None,
) -> str:
    """START + COMPLETE of one result download; returns its run id."""
    inputs = [table_ref(str(t["name"]), t.get("snapshot_id")) for t in tables]
    namespace, path = naming_for(session.get_bind()).api(f"/api/v1/query#{query_run_id}.{fmt}")
    output = DatasetRef(
        path,
        namespace=namespace,
        io_facets={"outputStatistics": facets.output_stats(rows, size, 1)},
    )
    return _pair(
        session,
        True,
        None,
        job_name="download",
        user=user,
        project=project,
        inputs=inputs,
        outputs=[output],
        via=via,
        operator=operator,
        rows=rows,
        size=size,
    )


def trace_file_read(
    session: Session, principal: Principal, settings: Settings, collection: str, path: str, size: int
) -> str:
    """The lineage of a file served to ``principal`` from a collection: read against the
    collection's current snapshot (the index version that named it), by whichever front end."""
    table = parse_table_name(collection)
    snapshot = open_lake(settings).load(table).current_snapshot()
    return record_file_read(
        session, user=principal.name, project=principal.default_project, collection=str(table),
        snapshot_id=snapshot.snapshot_id if snapshot else None, path=path, size=size,
        via=principal.actor.client, operator=principal.operator,
    )  # fmt: skip


def record_file_read(
    session: Session,
    *,
    user: str,
    project: str | None,
    collection: str,
    snapshot_id: int | None,
    path: str,
    size: int,
    via: str | None = None,
    operator: str | None = None,
) -> str:
    """START + COMPLETE of one file read from a file collection (its index table is the input,
    the served file the output, with its bytes); returns the run id."""
    namespace, name = naming_for(session.get_bind()).api(f"/api/v1/collections/{collection}/files/{path}")
    output = DatasetRef(
        name, namespace=namespace, io_facets={"outputStatistics": facets.output_stats(1, size, 1)}
    )
    return _pair(
        session,
        True,
        None,
        job_name="file-read",
        user=user,
        project=project,
        inputs=[table_ref(collection, snapshot_id)],
        outputs=[output],
        via=via,
        operator=operator,
        rows=1,
        size=size,
    )


def record_erasure(
    session: Session, *, user: str, request: str, started: datetime, tables: list[dict[str, Any]], ok: bool
) -> str:
    """START + COMPLETE/FAIL of one erasure: every table rewritten, with its new snapshot.

    The subject's identifier is never part of the event (only the erasure request id)."""
    return _pair(
        session,
        ok,
        started,
        job_name="erasure",
        user=user,
        inputs=[table_ref(str(t["table"])) for t in tables],
        outputs=[table_ref(str(t["table"]), t.get("snapshot_id")) for t in tables],
        purpose=f"erasure request {request}",
        error=None if ok else f"erasure request {request}: files still containing the subject were found",
    )
