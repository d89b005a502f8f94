"""Console pages. Each page resolves the caller, checks the section's permission and
renders a ``PageContext``; the domain services are the same ones the API calls."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from datalibrary.auth import login as login_service
from datalibrary.auth import service as auth_service
from datalibrary.auth.permissions import Principal
from datalibrary.errors import ALL_ERRORS, NotAuthenticated, PermissionDenied, TooManyRequests, Unavailable
from datalibrary.http.deps import (
    SESSION_COOKIE,
    DbSession,
    OptionalPrincipal,
    SettingsDep,
    client_address,
    set_session_cookie,
)
from datalibrary.web.rendering import PageContext, render

router = APIRouter(include_in_schema=False)
LOGIN_CSRF_COOKIE = "dl_login_csrf"


def safe_next(target: str | None) -> str:
    """Only same-site paths: never an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={target}", status_code=303)


def page_for(
    request: Request, session: DbSession, principal: Principal, title: str, active: str = ""
) -> PageContext:
    csrf = auth_service.csrf_token_for(session, principal.session_id) if principal.session_id else ""
    return PageContext(title=title, principal=principal, csrf_token=csrf, active=active)


def check_csrf_form(session: DbSession, principal: Principal, submitted: str) -> None:
    expected = auth_service.csrf_token_for(session, principal.session_id or "")
    if not secrets.compare_digest(submitted or "", expected):
        raise PermissionDenied("the form expired or did not come from this site; reload and retry")


@router.get("/")
def home(request: Request, session: DbSession, principal: OptionalPrincipal) -> Response:
    if principal is None:
        return login_redirect(request)
    return render(request, "home.html", page_for(request, session, principal, "Home"))


@router.get("/login")
def login_form(request: Request, principal: OptionalPrincipal, next: str = "/") -> Response:
    if principal is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    csrf = secrets.token_urlsafe(24)
    page = PageContext(title="Sign in", csrf_token=csrf, data={"next": safe_next(next), "name": ""})
    response = render(request, "login.html", page)
    response.set_cookie(LOGIN_CSRF_COOKIE, csrf, httponly=True, samesite="strict", path="/login")
    return response


@router.post("/login")
def login_submit(
    request: Request,
    session: DbSession,
    settings: SettingsDep,
    name: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    errors: dict[str, str] = {}
    status = 400
    if not name.strip():
        errors["name"] = "Enter your user name."
    if not password:
        errors["password"] = "Enter your password."  # noqa: S105
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not secrets.compare_digest(cookie, csrf_token):
        errors["form"] = "The sign-in form expired; please try again."
        status = 401
    if not errors:
        try:
            issued = login_service.password_login(
                session, settings, name.strip(), password, client=client_address(request)
            )
        except (NotAuthenticated, TooManyRequests, Unavailable) as exc:
            errors["form"] = exc.detail
            status = exc.status
        else:
            response = RedirectResponse(safe_next(next), status_code=303)
            set_session_cookie(response, issued.secret, settings)
            response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
            return response
    fresh = secrets.token_urlsafe(24)
    page = PageContext(
        title="Sign in", csrf_token=fresh, errors=errors, data={"next": safe_next(next), "name": name}
    )
    response = render(request, "login.html", page, status_code=status if "form" in errors else 400)
    response.set_cookie(LOGIN_CSRF_COOKIE, fresh, httponly=True, samesite="strict", path="/login")
    return response


@router.post("/logout")
def logout(
    request: Request,
    session: DbSession,
    principal: OptionalPrincipal,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    if principal is not None:
        check_csrf_form(session, principal, csrf_token)
        login_service.logout(session, principal, client=client_address(request))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/problems/{slug}")
def problem_type(request: Request, slug: str, principal: OptionalPrincipal) -> HTMLResponse:
    descriptions = {err.slug: err.title for err in ALL_ERRORS}
    descriptions.setdefault("internal-error", "Internal error")
    page = PageContext(title=f"Problem: {slug}", principal=principal)
    return render(
        request,
        "problem.html",
        page_with(page, slug=slug, description=descriptions.get(slug, "Unknown problem type.")),
        status_code=200 if slug in descriptions else 404,
    )


def page_with(page: PageContext, **data: object) -> PageContext:
    page.data.update(data)
    return page
