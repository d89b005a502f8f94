"""The Access section: a scientist requests access and follows the outcome; stewards
decide requests (with restrictions and expiry) and manage grants. Plain forms that post
back with the CSRF token; domain errors show next to their field."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from datalibrary.access import service
from datalibrary.api.deps import DbSession, OptionalPrincipal, SettingsDep
from datalibrary.auth.permissions import Permission, Principal
from datalibrary.bounds import RecordId
from datalibrary.errors import InvalidInput
from datalibrary.web.forms import attempt, form_page, guard
from datalibrary.web.pages import page_with
from datalibrary.web.rendering import render

router = APIRouter(include_in_schema=False)
Text = Annotated[str, Form()]


def _date(value: str, field: str = "expires") -> datetime | None:
    if not value.strip():
        return None
    try:
        return datetime.fromisoformat(value.strip()).replace(tzinfo=UTC)
    except ValueError:
        raise InvalidInput("enter a date like 2027-01-31", field=field) from None


def _table(value: str) -> tuple[str, str | None]:
    namespace, _, table = value.strip().partition(".")
    if not namespace:
        raise InvalidInput("name a dataset as NAMESPACE.TABLE (or NAMESPACE.* for all of it)", field="table")
    return namespace, None if table in ("", "*") else table


def _masks(value: str) -> dict[str, str]:
    masks = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        column, _, spec = item.partition("=")
        masks[column.strip()] = spec.strip() or "null"
    return masks


def _columns(value: str) -> list[str] | None:
    columns = [c.strip() for c in value.split(",") if c.strip()]
    return columns or None


def _requests_page(
    request: Request, session: DbSession, principal: Principal, status: int = 200, **data: object
) -> Response:
    page = form_page(request, session, principal, "Access", active="access")
    page.errors.update(data.pop("errors", {}))  # type: ignore[arg-type]
    data.setdefault(
        "form", {"table": request.query_params.get("table", ""), "justification": "", "project": ""}
    )
    mine = service.list_requests(session, principal, mine=True)
    pending = (
        service.list_requests(session, principal, state="pending")
        if principal.can(Permission.ACCESS_REVIEW)
        else []
    )
    pending = [r for r in pending if r.requester != principal.name]
    projects = sorted(getattr(principal, "projects", frozenset()))
    return render(
        request,
        "access/requests.html",
        page_with(page, mine=mine, pending=pending, projects=projects, **data),
        status,
    )


@router.get("/access")
def requests(request: Request, session: DbSession, principal: OptionalPrincipal) -> Response:
    if (stop := guard(request, session, principal, Permission.CATALOG_READ)) is not None:
        return stop
    assert principal is not None
    return _requests_page(request, session, principal)


@router.post("/access/requests")
def create_request(
    request: Request,
    session: DbSession,
    principal: OptionalPrincipal,
    settings: SettingsDep,
    csrf_token: Text = "",
    table: Text = "",
    justification: Text = "",
    project: Text = "",
) -> Response:
    if (stop := guard(request, session, principal, Permission.ACCESS_REQUEST)) is not None:
        return stop
    assert principal is not None
    errors: dict[str, str] = {}

    def create():  # type: ignore[no-untyped-def]
        namespace, name = _table(table)
        return service.request_access(
            session,
            principal,
            namespace=namespace,
            table=name,
            justification=justification,
            project=project or None,
            columns_of=service.lake_columns(settings),
        )

    if attempt(session, principal, csrf_token, create, errors) is not None:
        return RedirectResponse("/access?sent=1", status_code=303)
    form = {"table": table, "justification": justification, "project": project}
    return _requests_page(request, session, principal, 422, errors=errors, form=form)


@router.post("/access/requests/{request_id}/decision")
def decide(
    request_id: RecordId,
    request: Request,
    session: DbSession,
    principal: OptionalPrincipal,
    settings: SettingsDep,
    csrf_token: Text = "",
    decision: Text = "",
    note: Text = "",
    columns: Text = "",
    masks: Text = "",
    row_filter: Text = "",
    expires: Text = "",
) -> Response:
    if (stop := guard(request, session, principal, Permission.ACCESS_REVIEW)) is not None:
        return stop
    assert principal is not None
    errors: dict[str, str] = {}

    def run():  # type: ignore[no-untyped-def]
        return service.decide_request(
            session, principal, request_id, approve=decision == "approve", note=note or None,
            columns=_columns(columns), masks=_masks(masks), row_filter=row_filter or None,
            expires_at=_date(expires), columns_of=service.lake_columns(settings),
        )  # fmt: skip

    if attempt(session, principal, csrf_token, run, errors) is not None:
        outcome = "approved" if decision == "approve" else "denied"
        return RedirectResponse(f"/access?decided={request_id}&outcome={outcome}", status_code=303)
    errors = {f"{request_id}-{k}": v for k, v in errors.items()}
    return _requests_page(request, session, principal, 422, errors=errors)


# --- grants ------------------------------------------------------------------------------


def _grants_page(
    request: Request, session: DbSession, principal: Principal, status: int = 200, **data: object
) -> Response:
    page = form_page(request, session, principal, "Grants", active="access")
    page.errors.update(data.pop("errors", {}))  # type: ignore[arg-type]
    data.setdefault(
        "form", {"principal": "", "table": "", "columns": "", "masks": "", "row_filter": "", "expires": ""}
    )
    grants = service.list_grants(session, principal)
    return render(request, "access/grants.html", page_with(page, grants=grants, **data), status)


@router.get("/access/grants")
def grants(request: Request, session: DbSession, principal: OptionalPrincipal) -> Response:
    if (stop := guard(request, session, principal, Permission.CATALOG_READ)) is not None:
        return stop
    assert principal is not None
    return _grants_page(request, session, principal)


@router.post("/access/grants")
def add_grant(
    request: Request,
    session: DbSession,
    principal: OptionalPrincipal,
    settings: SettingsDep,
    csrf_token: Text = "",
    grantee: Annotated[str, Form(alias="principal")] = "",
    table: Text = "",
    columns: Text = "",
    masks: Text = "",
    row_filter: Text = "",
    expires: Text = "",
) -> Response:
    if (stop := guard(request, session, principal, Permission.GRANTS_MANAGE)) is not None:
        return stop
    assert principal is not None
    errors: dict[str, str] = {}

    def run():  # type: ignore[no-untyped-def]
        namespace, name = _table(table)
        return service.add_grant(
            session, principal, principal=grantee.strip(), namespace=namespace, table=name,
            columns=_columns(columns), masks=_masks(masks), row_filter=row_filter or None,
            expires_at=_date(expires), columns_of=service.lake_columns(settings),
        )  # fmt: skip

    if attempt(session, principal, csrf_token, run, errors) is not None:
        return RedirectResponse("/access/grants?done=granted", status_code=303)
    form = {
        "principal": grantee, "table": table, "columns": columns, "masks": masks,
        "row_filter": row_filter, "expires": expires,
    }  # fmt: skip
    return _grants_page(request, session, principal, 422, errors=errors, form=form)


@router.post("/access/grants/{grant_id}/revoke")
def revoke_grant(
    grant_id: RecordId,
    request: Request,
    session: DbSession,
    principal: OptionalPrincipal,
    csrf_token: Text = "",
) -> Response:
    if (stop := guard(request, session, principal, Permission.GRANTS_MANAGE)) is not None:
        return stop
    assert principal is not None
    errors: dict[str, str] = {}
    if attempt(
        session, principal, csrf_token, lambda: service.revoke_grant(session, principal, grant_id), errors
    ):
        return RedirectResponse("/access/grants?done=revoked", status_code=303)
    return _grants_page(request, session, principal, 422, errors=errors)
