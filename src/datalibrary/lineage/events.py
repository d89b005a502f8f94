"""Lineage of the ways data leaves the lake besides queries: result downloads and erasures.

A download is its own run (job ``download``) next to the query that produced it: its
inputs are the tables the query read (at the snapshots read), its output the response
handed to the caller, named where it was served: ``<public URL>`` /
``/api/v1/query#<query run id>.<format>``, with its row and byte counts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from datalibrary.lineage import facets
from datalibrary.lineage.naming import naming_for
from datalibrary.lineage.service import DatasetRef, RunState, emit, new_run_id, table_ref


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
