"""Run SQL on the lake; results as JSON pages, CSV, Parquet or Arrow IPC; query history."""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any, Literal

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from datalibrary.api.deps import CurrentPrincipal, DbSession, Requires, SettingsDep
from datalibrary.auth.permissions import Permission, require
from datalibrary.lineage import events as downloads
from datalibrary.query import catalog, service
from datalibrary.query.models import QueryRecord

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
    offset: int = Field(0, ge=0, description="First row of the JSON page")
    client: Literal["console", "sdk", "cli", "workspace"] | None = Field(
        None, description="Which client sent the query (recorded in its lineage)"
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


def encode(table: pa.Table, fmt: str) -> bytes:
    sink = io.BytesIO()
    if fmt == "csv":
        pacsv.write_csv(table, sink)
    elif fmt == "parquet":
        pq.write_table(table, sink, compression="zstd")
    else:
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
    return sink.getvalue()


def _json_value(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


@router.post("/query", summary="Run a read-only SQL query", dependencies=[Requires(Permission.QUERY_RUN)])
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
        via=body.client or principal.via,
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
        filename = f"query-{record.run_id[:8]}.{'arrows' if body.format == 'arrow' else body.format}"
        content = encode(result.table, body.format)
        downloads.record_download(
            session, user=principal.name, project=record.project, query_run_id=record.run_id,
            tables=record.tables, fmt=body.format, rows=record.rows_returned, size=len(content),
            via=body.client or principal.via,
        )  # fmt: skip
        return Response(
            content,
            media_type=MEDIA[body.format],
            headers={
                "Content-Disposition": f'attachment; filename="{filename}"',
                "X-Bytes-Scanned": str(record.bytes_scanned),
                "X-Rows": str(record.rows_returned),
                "X-Truncated": str(result.truncated).lower(),
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
        for t in catalog.visible_tables(session, principal, settings)
    ]


@router.get("/queries", summary="Query history", dependencies=[Requires(Permission.QUERY_RUN)])
def history(
    principal: CurrentPrincipal,
    session: DbSession,
    user: str | None = None,
    limit: int = Query(50, ge=1, le=500),
) -> list[QueryRecordOut]:
    """Your own queries; auditors and admins may name another user."""
    if user and user != principal.name:
        require(principal, Permission.AUDIT_READ)
    query = (
        select(QueryRecord)
        .where(QueryRecord.user == (user or principal.name))
        .order_by(QueryRecord.id.desc())
        .limit(limit)
    )
    return [QueryRecordOut.model_validate(r, from_attributes=True) for r in session.scalars(query)]
