"""The console's typed page dependencies, like the API's ``Requires``: a page declares
``principal: Annotated[Principal, allowed(Permission.X)]`` (or ``SignedIn``) and its body
runs only for a caller who holds the permission. Anyone else is sent to sign in or shown the
403 page by the handlers ``install`` registers. The domain service checks again."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response

from datalibrary.auth.permissions import Permission, Principal
from datalibrary.http.deps import DbSession, OptionalPrincipal
from datalibrary.web.pages import login_redirect, page_for, page_with
from datalibrary.web.rendering import PageContext, render

DENIED = "Your roles do not allow this page."


class SignInRequired(Exception):
    """An anonymous caller asked for a page: answered with a redirect to the sign-in page."""


class PageDenied(Exception):
    """A signed-in caller lacks the page's permission: answered with the 403 page."""

    def __init__(self, page: PageContext, detail: str) -> None:
        super().__init__(detail)
        self.page = page
        self.detail = detail


def signed_in(principal: OptionalPrincipal) -> Principal:
    if principal is None:
        raise SignInRequired
    return principal


SignedIn = Annotated[Principal, Depends(signed_in)]


@cache
def _checker(permission: Permission, detail: str) -> Callable[..., Principal]:
    def check(request: Request, session: DbSession, principal: SignedIn) -> Principal:
        if not principal.can(permission):
            raise PageDenied(page_for(request, session, principal, "Not allowed"), detail)
        return principal

    check.__name__ = f"page_requires_{permission.value.replace('.', '_')}"
    return check


def allowed(permission: Permission, detail: str = DENIED) -> Any:
    """The page dependency: the signed-in caller, who holds ``permission``."""
    return Depends(_checker(permission, detail))


async def _sign_in(request: Request, exc: Exception) -> Response:
    return login_redirect(request)


async def _denied(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageDenied)
    return render(request, "error.html", page_with(exc.page, detail=exc.detail), status_code=403)


def install(app: FastAPI) -> None:
    app.add_exception_handler(SignInRequired, _sign_in)
    app.add_exception_handler(PageDenied, _denied)
