"""The Query page: table browser, SQL editor, results grid, downloads, history.

The page is a shell; ``/static/query.js`` talks to the same API as every other client.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from datalibrary.api.deps import DbSession, OptionalPrincipal
from datalibrary.auth.permissions import Permission
from datalibrary.web.pages import login_redirect, page_for, page_with
from datalibrary.web.rendering import render

router = APIRouter(include_in_schema=False)


@router.get("/query")
def query_page(request: Request, session: DbSession, principal: OptionalPrincipal) -> Response:
    if principal is None:
        return login_redirect(request)
    page = page_for(request, session, principal, "Query", active="query")
    if not principal.can(Permission.QUERY_RUN):
        page.title = "Not allowed"
        return render(
            request, "error.html", page_with(page, detail="Your roles do not include running queries."), 403
        )
    projects = sorted(getattr(principal, "projects", frozenset()))
    return render(request, "query.html", page_with(page, projects=projects))
