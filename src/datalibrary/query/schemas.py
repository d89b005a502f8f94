"""What the front ends show of queries: a page of a result, the tables a caller may query and
the query history; one shape for the API and the CLI's ``--json``, and the query request."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from datalibrary.bounds import MAX_OFFSET
from datalibrary.query.models import QueryRecord

if TYPE_CHECKING:  # the engine's modules load pyarrow and sqlglot; the shapes need neither
    from datalibrary.query.service import QueryResult
    from datalibrary.query.visible_tables import VisibleTable


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

    @classmethod
    def of(cls, record: QueryRecord) -> QueryStats:
        return cls(
            run_id=record.run_id,
            bytes_scanned=record.bytes_scanned,
            rows_returned=record.rows_returned,
            duration_ms=record.duration_ms,
            tables=record.tables,
        )


def _json_value(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


class QueryOut(BaseModel):
    columns: list[dict[str, str]]
    rows: list[list[Any]]
    offset: int
    next_offset: int | None
    truncated: bool = Field(description="The result hit the server's row cap")
    stats: QueryStats

    @classmethod
    def page(cls, result: QueryResult, offset: int = 0, limit: int | None = None) -> QueryOut:
        """Rows ``offset`` to ``offset + limit`` of ``result`` (all the rest without a limit)."""
        whole = result.table
        page = whole.slice(offset, limit)
        end = offset + page.num_rows
        return cls(
            columns=[{"name": f.name, "type": str(f.type)} for f in whole.schema],
            rows=[[_json_value(v) for v in row.values()] for row in page.to_pylist()],
            offset=offset,
            next_offset=end if end < whole.num_rows else None,
            truncated=result.truncated,
            stats=QueryStats.of(result.record),
        )


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

    @classmethod
    def of(cls, record: QueryRecord) -> QueryRecordOut:
        return cls.model_validate(record, from_attributes=True)


class ColumnOut(BaseModel):
    name: str
    type: str
    masked: bool
    label: str = Field("", description="The column's label (SAS label or define.xml)")


class TableOut(BaseModel):
    name: str
    columns: list[ColumnOut]
    row_filtered: bool

    @classmethod
    def of(cls, table: VisibleTable) -> TableOut:
        return cls(
            name=table.name,
            columns=[ColumnOut(**vars(c)) for c in table.columns],
            row_filtered=table.row_filtered,
        )
