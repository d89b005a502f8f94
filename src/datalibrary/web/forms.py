"""Helpers for server-rendered forms: guard a page by permission, run a domain action and
turn its error into a message next to the field it names (``InvalidInput(field=...)``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from datalibrary.auth.permissions import Permission, Principal
from datalibrary.errors import DataLibraryError, PermissionDenied
from datalibrary.web.pages import check_csrf_form, login_redirect, page_for, page_with
from datalibrary.web.rendering import PageContext, render

T = TypeVar("T")


def denied(request: Request, session: Session, principal: Principal, detail: str) -> Response:
    page = page_for(request, session, principal, "Not allowed")
    return render(request, "error.html", page_with(page, detail=detail), status_code=403)


def guard(
    request: Request, session: Session, principal: Principal | None, permission: Permission
) -> Response | None:
    """A response to return instead of the page (sign in, or 403), or None when allowed."""
    if principal is None:
        return login_redirect(request)
    if not principal.can(permission):
        return denied(request, session, principal, "Your roles do not allow this page.")
    return None


def attempt(
    session: Session, principal: Principal, csrf_token: str, action: Callable[[], T], errors: dict[str, str]
) -> T | None:
    """Check the form's CSRF token, run ``action``; on a domain error roll back and record the
    message under its field (or ``form``). Returns the action's result or None."""
    try:
        check_csrf_form(session, principal, csrf_token)
        return action()
    except PermissionDenied:
        session.rollback()
        raise
    except DataLibraryError as exc:
        session.rollback()
        errors[str(exc.extra.get("field") or "form")] = exc.detail
        return None


def form_page(
    request: Request, session: Session, principal: Principal, title: str, active: str = "admin"
) -> PageContext:
    return page_for(request, session, principal, title, active=active)
