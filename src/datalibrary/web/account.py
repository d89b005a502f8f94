"""``/account``: the caller's roles, groups, projects and personal API tokens (a new token's
secret is shown once, on the page that created it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from datalibrary.auth import service
from datalibrary.auth.permissions import Permission, Principal
from datalibrary.bounds import RecordId
from datalibrary.http.deps import DbSession
from datalibrary.web.forms import attempt
from datalibrary.web.guards import allowed
from datalibrary.web.pages import page_for, page_with
from datalibrary.web.rendering import render

router = APIRouter(include_in_schema=False)


def _page(
    request: Request, session: DbSession, principal: Principal, status: int = 200, **data: object
) -> Response:
    page = page_for(request, session, principal, "Your account", active="account")
    tokens = (
        service.list_tokens(session, principal, principal.name)
        if principal.can(Permission.TOKENS_OWN)
        else []
    )
    errors = data.pop("errors", {})
    page.errors.update(errors)  # type: ignore[arg-type]
    data.setdefault("form", {"name": "", "expires_days": "90"})
    return render(request, "account.html", page_with(page, tokens=tokens, **data), status_code=status)


@router.get("/account")
def account(
    request: Request, session: DbSession, principal: Annotated[Principal, allowed(Permission.CONSOLE_VIEW)]
) -> Response:
    return _page(request, session, principal)


@router.post("/account/tokens")
def create_token(
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, allowed(Permission.TOKENS_OWN)],
    name: Annotated[str, Form()] = "",
    expires_days: Annotated[str, Form()] = "90",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    errors: dict[str, str] = {}
    form = {"name": name, "expires_days": expires_days}
    if not name.strip() or len(name) > 100:
        errors["name"] = "Give the token a name of 1 to 100 characters (e.g. 'laptop')."
    if not expires_days.isdigit() or not 1 <= int(expires_days) <= 3650:
        errors["expires"] = "Enter a number of days between 1 and 3650."
    issued = None
    if not errors:
        issued = attempt(
            session,
            principal,
            csrf_token,
            lambda: service.create_token(
                session, principal, principal.name, name=name.strip(), expires_days=int(expires_days)
            ),
            errors,
        )
    if issued is None:
        return _page(request, session, principal, status=422, errors=errors, form=form)
    session.flush()
    return _page(request, session, principal, status=201, issued=issued)


@router.post("/account/tokens/{token_id}/revoke")
def revoke_token(
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, allowed(Permission.TOKENS_OWN)],
    token_id: RecordId,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    errors: dict[str, str] = {}
    if attempt(
        session, principal, csrf_token, lambda: service.revoke_token(session, principal, token_id), errors
    ):
        return RedirectResponse("/account?revoked=1", status_code=303)
    return _page(request, session, principal, status=422, errors=errors)
