"""Typed dependencies shared by the HTTP front ends (API routes and console pages): settings,
a DB session, the caller. Both front ends import this module; neither imports the other.

``Requires(Permission.X)`` is the router-level check; domain services check again.
Session-cookie callers must send the CSRF token (header ``X-CSRF-Token``) on every
state-changing API request; token callers are not exposed to CSRF.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Annotated

from fastapi import Depends, Request, Response, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from datalibrary.auth import service as auth_service
from datalibrary.auth.permissions import Permission, Principal, require
from datalibrary.config import Settings
from datalibrary.db import Database
from datalibrary.errors import NotAuthenticated, PermissionDenied

SESSION_COOKIE = "dl_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_database(request: Request) -> Database:
    return request.app.state.db


def get_session(request: Request) -> Iterator[Session]:
    with get_database(request).session() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
DbSession = Annotated[Session, Depends(get_session)]


CLIENT_HEADER = "X-DataLibrary-Client"


def authenticate(request: Request, session: Session, settings: Settings) -> Principal | None:
    """The caller from a Bearer token or the session cookie; None when anonymous."""
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise NotAuthenticated("the Authorization header must be 'Bearer <token>'")
        principal = auth_service.principal_from_token(session, secret.strip())
        # A label for audit and lineage, never a right: a token caller may say it is the SDK
        # (Python or R); any other claim ("cli", "system"...) is ignored and it stays "api".
        if request.headers.get(CLIENT_HEADER, "").strip().lower() == "sdk":
            principal = replace(principal, client="sdk")
        return principal
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        return auth_service.principal_from_session(session, cookie, settings.auth)
    return None


def optional_principal(request: Request, session: DbSession, settings: SettingsDep) -> Principal | None:
    try:
        principal = authenticate(request, session, settings)
    except NotAuthenticated:
        principal = None
    request.state.principal = principal
    return principal


# Declares the scheme in OpenAPI; authentication itself happens in ``authenticate``
# (which also accepts the console's session cookie).
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="A personal API token (or the console's session cookie). The scopes listed on "
    "an operation are the permissions it requires.",
)
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]


def current_principal(
    request: Request, session: DbSession, settings: SettingsDep, _: BearerCredentials
) -> Principal:
    principal = authenticate(request, session, settings)
    if principal is None:
        raise NotAuthenticated("sign in or send an API token (Authorization: Bearer ...)")
    if principal.via == "session" and request.method not in SAFE_METHODS:
        expected = auth_service.csrf_token_for(session, principal.session_id or "")
        if request.headers.get(CSRF_HEADER) != expected:
            raise PermissionDenied("missing or wrong CSRF token (send the X-CSRF-Token header)")
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
OptionalPrincipal = Annotated[Principal | None, Depends(optional_principal)]


def Requires(permission: Permission):  # noqa: N802 - reads like a type in route declarations
    """Router/route dependency: the caller must hold ``permission``.

    It is a security dependency, so OpenAPI lists the permission as the operation's scope
    (``security: [{"token": ["audit.read"]}]``) and tests can enumerate it."""

    def check(principal: CurrentPrincipal) -> Principal:
        return require(principal, permission)

    check.__name__ = f"requires_{permission.value.replace('.', '_')}"
    return Security(check, scopes=[permission.value])


def set_session_cookie(response: Response, secret: str, settings: Settings) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=settings.auth.session_absolute_hours * 3600,
        httponly=True,
        samesite="lax",
        secure=settings.server.https,
        path="/",
    )


def client_address(request: Request) -> str | None:
    """The caller's address for audit and sign-in throttling. Over the platform's Unix socket
    (what sandboxes reach) there is none: those callers are throttled as one client,
    ``unix-socket``, so guessing passwords from a workspace hits the client limit too."""
    return request.client.host if request.client else "unix-socket"
