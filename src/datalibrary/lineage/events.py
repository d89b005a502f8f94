"""Lineage of the ways data leaves the lake besides queries: result downloads and erasures.

A download is its own run (job ``download``) next to the query that produced it: its
inputs are the tables the query read, its output the file handed to the caller
(``download`` / ``download:<query run id>.<format>``) with its row and byte counts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from datalibrary.lineage import facets
from datalibrary.lineage.service import DatasetRef, RunState, emit, new_run_id


def _pair(
    session: Session,
    ok: bool,
    started: datetime | None,
    rows: int | None = None,
    size: int | None = None,
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
) -> str:
    """START + COMPLETE of one result download; returns its run id."""
    inputs = [
        DatasetRef(str(t["name"]), facets={"version": facets.version_facet(t.get("snapshot_id"))})
        for t in tables
    ]
    output = DatasetRef(
        f"download:{query_run_id}.{fmt}",
        namespace="download",
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
        rows=rows,
        size=size,
    )


def record_erasure(
    session: Session, *, user: str, request: str, started: datetime, tables: list[dict[str, Any]], ok: bool
) -> str:
    """START + COMPLETE/FAIL of one erasure: every table rewritten, with its new snapshot.

    The subject's identifier is never part of the event (only the erasure request id)."""
    datasets = [
        DatasetRef(
            str(t["table"]),
            facets={"version": facets.version_facet(t.get("snapshot_id"))},
        )
        for t in tables
    ]
    return _pair(
        session,
        ok,
        started,
        job_name="erasure",
        user=user,
        inputs=[DatasetRef(d.name) for d in datasets],
        outputs=datasets,
        purpose=f"erasure request {request}",
    )
