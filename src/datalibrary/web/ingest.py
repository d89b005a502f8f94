"""The steward's ingestion page: drop files or archives, watch each job's stage, bytes and
rows live, act on quarantined files. A shell: ``/static/ingest.js`` uses the same chunked
upload and job API as every other client."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from datalibrary.auth.permissions import Permission
from datalibrary.http.deps import DbSession
from datalibrary.privacy.store import list_policies
from datalibrary.web.guards import SignedIn
from datalibrary.web.pages import page_for, page_with
from datalibrary.web.rendering import render

router = APIRouter(include_in_schema=False)


@router.get("/catalog/ingest")
def ingest_page(request: Request, session: DbSession, principal: SignedIn) -> Response:
    page = page_for(request, session, principal, "Ingest files", active="catalog")
    if not principal.can(Permission.INGEST_RUN):
        page.title = "Not allowed"
        detail = "Your roles do not include ingesting files."
        return render(request, "error.html", page_with(page, detail=detail), 403)
    policies = sorted({p.name for p in list_policies(session, principal)})
    return render(request, "ingest.html", page_with(page, policies=policies))
