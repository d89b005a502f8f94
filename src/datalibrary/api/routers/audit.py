"""Audit log: read events and verify the hash chain."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from datalibrary.api.deps import CurrentPrincipal, DbSession, Requires
from datalibrary.audit import service
from datalibrary.auth.permissions import Permission

router = APIRouter(prefix="/audit", tags=["audit"], dependencies=[Requires(Permission.AUDIT_READ)])


class AuditEventOut(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    outcome: str
    client: str | None
    request_id: str | None
    details: dict[str, Any]
    hash: str


@router.get("/verify", summary="Verify the audit hash chain")
def verify(principal: CurrentPrincipal, session: DbSession) -> dict[str, Any]:
    return service.verify_as(session, principal).as_dict()


@router.get("/events", summary="Audit events, newest first, filtered")
def events(
    principal: CurrentPrincipal,
    session: DbSession,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
) -> list[AuditEventOut]:
    rows = service.search(
        session,
        principal,
        actor=actor,
        action=action,
        target=target,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    return [AuditEventOut.model_validate(row, from_attributes=True) for row in rows]
