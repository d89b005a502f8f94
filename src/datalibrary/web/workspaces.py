"""The Workspaces page: launch a product, watch and drive your workspaces, see the catalog.
The page renders the catalog and the list; ``workspaces.js`` calls the API to act and polls
for state changes (and idle-stop warnings)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from datalibrary.auth.permissions import Permission, Principal
from datalibrary.costs import budgets
from datalibrary.errors import PermissionDenied
from datalibrary.http.deps import DbSession, SettingsDep
from datalibrary.web.guards import SignedIn, allowed
from datalibrary.web.pages import page_for, page_with
from datalibrary.web.rendering import render
from datalibrary.workspaces import access, history, origin, schemas, service

router = APIRouter(include_in_schema=False)


@router.get("/workspaces")
def workspaces_page(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    principal: Annotated[
        Principal, allowed(Permission.WORKSPACES_OWN, "Your roles do not include workspaces.")
    ],
) -> Response:
    page = page_for(request, session, principal, "Workspaces", active="workspaces")
    page.notice = " ".join(budgets.notices(session, principal))
    rows = service.list_workspaces(session, principal)
    owners = service.owner_names(session, rows)
    return render(
        request,
        "workspaces.html",
        page_with(
            page,
            catalog=schemas.catalog_view(principal, settings, session),
            workspaces=[schemas.workspace_view(w, owners.get(w.owner_id, "?"), settings) for w in rows],
            history=[
                schemas.history_view(e) for e in history.history(session, principal, settings, limit=50)
            ],
        ),
    )


@router.get("/workspaces/{workspace_id}/open")
@router.get("/workspaces/{workspace_id}/lab")
def open_workspace(
    workspace_id: int,
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    principal: SignedIn,
) -> Response:
    """Enter a workspace on its own origin. A signed-in browser gets a one-time grant (60 s,
    this workspace, this console session) and is sent to the workspace origin, which swaps it
    for its own cookie; a workspace not running yet gets a page on the console that waits for
    it (and then comes back here); an API client gets the address to call with its token."""
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise PermissionDenied("open workspaces from the console")
    workspace = access.can_open(session, principal, workspace_id)
    base = origin.workspace_origin(settings, workspace.id, request.url.port)
    if principal.via != "session" or principal.session_id is None:
        return JSONResponse(
            {"workspace_id": workspace.id, "origin": base, "url": f"{base}/workspaces/{workspace.id}/lab"}
        )
    if workspace.state != "running":
        page = page_for(
            request, session, principal, f"Opening workspace #{workspace.id}", active="workspaces"
        )
        response = render(request, "workspace_opening.html", page_with(page, workspace=workspace))
        response.headers["Cache-Control"] = "no-store"
        return response
    grant = origin.mint_grant(settings, workspace.id, principal.session_id)
    target = f"{base}{origin.ENTER_PATH}?{urlencode({'grant': grant})}"
    return RedirectResponse(target, status_code=303, headers={"Cache-Control": "no-store"})
