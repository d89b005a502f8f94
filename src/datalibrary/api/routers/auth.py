"""Sign-in for API clients and personal API tokens."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from datalibrary.auth import login as login_service
from datalibrary.auth import service
from datalibrary.auth.permissions import Permission
from datalibrary.auth.schemas import IssuedTokenOut, LoginIn, LoginOut, TokenIn, TokenOut
from datalibrary.bounds import RecordId
from datalibrary.http.deps import (
    SESSION_COOKIE,
    CurrentPrincipal,
    DbSession,
    Requires,
    SettingsDep,
    client_address,
    set_session_cookie,
)

router = APIRouter(tags=["auth"])


@router.post("/auth/login", summary="Sign in with a password; sets the session cookie")
def login(
    body: LoginIn, request: Request, response: Response, session: DbSession, settings: SettingsDep
) -> LoginOut:
    issued = login_service.password_login(
        session, settings, body.name, body.password, client=client_address(request)
    )
    set_session_cookie(response, issued.secret, settings)
    return LoginOut(name=body.name, csrf_token=issued.record.csrf_token)


@router.post("/auth/logout", summary="End the current console session", status_code=204)
def logout(principal: CurrentPrincipal, request: Request, session: DbSession) -> Response:
    login_service.logout(session, principal, client=client_address(request))
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/tokens", summary="List API tokens", dependencies=[Requires(Permission.TOKENS_OWN)])
def list_tokens(principal: CurrentPrincipal, session: DbSession, user: str | None = None) -> list[TokenOut]:
    return [TokenOut.of(t) for t in service.list_tokens(session, principal, user or principal.name)]


@router.post(
    "/tokens",
    summary="Create an API token (the secret is returned once)",
    status_code=201,
    dependencies=[Requires(Permission.TOKENS_OWN)],
)
def create_token(body: TokenIn, principal: CurrentPrincipal, session: DbSession) -> IssuedTokenOut:
    issued = service.create_token(
        session, principal, body.user or principal.name, name=body.name, expires_days=body.expires_days
    )
    return IssuedTokenOut.issued(issued.token, issued.secret)


@router.delete(
    "/tokens/{token_id}",
    summary="Revoke an API token",
    dependencies=[Requires(Permission.TOKENS_OWN)],
)
def revoke_token(token_id: RecordId, principal: CurrentPrincipal, session: DbSession) -> TokenOut:
    return TokenOut.of(service.revoke_token(session, principal, token_id))
