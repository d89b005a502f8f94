"""Placeholder pages for sections whose capability is not built yet: they say what the
section will do. Included after every domain's page router, so a real page wins."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from datalibrary.api.deps import DbSession, OptionalPrincipal
from datalibrary.web.pages import login_redirect, page_for, page_with
from datalibrary.web.rendering import render
from datalibrary.web.sections import BY_SLUG

router = APIRouter(include_in_schema=False)


def section_page(slug: str):  # type: ignore[no-untyped-def]
    """A placeholder page for a section whose capability is not built yet."""
    section = BY_SLUG[slug]

    def show(request: Request, session: DbSession, principal: OptionalPrincipal) -> Response:
        if principal is None:
            return login_redirect(request)
        page = page_for(request, session, principal, section.title, active=slug)
        if not principal.can(section.permission):
            page.title = "Not allowed"
            return render(
                request,
                "error.html",
                page_with(page, detail=f"Your roles do not include access to {section.title}."),
                status_code=403,
            )
        return render(request, "section.html", page_with(page, section=section))

    show.__name__ = f"section_{slug}"
    return show


for _slug in BY_SLUG:
    router.add_api_route(f"/{_slug}", section_page(_slug), methods=["GET"])
