"""Run SQL on the lake; results as JSON pages, CSV, Parquet or Arrow IPC; query history."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Literal

import pyarrow as pa
from fastapi import APIRouter, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from datalibrary.auth.permissions import Permission
from datalibrary.bounds import MAX_OFFSET
from datalibrary.http.deps import CurrentPrincipal, DbSession, Requires, SettingsDep
from datalibrary.lineage import events as downloads
from datalibrary.query import history as query_history
from datalibrary.query import service
from datalibrary.query.formats import write
from datalibrary.query.visible_tables import visible_tables

router = APIRouter(tags=["query"])

MEDIA = {
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
    "arrow": "application/vnd.apache.arrow.stream",
}


class QueryIn(BaseModel):
    sql: str = Field(min_length=1, max_length=100_000, examples=["SELECT * FROM cdisc.dm LIMIT 10"])
    project: str | None = Field(None, description="The project charged for the query")
    format: Literal["json", "csv", "parquet", "arrow"] = "json"
    limit: int = Field(1000, ge=1, le=100_000, description="Rows per JSON page")
    offset: int = Field(0, ge=0, le=MAX_OFFSET, description="First row of the JSON page")
    client: Literal["console", "sdk", "cli", "workspace"] | None = Field(
        None, description="Which client sent the query (recorded in its lineage)"
    )
    purpose: str | None = Field(
        None, max_length=2000, description="Why the download is needed (if it is routed to the airlock)"
    )
    destination: str | None = Field(
        None, max_length=500, description="Where the download goes (if it is routed to the airlock)"
    )


class QueryStats(BaseModel):
    run_id: str
    bytes_scanned: int
    rows_returned: int
    duration_ms: int
    tables: list[dict[str, Any]]


class QueryOut(BaseModel):
    columns: list[dict[str, str]]
    rows: list[list[Any]]
    offset: int
    next_offset: int | None
    truncated: bool = Field(description="The result hit the server's row cap")
    stats: QueryStats


class QueryRecordOut(BaseModel):
    id: int
    run_id: str
    user: str
    project: str | None
    sql: str
    tables: list[dict[str, Any]]
    bytes_scanned: int
    rows_returned: int
    duration_ms: int
    outcome: str
    error: str | None
    started_at: datetime


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


def _json_value(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


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
    stats = QueryStats(
        run_id=record.run_id,
        bytes_scanned=record.bytes_scanned,
        rows_returned=record.rows_returned,
        duration_ms=record.duration_ms,
        tables=record.tables,
    )
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
    page = result.table.slice(body.offset, body.limit)
    rows = [[_json_value(v) for v in row.values()] for row in page.to_pylist()]
    end = body.offset + page.num_rows
    return QueryOut(
        columns=[{"name": f.name, "type": str(f.type)} for f in result.table.schema],
        rows=rows,
        offset=body.offset,
        next_offset=end if end < result.table.num_rows else None,
        truncated=result.truncated,
        stats=stats,
    )


class ColumnOut(BaseModel):
    name: str
    type: str
    masked: bool
    label: str = Field("", description="The column's label (SAS label or define.xml)")


class TableOut(BaseModel):
    name: str
    columns: list[ColumnOut]
    row_filtered: bool


@router.get(
    "/query/tables", summary="Tables you may query, with your visible columns",
    dependencies=[Requires(Permission.QUERY_RUN)],
)  # fmt: skip
def tables(principal: CurrentPrincipal, session: DbSession, settings: SettingsDep) -> list[TableOut]:
    return [
        TableOut(name=t.name, columns=[ColumnOut(**vars(c)) for c in t.columns], row_filtered=t.row_filtered)
        for t in visible_tables(session, principal, settings)
    ]


@router.get("/queries", summary="Query history", dependencies=[Requires(Permission.QUERY_RUN)])
def history(
    principal: CurrentPrincipal,
    session: DbSession,
    user: str | None = None,
    limit: int = Query(50, ge=1, le=500),
) -> list[QueryRecordOut]:
    """Your own queries; auditors and admins may name another user."""
    records = query_history.history(session, principal, user, limit)
    return [QueryRecordOut.model_validate(r, from_attributes=True) for r in records]
