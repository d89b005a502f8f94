"""The Warm pool page (``workspaces.admin``): what the pool keeps ready per environment and
instance type, its members, and a button to refill it now. Members are platform cost."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from datalibrary.auth.permissions import Permission, Principal
from datalibrary.http.deps import DatabaseDep, DbSession, SettingsDep
from datalibrary.web.forms import form_page
from datalibrary.web.guards import allowed
from datalibrary.web.pages import check_csrf_form, page_with
from datalibrary.web.rendering import render
from datalibrary.workspaces import pool

router = APIRouter(include_in_schema=False)


@router.get("/admin/workspace-pool")
def pool_page(
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, allowed(Permission.WORKSPACES_ADMIN)],
    settings: SettingsDep,
) -> Response:
    page = form_page(request, session, principal, "Warm pool")
    return render(
        request, "admin/workspace_pool.html", page_with(page, pool=pool.status(session, principal, settings))
    )


@router.post("/admin/workspace-pool/refill")
async def pool_refill(
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, allowed(Permission.WORKSPACES_ADMIN)],
    settings: SettingsDep,
    db: DatabaseDep,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    check_csrf_form(session, principal, csrf_token)  # a refused token is a 403 problem page
    result = await pool.refill(db, settings)
    return RedirectResponse(
        f"/admin/workspace-pool?started={result['started']}&discarded={result['discarded']}", status_code=303
    )
