"""What the front ends show of lineage, compliance reports and exports: one shape for the API
and the CLI's ``--json``. ``ExportIn`` stays in the API router: its fields use the API's own
request types (``api.fields``)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from datalibrary.lineage.models import ExportRequest


class DatasetLineageOut(BaseModel):
    dataset: str
    upstream: dict[str, Any] = Field(description="ingestions (source files), policies, erasures")
    downstream: dict[str, Any] = Field(description="accesses (queries, downloads, exports), users, totals")
    graph: dict[str, Any] = Field(description="nodes (in columns 0-4) and links, as drawn on the page")


class UserLineageOut(BaseModel):
    user: str
    datasets: list[dict[str, Any]]
    events: list[dict[str, Any]]


class ReportOut(BaseModel):
    scope: str
    start: datetime
    end: datetime
    generated_at: datetime
    generated_by: str
    accesses: list[dict[str, Any]]
    exports: list[dict[str, Any]]
    erasures: list[dict[str, Any]]
    policies: list[dict[str, Any]]
    audit_chain: dict[str, Any]
    truncated: bool


class ExportOut(BaseModel):
    id: int
    run_id: str
    requester: str
    project: str | None
    kind: str
    sql: str | None
    path: str | None
    workspace_id: int | None
    format: str
    purpose: str
    destination: str
    state: str
    datasets: list[str]
    summary: dict[str, Any] | None
    created_at: datetime
    reviewer: str | None
    decided_at: datetime | None
    decision_note: str | None
    override_reason: str | None = Field(description="Why content failing the risk check was approved")
    file_bytes: int | None
    file_sha256: str | None
    expires_at: datetime | None
    downloaded_at: datetime | None

    @classmethod
    def of(cls, export: ExportRequest, *, reviewer: bool = False) -> ExportOut:
        """The request as the front ends show it; the rows sample only to reviewers (the
        requester's copy of the data leaves only through the download)."""
        hidden = {"aggregate_cells"} if reviewer else {"aggregate_cells", "sample"}
        summary = {k: v for k, v in (export.summary or {}).items() if k not in hidden} or None
        return cls(
            id=export.id,
            run_id=export.run_id,
            requester=export.requester,
            project=export.project,
            kind=export.kind,
            sql=export.sql,
            path=export.path,
            workspace_id=export.workspace_id,
            format=export.format,
            purpose=export.purpose,
            destination=export.destination,
            state=export.state,
            datasets=export.datasets,
            summary=summary,
            created_at=export.created_at,
            reviewer=export.reviewer,
            decided_at=export.decided_at,
            decision_note=export.decision_note,
            override_reason=export.override_reason,
            file_bytes=export.file_bytes,
            file_sha256=export.file_sha256,
            expires_at=export.expires_at,
            downloaded_at=export.downloaded_at,
        )


class ReviewIn(BaseModel):
    decision: Literal["approve", "deny"]
    note: str | None = Field(None, max_length=2000)
    quasi_identifiers: list[str] = Field(default_factory=list, max_length=50)
    count_column: str | None = Field(
        None, max_length=200, description="The column holding each row's count (an aggregate table)"
    )
    override_reason: str | None = Field(
        None, max_length=2000, description="Required to approve content that fails the risk check"
    )
