"""The policy editor page (under Catalog): YAML with validation and a preview on sample rows.

The page is a shell; ``/static/policies.js`` calls ``/api/v1/policies/validate``,
``/preview`` and ``POST /api/v1/policies`` like every other client.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from datalibrary.auth.permissions import Permission
from datalibrary.errors import NotFound
from datalibrary.http.deps import DbSession
from datalibrary.privacy.store import list_policies, load_policy
from datalibrary.web.guards import SignedIn
from datalibrary.web.pages import page_for, page_with
from datalibrary.web.rendering import render

router = APIRouter(include_in_schema=False)


@router.get("/catalog/policies")
def policies_page(request: Request, session: DbSession, principal: SignedIn, name: str = "") -> Response:
    page = page_for(request, session, principal, "Policies", active="catalog")
    if not principal.can(Permission.POLICIES_MANAGE):
        page.title = "Not allowed"
        return render(
            request, "error.html", page_with(page, detail="Your roles do not include managing policies."), 403
        )
    stored = list_policies(session, principal)
    names = sorted({p.name for p in stored})
    chosen = name.strip()[:100] or ("sdtm" if "sdtm" in names else (names[0] if names else ""))
    document = ""
    if chosen:
        try:
            document = load_policy(session, chosen).document
        except NotFound:
            document = ""
    return render(
        request,
        "policies.html",
        page_with(page, policies=stored, names=names, chosen=chosen, document=document),
    )
