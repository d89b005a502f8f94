"""Run SQL on the lake; results as JSON pages, CSV, Parquet or Arrow IPC; query history."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
from fastapi import APIRouter, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, StreamingResponse

from datalibrary.auth.permissions import Permission
from datalibrary.http.deps import CurrentPrincipal, DbSession, Requires, SettingsDep
from datalibrary.lineage import events as downloads
from datalibrary.query import history as query_history
from datalibrary.query import service
from datalibrary.query.formats import write
from datalibrary.query.schemas import QueryIn, QueryOut, QueryRecordOut, TableOut
from datalibrary.query.visible_tables import visible_tables

router = APIRouter(tags=["query"])

MEDIA = {
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
    "arrow": "application/vnd.apache.arrow.stream",
}


def _airlock_route(session, principal, settings, request, body, result, record) -> JSONResponse | None:  # type: ignore[no-untyped-def]
    """The download policy hook: 202 + the export request when the download needs review."""
    from datalibrary.lineage import downloads, exports

    decision, export = downloads.route(
        session,
        principal,
        settings,
        sql=body.sql,
        datasets=sorted({str(t.get("name")) for t in record.tables if t.get("name")}),
        table=result.table,
        format=body.format,
        runner=exports.QueryRunner(request.app.state.planner, settings.query.limits()),
        project=record.project,
        purpose=body.purpose,
        destination=body.destination,
    )
    if export is None:
        return None
    return JSONResponse(jsonable_encoder(downloads.routed_body(decision, export)), status_code=202)


def _spooled(table: pa.Table, fmt: str) -> tuple[Any, int]:
    """The encoded result in a spooled temporary file (memory up to 8 MB, then disk) and its size."""
    spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115 (closed by the stream)
    write(table, fmt, spool)
    size = spool.tell()
    spool.seek(0)
    return spool, size


def _chunks(spool: Any) -> Iterator[bytes]:
    try:
        while chunk := spool.read(1024 * 1024):
            yield chunk
    finally:
        spool.close()


@router.post(
    "/query",
    summary="Run a read-only SQL query",
    dependencies=[Requires(Permission.QUERY_RUN)],
    response_model=QueryOut,
    responses={
        200: {
            "description": "A page of rows as JSON, or the whole result as a file (`format`).",
            "content": {m: {"schema": {"type": "string", "format": "binary"}} for m in MEDIA.values()},
        },
        202: {
            "description": "A csv/parquet/arrow download the download policy sends to the airlock: "
            "the body names the export request holding the result",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
    },
)
def run_query(
    body: QueryIn, request: Request, principal: CurrentPrincipal, session: DbSession, settings: SettingsDep
) -> Any:
    result = service.run_query(
        session,
        principal,
        body.sql,
        planner=request.app.state.planner,
        limits=settings.query.limits(),
        project=body.project,
        via=body.client or principal.actor.client,
        settings=settings,
    )
    record = result.record
    if body.format != "json":
        routed = _airlock_route(session, principal, settings, request, body, result, record)
        if routed is not None:
            return routed
        filename = f"query-{record.run_id[:8]}.{'arrows' if body.format == 'arrow' else body.format}"
        spool, size = _spooled(result.table, body.format)
        downloads.record_download(
            session, user=principal.name, project=record.project, query_run_id=record.run_id,
            tables=record.tables, fmt=body.format, rows=record.rows_returned, size=size,
            via=body.client or principal.actor.client,
        )  # fmt: skip
        return StreamingResponse(
            _chunks(spool),
            media_type=MEDIA[body.format],
            headers={
                "Content-Disposition": f'attachment; filename="{filename}"',
                "X-Bytes-Scanned": str(record.bytes_scanned),
                "X-Rows": str(record.rows_returned),
                "X-Truncated": str(result.truncated).lower(),
                "Content-Length": str(size),
            },
        )
    return QueryOut.page(result, body.offset, body.limit)


@router.get(
    "/query/tables", summary="Tables you may query, with your visible columns",
    dependencies=[Requires(Permission.QUERY_RUN)],
)  # fmt: skip
def tables(principal: CurrentPrincipal, session: DbSession, settings: SettingsDep) -> list[TableOut]:
    return [TableOut.of(t) for t in visible_tables(session, principal, settings)]


@router.get("/queries", summary="Query history", dependencies=[Requires(Permission.QUERY_RUN)])
def history(
    principal: CurrentPrincipal,
    session: DbSession,
    user: str | None = None,
    limit: int = Query(50, ge=1, le=500),
) -> list[QueryRecordOut]:
    """Your own queries; auditors and admins may name another user."""
    records = query_history.history(session, principal, user, limit)
    return [QueryRecordOut.of(r) for r in records]
