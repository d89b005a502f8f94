"""Lineage graph (per dataset, per user), compliance reports, forwarding status, and the
exports airlock."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from datalibrary.api.fields import AccountName, Destination, Purpose
from datalibrary.auth.permissions import Permission
from datalibrary.bounds import RecordId
from datalibrary.config import reveal
from datalibrary.db.base import utcnow
from datalibrary.errors import NotFound
from datalibrary.http.deps import CurrentPrincipal, DbSession, Requires, SettingsDep
from datalibrary.lineage import compliance, exports, facets, forward, graph, naming
from datalibrary.lineage.compliance import SCOPE_RE
from datalibrary.lineage.graph import DATASET_RE, USER_RE
from datalibrary.lineage.schemas import DatasetLineageOut, ExportOut, ReportOut, ReviewIn, UserLineageOut

router = APIRouter(tags=["lineage"])
exports_router = APIRouter(tags=["exports"])


FACET_NAME = r"^DataLibrary[A-Za-z]{1,60}Facet$"


@router.get(
    "/lineage/facets/{name}.json",
    summary="JSON schema of a DataLibrary custom OpenLineage facet (the _schemaURL of our facets)",
    description="Public, like this OpenAPI document: lineage consumers (Marquez, validators) "
    "fetch the schema a facet's `_schemaURL` names without DataLibrary credentials. It "
    "describes the facet's shape only, never data.",
    response_class=JSONResponse,
    responses={
        200: {
            "description": "A JSON Schema (draft 2020-12) extending OpenLineage's RunFacet or DatasetFacet",
            "content": {"application/schema+json": {"schema": {"type": "object"}}},
        }
    },
)
def facet_schema(name: Annotated[str, Path(pattern=FACET_NAME)], settings: SettingsDep) -> JSONResponse:
    url = naming.naming_for_url(settings.connect_url()).schema_url(name)
    found = facets.published_schema(name, url)
    if found is None:
        raise NotFound(f"no DataLibrary facet named {name}")
    return JSONResponse(found, media_type="application/schema+json")


@router.get(
    "/lineage/datasets/{name}",
    summary="Upstream and downstream lineage of a dataset",
    dependencies=[Requires(Permission.LINEAGE_READ)],
)
def dataset_lineage(
    name: Annotated[str, Path(pattern=DATASET_RE.pattern)],
    principal: CurrentPrincipal,
    session: DbSession,
    limit: int = Query(100, ge=1, le=1000),
) -> DatasetLineageOut:
    return DatasetLineageOut(**graph.dataset_lineage(session, principal, name, limit=limit))


@router.get(
    "/lineage/users/{name}",
    summary="Datasets a user touched (lineage readers; anyone for themselves)",
    dependencies=[Requires(Permission.CONSOLE_VIEW)],
)
def user_lineage(
    name: Annotated[str, Path(pattern=USER_RE.pattern)],
    principal: CurrentPrincipal,
    session: DbSession,
    limit: int = Query(100, ge=1, le=1000),
) -> UserLineageOut:
    return UserLineageOut(**graph.user_lineage(session, principal, name, limit=limit))


def _default_start() -> datetime:
    return datetime(1970, 1, 1, tzinfo=utcnow().tzinfo)


@router.get(
    "/lineage/report",
    summary="Compliance report for a dataset or namespace over a period (JSON or CSV)",
    dependencies=[Requires(Permission.LINEAGE_READ)],
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def compliance_report(
    principal: CurrentPrincipal,
    session: DbSession,
    scope: str = Query(description="NAMESPACE.TABLE or NAMESPACE", pattern=SCOPE_RE.pattern),
    start: datetime | None = None,
    end: datetime | None = None,
    format: Literal["json", "csv"] = "json",
) -> Any:
    data = compliance.compliance_report(
        session, principal, scope, _aware(start) or _default_start(), _aware(end) or utcnow()
    )
    if format == "csv":
        return Response(
            compliance.to_csv(data),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="compliance-{scope}.csv"'},
        )
    return ReportOut(**data)


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=utcnow().tzinfo)
    return value


@router.get(
    "/lineage/forwarding",
    summary="State of the forwarding to an external OpenLineage endpoint",
    dependencies=[Requires(Permission.LINEAGE_READ)],
)
def forwarding(session: DbSession, settings: SettingsDep) -> dict[str, Any]:
    return forward.status(session, reveal(settings.lineage.forward_url))


# exports airlock ---------------------------------------------------------------------------


class ExportIn(BaseModel):
    sql: str | None = Field(None, max_length=100_000, description="A query run with your grants")
    path: str | None = Field(None, max_length=1000, description="A file relative to your workspace home")
    workspace: RecordId | None = Field(
        None, description="The workspace whose home holds `path` (default: the one of yours that has it)"
    )
    purpose: Purpose
    destination: Destination
    format: Literal["csv", "parquet", "arrow"] = "csv"
    project: AccountName | None = None


def _runner(request: Request, settings: SettingsDep) -> exports.QueryRunner:
    return exports.QueryRunner(request.app.state.planner, settings.query.limits())


@exports_router.post(
    "/exports",
    summary="Request an export (a query result or a workspace file)",
    status_code=201,
    dependencies=[Requires(Permission.EXPORTS_REQUEST)],
)
def request_export(
    body: ExportIn, request: Request, principal: CurrentPrincipal, session: DbSession, settings: SettingsDep
) -> ExportOut:
    export = exports.request_export(
        session,
        principal,
        settings,
        purpose=body.purpose,
        destination=body.destination,
        sql=body.sql,
        path=body.path,
        workspace=body.workspace,
        format=body.format,
        project=body.project,
        runner=_runner(request, settings),
    )
    return ExportOut.of(export)


@exports_router.get(
    "/exports", summary="Your export requests", dependencies=[Requires(Permission.EXPORTS_REQUEST)]
)
def my_exports(principal: CurrentPrincipal, session: DbSession) -> list[ExportOut]:
    return [ExportOut.of(x) for x in exports.list_exports(session, principal)]


@exports_router.get(
    "/exports/review",
    summary="Every export request (reviewers)",
    dependencies=[Requires(Permission.EXPORTS_REVIEW)],
)
def all_exports(principal: CurrentPrincipal, session: DbSession, state: str | None = None) -> list[ExportOut]:
    return [
        ExportOut.of(x, reviewer=True)
        for x in exports.list_exports(session, principal, everyone=True, state=state)
    ]


@exports_router.get(
    "/exports/{export_id}/summary",
    summary="The pinned content: first rows, column summary, risk or smallest cell (reviewers)",
    dependencies=[Requires(Permission.EXPORTS_REVIEW)],
)
def summary(
    export_id: RecordId,
    request: Request,
    principal: CurrentPrincipal,
    session: DbSession,
    settings: SettingsDep,
    qi: list[str] = Query(default_factory=list, description="Quasi-identifier columns"),
    count_column: str | None = Query(None, description="The column holding each row's count"),
) -> dict[str, Any]:
    return exports.summarize(session, principal, settings, export_id, qi, count_column)


@exports_router.post(
    "/exports/{export_id}/decision",
    summary="Approve or deny an export request",
    dependencies=[Requires(Permission.EXPORTS_REVIEW)],
)
def decide(
    export_id: RecordId,
    body: ReviewIn,
    request: Request,
    principal: CurrentPrincipal,
    session: DbSession,
    settings: SettingsDep,
) -> ExportOut:
    export = exports.decide(
        session,
        principal,
        settings,
        export_id,
        approve=body.decision == "approve",
        runner=_runner(request, settings),
        note=body.note or "",
        quasi_identifiers=body.quasi_identifiers,
        count_column=body.count_column,
        override_reason=body.override_reason,
    )
    return ExportOut.of(export, reviewer=True)


@exports_router.post(
    "/exports/{export_id}/download",
    summary="Download an approved export: exactly the reviewed bytes, once (then deleted)",
    dependencies=[Requires(Permission.EXPORTS_REQUEST)],
)
def download(export_id: RecordId, principal: CurrentPrincipal, session: DbSession) -> Response:
    content, filename = exports.download(session, principal, export_id)
    return Response(
        content,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )
