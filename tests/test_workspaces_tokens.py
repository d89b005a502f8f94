"""Attack tests: a workspace's token (what a notebook holds) does only what a notebook needs.

Over every operation of the OpenAPI document, the token of an *administrator's* workspace is
refused everything outside query, tables, its own identity and its own workspace; no route
mints a token from it, so it cannot outlive the revocation at stop."""

from __future__ import annotations

from datalibrary.auth import service as auth_service
from datalibrary.auth.permissions import SCOPE_PERMISSIONS, Principal
from tests.helpers import ApiClient, Platform
from tests.test_route_security import ANY_SIGNED_IN, concrete, operations


def scoped_client(platform: Platform, user: str, scope: str) -> ApiClient:
    with platform.db.session() as session:
        issued = auth_service.create_token(
            session, Principal.system("test"), user, name="ws", expires_days=1, scope=scope
        )
        secret = issued.secret
    return ApiClient(platform.app, secret)


def test_a_workspace_token_is_refused_everything_a_notebook_does_not_need(sqlite_platform: Platform) -> None:
    platform = sqlite_platform
    platform.add_user("boss", "admin")
    client = scoped_client(platform, "boss", "workspace:1")
    allowed = {p.value for p in SCOPE_PERMISSIONS["workspace"]}
    checked = 0
    for (method, path), needed in operations(platform).items():
        if needed is None or (method, path) in ANY_SIGNED_IN or needed <= allowed:
            continue
        response = client.request(method, concrete(path), json={})
        assert response.status_code == 403, f"{method} {path} answered {response.status_code}"
        checked += 1
    assert checked > 20
    # what a notebook needs still works
    assert client.get("/api/v1/me").status_code == 200
    assert client.get("/api/v1/query/tables").status_code == 200


def test_a_workspace_token_cannot_mint_tokens(sqlite_platform: Platform) -> None:
    platform = sqlite_platform
    platform.add_user("sci", "scientist")
    client = scoped_client(platform, "sci", "workspace:7")
    for body in ({}, {"user": "sci", "expires_days": 365}, {"user": "admin"}):
        assert client.post("/api/v1/tokens", json=body).status_code == 403
    assert client.get("/api/v1/tokens").status_code == 403
    # the service refuses too, whichever front end calls it
    import pytest

    from datalibrary.errors import PermissionDenied

    with platform.db.session() as session:
        user = auth_service.get_user(session, "sci")
        scoped = auth_service.principal_for(user, via="token", token_scope="workspace:7")
        with pytest.raises(PermissionDenied):
            auth_service.create_token(session, scoped, "sci", name="escape", expires_days=365)


def test_unknown_scopes_grant_nothing(sqlite_platform: Platform) -> None:
    platform = sqlite_platform
    platform.add_user("boss", "admin")
    client = scoped_client(platform, "boss", "something-new")
    assert client.get("/api/v1/me").json()["permissions"] == []
    assert client.get("/api/v1/query/tables").status_code == 403


def test_a_workspace_token_sees_only_its_own_workspace(sqlite_platform: Platform) -> None:
    platform = sqlite_platform
    platform.add_user("boss", "admin")
    client = scoped_client(platform, "boss", "workspace:3")
    assert client.get("/api/v1/workspaces").json() == []
    assert client.get("/api/v1/workspaces/4").status_code == 404
    assert client.get("/api/v1/workspaces?all=true").status_code in (403, 404)


def test_sign_in_over_the_unix_socket_is_throttled_as_a_client(sqlite_platform: Platform, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Sandboxes reach the API over a Unix socket, where there is no client address: guessing
    passwords for many accounts from there still hits the per-client limit."""
    import httpx

    from tests.workspace_helpers import UnixServer

    platform = sqlite_platform
    limit = platform.settings.auth.lockout_client_failures
    with UnixServer(platform.app, tmp_path / "api.sock"):
        http = httpx.Client(
            transport=httpx.HTTPTransport(uds=str(tmp_path / "api.sock")), base_url="http://x"
        )
        statuses = [
            http.post("/api/v1/auth/login", json={"name": f"user{i}", "password": "wrong"}).status_code
            for i in range(limit + 1)
        ]
    assert statuses[:limit] == [401] * limit
    assert statuses[limit] == 429
