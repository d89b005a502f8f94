"""Helpers for server-rendered forms: run a domain action and turn its error into a message
next to the field it names (``InvalidInput(field=...)``). Pages check permissions with the
dependencies of ``web.guards``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from datalibrary.auth.permissions import Permission, Principal
from datalibrary.config import Settings
from datalibrary.errors import DataLibraryError, PermissionDenied
from datalibrary.http.deps import DbSession
from datalibrary.web.guards import allowed
from datalibrary.web.pages import check_csrf_form, page_for
from datalibrary.web.rendering import PageContext

T = TypeVar("T")


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


@dataclass(frozen=True)
class Posted:
    """A form posted by a caller who holds the page's permission, with its CSRF token."""

    request: Request
    session: Session
    principal: Principal
    csrf: str

    @property
    def settings(self) -> Settings:
        return self.request.app.state.settings

    def again(
        self, page: Callable[..., Response], *args: Any, **data: Any
    ) -> Callable[[dict[str, str]], Response]:
        """Show ``page(request, session, principal, *args, 422, errors=..., **data)`` again."""
        return lambda errors: page(
            self.request, self.session, self.principal, *args, 422, errors=errors, **data
        )

    def submit(
        self,
        action: Callable[[], T],
        done: str | Callable[[T], str],
        redisplay: Callable[[dict[str, str]], Response],
    ) -> Response:
        """Run ``action`` (see ``attempt``); redirect to ``done`` (or ``done(result)``) after
        success, or show the form again with the errors next to their fields."""
        errors: dict[str, str] = {}
        result = attempt(self.session, self.principal, self.csrf, action, errors)
        if result is None:
            return redisplay(errors)
        return RedirectResponse(done(result) if callable(done) else done, status_code=303)


@cache
def _poster(permission: Permission) -> Callable[..., Posted]:
    def posted_form(
        request: Request,
        session: DbSession,
        principal: Principal = allowed(permission),
        csrf_token: Annotated[str, Form()] = "",
    ) -> Posted:
        return Posted(request, session, principal, csrf_token)

    return posted_form


def posted(permission: Permission) -> Any:
    """The dependency of a form handler: ``form: Annotated[Posted, posted(Permission.X)]``."""
    return Depends(_poster(permission))


@dataclass(frozen=True)
class Decision:
    """A reviewer's answer on a form (access requests, exports): approve or deny, with a note."""

    approve: bool
    note: str


def _decision(decision: Annotated[str, Form()] = "", note: Annotated[str, Form()] = "") -> Decision:
    return Decision(approve=decision == "approve", note=note)


Decided = Annotated[Decision, Depends(_decision)]
