"""The Warm pool page (``workspaces.admin``): what the pool keeps ready per environment and
instance type, its members, and a button to refill it now. Members are platform cost."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from datalibrary.api.deps import DatabaseDep, DbSession, OptionalPrincipal, SettingsDep
from datalibrary.auth.permissions import Permission
from datalibrary.web.forms import form_page, guard
from datalibrary.web.pages import check_csrf_form, page_with
from datalibrary.web.rendering import render
from datalibrary.workspaces import pool

router = APIRouter(include_in_schema=False)


@router.get("/admin/workspace-pool")
def pool_page(
    request: Request, session: DbSession, principal: OptionalPrincipal, settings: SettingsDep
) -> Response:
    if (stop := guard(request, session, principal, Permission.WORKSPACES_ADMIN)) is not None:
        return stop
    assert principal is not None
    page = form_page(request, session, principal, "Warm pool")
    return render(
        request, "admin/workspace_pool.html", page_with(page, pool=pool.status(session, principal, settings))
    )


@router.post("/admin/workspace-pool/refill")
async def pool_refill(
    request: Request,
    session: DbSession,
    principal: OptionalPrincipal,
    settings: SettingsDep,
    db: DatabaseDep,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    if (stop := guard(request, session, principal, Permission.WORKSPACES_ADMIN)) is not None:
        return stop
    assert principal is not None
    check_csrf_form(session, principal, csrf_token)  # a refused token is a 403 problem page
    result = await pool.refill(db, settings)
    return RedirectResponse(
        f"/admin/workspace-pool?started={result['started']}&discarded={result['discarded']}", status_code=303
    )
