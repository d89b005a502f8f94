"""The Access section: a scientist requests access and follows the outcome; stewards
decide requests (with restrictions and expiry) and manage grants. Plain forms that post
back with the CSRF token; domain errors show next to their field."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from pydantic import BaseModel

from datalibrary.access import service
from datalibrary.access.schemas import GrantOut, RequestOut
from datalibrary.auth.permissions import Permission, Principal
from datalibrary.bounds import RecordId
from datalibrary.errors import InvalidInput
from datalibrary.http.deps import DbSession
from datalibrary.web.forms import Decided, Posted, form_page, posted
from datalibrary.web.guards import allowed
from datalibrary.web.pages import page_with
from datalibrary.web.rendering import render

router = APIRouter(include_in_schema=False)
CatalogReader = Annotated[Principal, allowed(Permission.CATALOG_READ)]


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


class RequestForm(BaseModel):
    """The access request form (also what it shows again after an error)."""

    table: str = ""
    justification: str = ""
    project: str = ""


class Restrictions(BaseModel):
    """What a grant is limited to: columns, masks, a row filter, an expiry date (text fields)."""

    columns: str = ""
    masks: str = ""
    row_filter: str = ""
    expires: str = ""

    def parsed(self) -> dict[str, Any]:
        """The keyword arguments of the access service (``InvalidInput`` names the field)."""
        return {
            "columns": _columns(self.columns), "masks": _masks(self.masks),
            "row_filter": self.row_filter or None, "expires_at": _date(self.expires),
        }  # fmt: skip


class GrantForm(Restrictions):
    principal: str = ""
    table: str = ""


def _requests_page(
    request: Request, session: DbSession, principal: Principal, status: int = 200, **data: object
) -> Response:
    page = form_page(request, session, principal, "Access", active="access")
    page.errors.update(data.pop("errors", {}))  # type: ignore[arg-type]
    data.setdefault(
        "form", {"table": request.query_params.get("table", ""), "justification": "", "project": ""}
    )
    mine = [RequestOut.of(r) for r in service.list_requests(session, principal, mine=True)]
    to_review = (
        service.list_requests(session, principal, state="pending")
        if principal.can(Permission.ACCESS_REVIEW)
        else []
    )
    pending = [RequestOut.of(r) for r in to_review if r.requester != principal.name]
    projects = sorted(getattr(principal, "projects", frozenset()))
    return render(
        request,
        "access/requests.html",
        page_with(page, mine=mine, pending=pending, projects=projects, **data),
        status,
    )


@router.get("/access")
def requests(request: Request, session: DbSession, principal: CatalogReader) -> Response:
    return _requests_page(request, session, principal)


@router.post("/access/requests")
def create_request(
    form: Annotated[Posted, posted(Permission.ACCESS_REQUEST)], fields: Annotated[RequestForm, Form()]
) -> Response:
    def create():  # type: ignore[no-untyped-def]
        namespace, name = _table(fields.table)
        return service.request_access(
            form.session, form.principal, namespace=namespace, table=name,
            justification=fields.justification, project=fields.project or None,
            columns_of=service.lake_columns(form.settings),
        )  # fmt: skip

    return form.submit(create, "/access?sent=1", form.again(_requests_page, form=fields.model_dump()))


@router.post("/access/requests/{request_id}/decision")
def decide(
    request_id: RecordId,
    form: Annotated[Posted, posted(Permission.ACCESS_REVIEW)],
    answer: Decided,
    limits: Annotated[Restrictions, Form()],
) -> Response:
    def run():  # type: ignore[no-untyped-def]
        return service.decide_request(
            form.session, form.principal, request_id, approve=answer.approve, note=answer.note or None,
            columns_of=service.lake_columns(form.settings), **limits.parsed(),
        )  # fmt: skip

    outcome = "approved" if answer.approve else "denied"
    return form.submit(
        run,
        f"/access?decided={request_id}&outcome={outcome}",
        lambda errors: form.again(_requests_page)({f"{request_id}-{k}": v for k, v in errors.items()}),
    )


# --- grants ------------------------------------------------------------------------------


def _grants_page(
    request: Request, session: DbSession, principal: Principal, status: int = 200, **data: object
) -> Response:
    page = form_page(request, session, principal, "Grants", active="access")
    page.errors.update(data.pop("errors", {}))  # type: ignore[arg-type]
    data.setdefault(
        "form", {"principal": "", "table": "", "columns": "", "masks": "", "row_filter": "", "expires": ""}
    )
    grants = [GrantOut.of(g) for g in service.list_grants(session, principal)]
    return render(request, "access/grants.html", page_with(page, grants=grants, **data), status)


@router.get("/access/grants")
def grants(request: Request, session: DbSession, principal: CatalogReader) -> Response:
    return _grants_page(request, session, principal)


@router.post("/access/grants")
def add_grant(
    form: Annotated[Posted, posted(Permission.GRANTS_MANAGE)], fields: Annotated[GrantForm, Form()]
) -> Response:
    def run():  # type: ignore[no-untyped-def]
        namespace, name = _table(fields.table)
        return service.add_grant(
            form.session, form.principal, principal=fields.principal.strip(), namespace=namespace,
            table=name, columns_of=service.lake_columns(form.settings), **fields.parsed(),
        )  # fmt: skip

    return form.submit(run, "/access/grants?done=granted", form.again(_grants_page, form=fields.model_dump()))


@router.post("/access/grants/{grant_id}/revoke")
def revoke_grant(grant_id: RecordId, form: Annotated[Posted, posted(Permission.GRANTS_MANAGE)]) -> Response:
    revoke = lambda: service.revoke_grant(form.session, form.principal, grant_id)  # noqa: E731
    return form.submit(revoke, "/access/grants?done=revoked", form.again(_grants_page))
