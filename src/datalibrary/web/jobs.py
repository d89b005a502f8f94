"""The jobs page: every ingestion job (or only one's own), its state, progress and reason, with
Cancel for queued or running jobs and Retry for ended ones. A shell: ``/static/jobs.js`` polls
the same job API (``/api/v1/ingest/jobs``) and acts through it, like the CLI."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from datalibrary.auth.permissions import Permission
from datalibrary.http.deps import DbSession
from datalibrary.ingest.models import JOB_STATES
from datalibrary.web.guards import SignedIn
from datalibrary.web.pages import page_for, page_with
from datalibrary.web.rendering import render

router = APIRouter(include_in_schema=False)


@router.get("/jobs")
def jobs_page(request: Request, session: DbSession, principal: SignedIn) -> Response:
    page = page_for(request, session, principal, "Jobs", active="jobs")
    if not principal.can(Permission.INGEST_RUN):
        page.title = "Not allowed"
        detail = "Your roles do not include ingesting files, so you have no ingestion jobs to follow."
        return render(request, "error.html", page_with(page, detail=detail), 403)
    return render(request, "jobs.html", page_with(page, states=JOB_STATES, me=principal.name))
