"""File collection pages (under Catalog): the collections you may see, a collection's files
with their de-identified metadata, its quarantine. Downloads go through the API (audited)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from datalibrary.auth.permissions import Permission
from datalibrary.errors import DataLibraryError
from datalibrary.files import service, views
from datalibrary.files.dicom import BURNED_IN_MODALITIES, BURNED_IN_SOP_CLASSES, METHOD_CODES
from datalibrary.files.profile import load_profile
from datalibrary.http.deps import DbSession, SettingsDep
from datalibrary.web.guards import SignedIn
from datalibrary.web.pages import page_for, page_with
from datalibrary.web.rendering import render

router = APIRouter(include_in_schema=False)


@router.get("/collections")
def collections_page(
    request: Request, session: DbSession, settings: SettingsDep, principal: SignedIn, name: str = ""
) -> Response:
    page = page_for(request, session, principal, "File collections", active="catalog")
    if not principal.can(Permission.CATALOG_READ):
        page.title = "Not allowed"
        return render(
            request, "error.html", page_with(page, detail="Your roles do not include the catalog."), 403
        )
    access_of = service.grants_of(session, principal)
    collections = service.list_collections(session, principal, access_of)
    chosen = next((c for c in collections if c["name"] == name.strip()), None)
    files: list[dict] = []
    quarantined: list[dict] = []
    problem = ""
    if chosen is not None:
        try:
            files = service.list_files(session, principal, settings, chosen["name"], access_of)
        except DataLibraryError as exc:
            problem = exc.detail
        if principal.can(Permission.INGEST_RUN):
            quarantined = service.quarantined(session, principal, chosen["name"])
    return render(
        request,
        "collections.html",
        page_with(
            page,
            collections=collections,
            chosen=chosen,
            files=files,
            quarantined=quarantined,
            problem=problem,
            edition=load_profile().edition,
            method_codes=METHOD_CODES,
        ),
    )


@router.get("/collections/file")
def file_page(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    principal: SignedIn,
    name: str = "",
    path: str = "",
    version: int | None = None,
) -> Response:
    """One file: its metadata, a thumbnail where safe, and what the profile did to each attribute."""
    page = page_for(request, session, principal, "File", active="catalog")
    access_of = service.grants_of(session, principal)
    try:
        found = views.attribute_actions(
            session, principal, settings, name.strip(), path.strip(), access_of, version=version
        )
        meta = next(
            (f for f in service.list_files(session, principal, settings, name.strip(), access_of)
             if f["path"] == found["path"]),
            None,
        )  # fmt: skip
    except DataLibraryError as exc:
        page.title = "Not found"
        return render(request, "error.html", page_with(page, detail=exc.detail), exc.status)
    meta = meta if meta is not None and meta["version"] == found["version"] else {}
    modality = (meta.get("modality") or "").upper()
    sop_class = meta.get("sop_class_uid") or ""
    page.title = found["path"]
    return render(
        request,
        "collection_file.html",
        page_with(
            page,
            collection=name.strip(),
            file=found,
            meta=meta,
            may_thumbnail=bool(meta)
            and modality not in BURNED_IN_MODALITIES
            and sop_class not in BURNED_IN_SOP_CLASSES,
        ),
    )
