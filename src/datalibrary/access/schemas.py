"""What the front ends show of grants and access requests: one shape for the API, the CLI's
``--json`` and pages. Request bodies whose fields use the API's own types (``api.fields``)
stay in the router."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from datalibrary.access.models import AccessRequest, Grant


class GrantOut(BaseModel):
    id: int
    principal: str
    namespace: str
    table_name: str | None
    columns: list[str] | None
    masks: dict[str, str]
    row_filter: str | None
    expires_at: datetime | None
    created_by: str
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, grant: Grant) -> GrantOut:
        return cls.model_validate(grant, from_attributes=True)


class RequestOut(BaseModel):
    id: int
    requester: str
    namespace: str
    table_name: str | None
    justification: str
    project: str | None
    state: str
    created_at: datetime
    reviewer: str | None
    decided_at: datetime | None
    decision_note: str | None

    @classmethod
    def of(cls, request: AccessRequest) -> RequestOut:
        return cls.model_validate(request, from_attributes=True)


class DecisionIn(BaseModel):
    decision: Literal["approve", "deny"]
    note: str | None = Field(None, max_length=4000)
    columns: list[str] | None = None
    masks: dict[str, str] = Field(default_factory=dict)
    row_filter: str | None = None
    expires_at: datetime | None = None
