"""Sign-in, sessions, CSRF and API tokens; each action leaves an audit entry."""

from __future__ import annotations

from sqlalchemy import select, update

from datalibrary.audit import service as audit_service
from datalibrary.audit.models import AuditEvent
from datalibrary.auth.models import ApiToken
from datalibrary.db.base import utcnow
from tests.helpers import PASSWORD, Platform


def actions(platform: Platform) -> list[tuple[str, str]]:
    with platform.db.session() as session:
        return [(e.action, e.outcome) for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]


def test_login_sets_a_safe_cookie_and_logout_ends_it(platform: Platform) -> None:
    client = platform.anonymous
    response = client.post("/api/v1/auth/login", json={"name": "admin", "password": platform.admin_password})
    assert response.status_code == 200
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    csrf = response.json()["csrf_token"]
    assert client.get("/api/v1/me").json()["name"] == "admin"
    # state-changing calls with the cookie need the CSRF token
    assert client.post("/api/v1/auth/logout").status_code == 403
    assert client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    # the session is dead server-side, even if a client replays the old cookie
    assert client.get("/api/v1/me").status_code == 401
    assert ("auth.login", "success") in actions(platform)
    assert ("auth.logout", "success") in actions(platform)


def test_wrong_password_is_refused_and_audited(platform: Platform) -> None:
    response = platform.anonymous.post("/api/v1/auth/login", json={"name": "admin", "password": "nope"})
    assert response.status_code == 401
    assert response.json()["detail"] == "wrong user name or password"
    unknown = platform.anonymous.post("/api/v1/auth/login", json={"name": "ghost", "password": "nope"})
    assert unknown.json()["detail"] == response.json()["detail"]
    assert actions(platform).count(("auth.login", "failure")) == 2


def test_tokens_are_shown_once_stored_hashed_and_revocable(platform: Platform) -> None:
    platform.add_user("ada", "scientist")
    client = platform.as_user("ada")
    created = client.post("/api/v1/tokens", json={"name": "laptop", "expires_days": 7})
    assert created.status_code == 201
    secret = created.json()["token"]
    with platform.db.session() as session:
        stored = session.scalars(select(ApiToken.token_hash)).all()
    assert secret not in stored and all(len(h) == 64 for h in stored)
    listed = client.get("/api/v1/tokens").json()
    assert all("token" not in t for t in listed)
    fresh = platform.anonymous
    assert fresh.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    assert client.delete(f"/api/v1/tokens/{created.json()['id']}").json()["revoked_at"]
    assert fresh.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    assert ("token.create", "success") in actions(platform)
    assert ("token.revoke", "success") in actions(platform)


def test_expired_tokens_stop_working(platform: Platform) -> None:
    client = platform.as_user("bob")
    assert client.get("/api/v1/me").status_code == 200
    with platform.db.session() as session:
        session.execute(update(ApiToken).values(expires_at=utcnow()))
    assert client.get("/api/v1/me").status_code == 401


def test_malformed_authorization_header_is_refused(platform: Platform) -> None:
    for header in ("Basic abc", "Bearer", "Bearer  ", "token dl_x"):
        assert platform.anonymous.get("/api/v1/me", headers={"Authorization": header}).status_code == 401


def test_users_cannot_manage_each_others_tokens(platform: Platform) -> None:
    platform.as_user("eve")
    alice = platform.as_user("alice")
    with platform.db.session() as session:
        eve_token = session.scalars(select(ApiToken).order_by(ApiToken.id)).first()
    assert alice.delete(f"/api/v1/tokens/{eve_token.id}").status_code == 403
    assert alice.get("/api/v1/tokens", params={"user": "eve"}).status_code == 403
    assert alice.post("/api/v1/tokens", json={"user": "eve"}).status_code == 403


def test_audit_chain_verifies_and_detects_tampering(platform: Platform) -> None:
    platform.as_user("carol")
    platform.add_user("aud", "auditor")
    auditor = platform.as_user("aud")
    report = auditor.get("/api/v1/audit/verify").json()
    assert report["ok"] is True and report["entries"] >= 3
    with platform.db.session() as session:
        session.execute(update(AuditEvent).where(AuditEvent.id == 2).values(actor="mallory"))
    report = auditor.get("/api/v1/audit/verify").json()
    assert report == {
        "ok": False,
        "entries": 2,
        "first_broken": {"id": 2, "reason": "content does not match its hash"},
    }


def test_audit_chain_detects_deleted_entries(platform: Platform) -> None:
    platform.as_user("dan")
    with platform.db.session() as session:
        session.execute(AuditEvent.__table__.delete().where(AuditEvent.id == 2))
        result = audit_service.verify(session)
    assert not result.ok and result.reason == "link to previous entry broken"


def test_audit_details_never_carry_secrets(platform: Platform) -> None:
    with platform.db.session() as session:
        event = audit_service.record(
            session, actor="x", action="test", details={"password": PASSWORD, "nested": {"api_token": "t"}}
        )
        assert event.details == {"password": "[redacted]", "nested": {"api_token": "[redacted]"}}
