"""Catalog pages: the dataset list (search, tags, quarantine) and a dataset's page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from datalibrary.access import service as access
from datalibrary.access.service import catalog_visibility
from datalibrary.auth.permissions import Permission, Principal
from datalibrary.errors import InvalidInput, NotFound
from datalibrary.http.deps import DbSession, SettingsDep
from datalibrary.ingest.jobs import job_dict, list_jobs
from datalibrary.lake.catalog import open_lake
from datalibrary.lake.datasets import list_datasets, show_dataset
from datalibrary.web.guards import SignedIn
from datalibrary.web.pages import page_for, page_with
from datalibrary.web.rendering import render

router = APIRouter(include_in_schema=False)


def _refused(request: Request, page, status: int, detail: str) -> Response:  # type: ignore[no-untyped-def]
    page.title = "Not allowed" if status == 403 else "Not found"
    return render(request, "error.html", page_with(page, detail=detail), status_code=status)


@router.get("/catalog")
def catalog(
    request: Request,
    session: DbSession,
    principal: SignedIn,
    settings: SettingsDep,
    q: str = "",
    tag: str = "",
) -> Response:
    page = page_for(request, session, principal, "Catalog", active="catalog")
    if not principal.can(Permission.CATALOG_READ):
        return _refused(request, page, 403, "Your roles do not include access to the catalog.")
    q, tag = q.strip()[:200], tag.strip()[:40]
    visible = catalog_visibility(session, principal)
    lake = open_lake(settings)
    rows = list_datasets(session, principal, lake, search=q or None, tag=tag or None, visible=visible)
    every = list_datasets(session, principal, lake, visible=visible) if (q or tag) else rows
    tags = sorted({t for row in every for t in row["tags"]})
    can_ingest = principal.can(Permission.INGEST_RUN)
    jobs = [job_dict(j) for j in list_jobs(session, principal, limit=10)] if can_ingest else []
    quarantine = (
        [job_dict(j) for j in list_jobs(session, principal, state="quarantined", limit=50)]
        if can_ingest
        else []
    )
    return render(
        request,
        "catalog.html",
        page_with(
            page,
            datasets=rows,
            granted=_granted(session, principal, rows),
            can_request=principal.can(Permission.ACCESS_REQUEST),
            tags=tags,
            q=q,
            tag=tag,
            jobs=jobs,
            quarantine=quarantine,
            can_ingest=can_ingest,
        ),
    )


@router.get("/catalog/{namespace}/{table}")
def dataset(
    request: Request,
    namespace: str,
    table: str,
    session: DbSession,
    principal: SignedIn,
    settings: SettingsDep,
) -> Response:
    page = page_for(request, session, principal, f"{namespace}.{table}", active="catalog")
    if not principal.can(Permission.CATALOG_READ):
        return _refused(request, page, 403, "Your roles do not include access to the catalog.")
    try:
        visible = catalog_visibility(session, principal)
        data = show_dataset(session, principal, open_lake(settings), f"{namespace}.{table}", visible=visible)
    except (NotFound, InvalidInput) as exc:
        return _refused(request, page, 404, exc.detail)
    page.title = data["title"] or data["name"]
    granted = _granted(session, principal, [data])
    return render(
        request,
        "dataset.html",
        page_with(page, d=data, granted=granted, can_request=principal.can(Permission.ACCESS_REQUEST)),
    )


def _granted(session: DbSession, principal: Principal, rows: list[dict]) -> set[str]:  # type: ignore[type-arg]
    """The datasets among ``rows`` the caller may already query (no "Request access" for those)."""
    found: set[str] = set()
    if not principal.can(Permission.QUERY_RUN):
        return found
    for row in rows:
        namespace, _, table = row["name"].partition(".")
        if access.effective_access(session, principal, namespace, table) is not None:
            found.add(row["name"])
    return found
