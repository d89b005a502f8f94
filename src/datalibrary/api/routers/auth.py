"""Sign-in for API clients and personal API tokens."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from datalibrary.auth import login as login_service
from datalibrary.auth import service
from datalibrary.auth.models import ApiToken
from datalibrary.auth.permissions import Permission
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


class LoginIn(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class LoginOut(BaseModel):
    name: str
    csrf_token: str


class TokenIn(BaseModel):
    user: str | None = Field(None, description="Owner; defaults to the caller (others need users.manage)")
    name: str = Field("api", min_length=1, max_length=100)
    expires_days: int | None = Field(90, ge=1, le=3650)


class TokenOut(BaseModel):
    id: int
    name: str
    prefix: str
    scope: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def of(cls, token: ApiToken) -> TokenOut:
        return cls.model_validate(token, from_attributes=True)


class IssuedTokenOut(TokenOut):
    token: str = Field(description="The secret; shown only in this response")


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
    return IssuedTokenOut(**TokenOut.of(issued.token).model_dump(), token=issued.secret)


@router.delete(
    "/tokens/{token_id}",
    summary="Revoke an API token",
    dependencies=[Requires(Permission.TOKENS_OWN)],
)
def revoke_token(token_id: RecordId, principal: CurrentPrincipal, session: DbSession) -> TokenOut:
    return TokenOut.of(service.revoke_token(session, principal, token_id))
