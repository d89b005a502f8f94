"""The Query page: table browser, SQL editor, results grid, downloads, history.

The page is a shell; ``/static/query.js`` talks to the same API as every other client.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from datalibrary.auth.permissions import Permission
from datalibrary.http.deps import DbSession
from datalibrary.web.guards import SignedIn
from datalibrary.web.pages import page_for, page_with
from datalibrary.web.rendering import render

router = APIRouter(include_in_schema=False)


@router.get("/query")
def query_page(request: Request, session: DbSession, principal: SignedIn) -> Response:
    page = page_for(request, session, principal, "Query", active="query")
    if not principal.can(Permission.QUERY_RUN):
        page.title = "Not allowed"
        return render(
            request, "error.html", page_with(page, detail="Your roles do not include running queries."), 403
        )
    projects = sorted(getattr(principal, "projects", frozenset()))
    return render(request, "query.html", page_with(page, projects=projects))
