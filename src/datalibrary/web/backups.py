"""The Backups page (``backups.manage``): the backups taken so far and a button to take one.
Restoring is an operator's CLI command (docs/how-to/backup.md), so the page says how."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from datalibrary.auth.permissions import Permission, Principal
from datalibrary.backup import service
from datalibrary.http.deps import DatabaseDep, DbSession, SettingsDep
from datalibrary.web.forms import attempt, form_page
from datalibrary.web.guards import allowed
from datalibrary.web.pages import page_with
from datalibrary.web.rendering import render

router = APIRouter(include_in_schema=False)


def _show(request, session, principal, settings, status: int = 200, **data: object) -> Response:  # type: ignore[no-untyped-def]
    page = form_page(request, session, principal, "Backups")
    page.errors.update(data.pop("errors", {}))  # type: ignore[arg-type]
    return render(
        request,
        "admin/backups.html",
        page_with(
            page,
            backups=service.list_backups(settings, principal),
            directory=str(service.backups_dir(settings)),
            sealing=settings.backup.passphrase_file is not None,
            **data,
        ),
        status_code=status,
    )


@router.get("/admin/backups")
def backups_page(
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, allowed(Permission.BACKUPS_MANAGE)],
    settings: SettingsDep,
) -> Response:
    return _show(request, session, principal, settings)


@router.post("/admin/backups")
def take_backup(
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, allowed(Permission.BACKUPS_MANAGE)],
    settings: SettingsDep,
    db: DatabaseDep,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    errors: dict[str, str] = {}
    done = attempt(
        session, principal, csrf_token, lambda: service.create_backup(settings, db, principal), errors
    )
    if done is None:
        return _show(request, session, principal, settings, status=422, errors=errors)
    return RedirectResponse(f"/admin/backups?taken={done['id']}", status_code=303)
