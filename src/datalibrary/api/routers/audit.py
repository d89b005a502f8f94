"""Audit log: read events and verify the hash chain."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from datalibrary.audit import export, service
from datalibrary.audit.schemas import AuditEventOut
from datalibrary.auth.permissions import Permission
from datalibrary.bounds import MAX_OFFSET
from datalibrary.http.deps import CurrentPrincipal, DbSession, Requires, client_address

router = APIRouter(prefix="/audit", tags=["audit"], dependencies=[Requires(Permission.AUDIT_READ)])


@router.get("/verify", summary="Verify the audit hash chain")
def verify(principal: CurrentPrincipal, session: DbSession) -> dict[str, Any]:
    return service.verify_as(session, principal).as_dict()


BEHALF = "Only what was done with this user's rights by someone else (the operator's CLI, --as)"


@router.get("/events", summary="Audit events, newest first, filtered")
def events(
    principal: CurrentPrincipal,
    session: DbSession,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    on_behalf_of: Annotated[str | None, Query(max_length=64, description=BEHALF)] = None,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> list[AuditEventOut]:
    rows = service.search(
        session,
        principal,
        actor=actor,
        action=action,
        target=target,
        since=since,
        until=until,
        on_behalf_of=on_behalf_of,
        limit=limit,
        offset=offset,
    )
    return [AuditEventOut.of(row) for row in rows]


EXPORT_LIMIT = 100_000


@router.get(
    "/events.csv",
    summary="Export audit events as CSV (spreadsheet-safe), newest first, filtered",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
def events_csv(
    request: Request,
    principal: CurrentPrincipal,
    session: DbSession,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    on_behalf_of: Annotated[str | None, Query(max_length=64, description=BEHALF)] = None,
    limit: int = Query(EXPORT_LIMIT, ge=1, le=EXPORT_LIMIT),
) -> Response:
    filters = {
        "actor": actor,
        "action": action,
        "target": target,
        "since": since,
        "until": until,
        "on_behalf_of": on_behalf_of,
    }
    rows = service.search(session, principal, **filters, limit=limit)
    service.record(
        session,
        actor=principal,
        action="audit.export",
        target="audit:events",
        client=client_address(request),
        # the filters nested: a top-level "on_behalf_of" would make this export look like an
        # act on that user's behalf to the next search
        details={"rows": len(rows), "filters": {k: str(v) for k, v in filters.items() if v is not None}},
    )
    body = "".join(export.csv_lines(rows))
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="datalibrary-audit.csv"'},
    )
