"""Grants and access requests."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from datalibrary.access import service
from datalibrary.access.schemas import DecisionIn, GrantOut, RequestOut
from datalibrary.api.fields import AccountName, Grantee, Justification, TableOrNamespace
from datalibrary.auth.permissions import Permission
from datalibrary.bounds import RecordId
from datalibrary.http.deps import CurrentPrincipal, DbSession, Requires, SettingsDep

router = APIRouter(tags=["access"])


class GrantIn(BaseModel):
    principal: Grantee = Field(description="user:NAME or group:NAME")
    table: TableOrNamespace = Field(description="NS.TABLE, or NS for every table of a namespace")
    columns: list[str] | None = Field(None, description="Visible columns; omit for all")
    masks: dict[str, str] = Field(default_factory=dict, description="column -> 'null' or 'const:TEXT'")
    row_filter: str | None = Field(None, examples=["SITEID IN ('701','703')"])
    expires_at: datetime | None = None


class RequestIn(BaseModel):
    table: TableOrNamespace = Field(description="NS.TABLE, or NS for a whole namespace")
    justification: Justification
    project: AccountName | None = None


def split_table(name: str) -> tuple[str, str | None]:
    namespace, _, table = name.strip().partition(".")
    return namespace, table or None


@router.get("/grants", summary="List grants", dependencies=[Requires(Permission.CATALOG_READ)])
def list_grants(
    principal: CurrentPrincipal,
    session: DbSession,
    grantee: str | None = Query(None, alias="principal"),
    table: str | None = None,
    include_inactive: bool = False,
) -> list[GrantOut]:
    namespace, table_name = split_table(table) if table else (None, None)
    grants = service.list_grants(
        session, principal, principal=grantee, namespace=namespace, table=table_name,
        include_inactive=include_inactive,
    )  # fmt: skip
    return [GrantOut.of(g) for g in grants]


@router.post(
    "/grants", summary="Grant SELECT on a table or namespace", status_code=201,
    dependencies=[Requires(Permission.GRANTS_MANAGE)],
)  # fmt: skip
def add_grant(
    body: GrantIn, principal: CurrentPrincipal, session: DbSession, settings: SettingsDep
) -> GrantOut:
    namespace, table = split_table(body.table)
    grant = service.add_grant(
        session, principal, principal=body.principal, namespace=namespace, table=table,
        columns=body.columns, masks=body.masks, row_filter=body.row_filter, expires_at=body.expires_at,
        columns_of=service.lake_columns(settings),
    )  # fmt: skip
    return GrantOut.of(grant)


@router.delete(
    "/grants/{grant_id}", summary="Revoke a grant", dependencies=[Requires(Permission.GRANTS_MANAGE)]
)
def revoke_grant(grant_id: RecordId, principal: CurrentPrincipal, session: DbSession) -> GrantOut:
    return GrantOut.of(service.revoke_grant(session, principal, grant_id))


@router.get(
    "/access-requests", summary="Access requests (yours, or all for reviewers)",
    dependencies=[Requires(Permission.CATALOG_READ)],
)  # fmt: skip
def list_requests(
    principal: CurrentPrincipal, session: DbSession, state: str | None = None, mine: bool = False
) -> list[RequestOut]:
    return [RequestOut.of(r) for r in service.list_requests(session, principal, state=state, mine=mine)]


@router.post(
    "/access-requests", summary="Request access to a dataset", status_code=201,
    dependencies=[Requires(Permission.ACCESS_REQUEST)],
)  # fmt: skip
def request_access(
    body: RequestIn, principal: CurrentPrincipal, session: DbSession, settings: SettingsDep
) -> RequestOut:
    namespace, table = split_table(body.table)
    request = service.request_access(
        session, principal, namespace=namespace, table=table, justification=body.justification,
        project=body.project, columns_of=service.lake_columns(settings),
    )  # fmt: skip
    return RequestOut.of(request)


@router.post(
    "/access-requests/{request_id}/decision", summary="Approve or deny an access request",
    dependencies=[Requires(Permission.ACCESS_REVIEW)],
)  # fmt: skip
def decide(
    request_id: RecordId,
    body: DecisionIn,
    principal: CurrentPrincipal,
    session: DbSession,
    settings: SettingsDep,
) -> RequestOut:
    request = service.decide_request(
        session, principal, request_id, approve=body.decision == "approve", note=body.note,
        columns=body.columns, masks=body.masks, row_filter=body.row_filter, expires_at=body.expires_at,
        columns_of=service.lake_columns(settings),
    )  # fmt: skip
    return RequestOut.of(request)
