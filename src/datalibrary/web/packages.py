"""The package mirror page (admins, ``packages.manage``): the mode switch (open mirror or
allow-list only), allow and deny rules (for Python or R), wheels uploaded to the internal
index, R packages published for ``install.packages()``, and the install log (user,
workspace, package, version, time). A shell: ``/static/packages.js`` calls
``/api/v1/packages/...`` like the CLI, and polls the install log."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from datalibrary.auth.permissions import Permission
from datalibrary.http.deps import DbSession
from datalibrary.web.guards import SignedIn
from datalibrary.web.pages import page_for, page_with
from datalibrary.web.rendering import render

router = APIRouter(include_in_schema=False)


@router.get("/packages")
def packages_page(request: Request, session: DbSession, principal: SignedIn) -> Response:
    page = page_for(request, session, principal, "Packages", active="packages")
    if not principal.can(Permission.PACKAGES_MANAGE):
        page.title = "Not allowed"
        detail = "Only admins manage the package mirror (packages.manage)."
        return render(request, "error.html", page_with(page, detail=detail), 403)
    base = str(request.base_url).rstrip("/")
    return render(request, "packages.html", page_with(page, base=base))
