"""Users, groups, projects, disabling, lockout and the audit CSV export, through the API."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from datalibrary.audit import service as audit_service
from datalibrary.audit.export import neutralize
from datalibrary.audit.models import AuditEvent
from datalibrary.auth.models import LoginThrottle
from tests.helpers import PASSWORD, ApiClient, Platform


def actions(platform: Platform) -> list[str]:
    with platform.db.session() as session:
        return list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def test_groups_grant_roles_and_principal_carries_groups_and_projects(platform: Platform) -> None:
    admin = platform.as_user("admin")
    user = platform.as_user("ann")  # a scientist
    assert admin.post("/api/v1/groups", json={"name": "stewards", "roles": ["steward"]}).status_code == 201
    assert admin.put("/api/v1/groups/stewards/members/ann").status_code == 200
    assert (
        admin.post("/api/v1/projects", json={"name": "oncology", "description": "Onc trials"}).status_code
        == 201
    )
    assert admin.post("/api/v1/projects", json={"name": "cardio"}).status_code == 201
    assert admin.put("/api/v1/projects/oncology/members/ann").status_code == 200
    assert admin.put("/api/v1/projects/cardio/members/ann", json={"default": True}).status_code == 200
    me = user.get("/api/v1/me").json()
    assert me["roles"] == ["scientist", "steward"]
    assert "grants.manage" in me["permissions"]
    assert me["groups"] == ["stewards"] and me["projects"] == ["cardio", "oncology"]
    assert me["default_project"] == "cardio"
    detail = admin.get("/api/v1/users/ann").json()
    assert detail["roles"] == ["scientist"] and detail["effective_roles"] == ["scientist", "steward"]
    # removing the membership removes the role at once
    assert admin.delete("/api/v1/groups/stewards/members/ann").status_code == 200
    assert user.get("/api/v1/me").json()["roles"] == ["scientist"]
    assert admin.put("/api/v1/groups/stewards/roles", json={"roles": ["auditor"]}).json()["roles"] == [
        "auditor"
    ]
    assert admin.delete("/api/v1/projects/cardio/members/ann").status_code == 200
    assert user.get("/api/v1/me").json()["default_project"] == "oncology"  # the only one left
    for action in ("group.create", "group.member_add", "group.member_remove", "group.roles", "project.create",
                   "project.member_add", "project.member_remove"):  # fmt: skip
        assert action in actions(platform), action


def test_disabling_a_user_stops_sessions_and_tokens_at_once(platform: Platform) -> None:
    admin = platform.as_user("admin")
    token_client = platform.as_user("zed")
    session_client = ApiClient(platform.app)
    assert (
        session_client.post("/api/v1/auth/login", json={"name": "zed", "password": PASSWORD}).status_code
        == 200
    )
    assert admin.post("/api/v1/users/zed/disable").json()["active"] is False
    assert token_client.get("/api/v1/me").status_code == 401
    assert session_client.get("/api/v1/me").status_code == 401
    assert (
        ApiClient(platform.app)
        .post("/api/v1/auth/login", json={"name": "zed", "password": PASSWORD})
        .status_code
        == 401
    )
    assert admin.post("/api/v1/users/zed/enable").json()["active"] is True
    # tokens were revoked and sessions ended, not paused: re-enabling does not bring them back
    assert token_client.get("/api/v1/me").status_code == 401
    assert session_client.get("/api/v1/me").status_code == 401
    assert "user.disable" in actions(platform) and "user.enable" in actions(platform)
    assert admin.post("/api/v1/users/admin/disable").status_code == 409  # not yourself


def test_user_admin_validates_input(platform: Platform) -> None:
    admin = platform.as_user("admin")
    bad = [
        {"name": "Bad Name", "roles": ["scientist"]},
        {"name": "okname", "roles": ["wizard"]},
        {"name": "okname", "roles": [], "password": "short"},
        {"name": "okname", "roles": [], "password": "okname-Password-123"},  # contains the name
        {"name": "okname", "roles": [], "projects": ["nope"]},
        {"name": "x" * 65},
    ]
    for body in bad:
        response = admin.post("/api/v1/users", json=body)
        assert response.status_code in (404, 422), (body, response.status_code)
    assert admin.get("/api/v1/users/okname").status_code == 404  # nothing half-created
    assert admin.post("/api/v1/projects", json={"name": "p1"}).status_code == 201
    created = admin.post(
        "/api/v1/users",
        json={"name": "okname", "roles": ["scientist"], "password": PASSWORD, "projects": ["p1"]},
    )
    assert created.status_code == 201 and created.json()["default_project"] == "p1"
    assert admin.post("/api/v1/users", json={"name": "okname", "roles": []}).status_code == 409
    assert admin.put("/api/v1/users/okname/roles", json={"roles": ["admin", "x"]}).status_code == 422
    assert admin.put("/api/v1/users/okname/password", json={"password": "aaaaaaaaaaaaaaa"}).status_code == 422
    assert (
        admin.put("/api/v1/users/okname/password", json={"password": "New-Pass-2025-ok"}).status_code == 204
    )
    assert admin.put("/api/v1/users/admin/roles", json={"roles": ["scientist"]}).status_code == 409
    assert admin.post("/api/v1/groups", json={"name": "g", "roles": []}).status_code == 422
    assert admin.put("/api/v1/groups/nope/members/okname").status_code == 404
    assert admin.delete("/api/v1/projects/p1/members/admin").status_code == 404


def test_readers_can_list_but_not_change(platform: Platform) -> None:
    platform.add_user("audrey", "auditor")
    auditor = platform.as_user("audrey")
    assert [u["name"] for u in auditor.get("/api/v1/users").json()] == ["admin", "audrey"]
    assert auditor.get("/api/v1/groups").status_code == 200
    assert auditor.get("/api/v1/projects").status_code == 200
    assert auditor.post("/api/v1/projects", json={"name": "nope"}).status_code == 403
    assert platform.as_user("sci").get("/api/v1/users").status_code == 403


def login(platform: Platform, name: str, password: str, client: str = "testclient") -> int:
    return (
        ApiClient(platform.app)
        .post("/api/v1/auth/login", json={"name": name, "password": password})
        .status_code
    )


def test_account_lockout_after_repeated_failures(platform: Platform) -> None:
    platform.add_user("lou", "scientist")
    limit = platform.settings.auth.lockout_account_failures
    for _ in range(limit):
        assert login(platform, "lou", "Wrong-Password-1") == 401
    response = ApiClient(platform.app).post("/api/v1/auth/login", json={"name": "lou", "password": PASSWORD})
    assert response.status_code == 429  # even the right password, until the lockout ends
    assert "too many failed sign-ins for this account" in response.json()["detail"]
    assert int(response.headers["Retry-After"]) > 0
    with platform.db.session() as session:
        lockouts = list(session.scalars(select(AuditEvent).where(AuditEvent.action == "auth.lockout")))
        keys = list(session.scalars(select(LoginThrottle.key)))
        assert audit_service.verify(session).ok
    assert [(e.target, e.outcome) for e in lockouts] == [("user:lou", "denied")]
    assert all("lou" not in key for key in keys)  # stored hashed
    # other accounts are unaffected; an admin lifts the lockout
    assert login(platform, "admin", platform.admin_password) == 200
    assert platform.as_user("admin").post("/api/v1/users/lou/enable").status_code == 200
    assert "auth.unlock" in actions(platform)
    assert login(platform, "lou", PASSWORD) == 200


def test_client_lockout_spans_accounts(sqlite_platform: Platform) -> None:
    limit = sqlite_platform.settings.auth.lockout_client_failures
    for index in range(limit):
        assert login(sqlite_platform, f"ghost{index}", "Wrong-Password-1") == 401
    response = ApiClient(sqlite_platform.app).post(
        "/api/v1/auth/login", json={"name": "admin", "password": "x"}
    )
    assert response.status_code == 429 and "network address" in response.json()["detail"]


@pytest.mark.parametrize(
    "value,expected",
    [
        ("=1+2", "'=1+2"),
        ("+cmd", "'+cmd"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=x", "'\t=x"),
        ("ok", "ok"),
    ],
)
def test_csv_cells_are_neutralized(value: str, expected: str) -> None:
    assert neutralize(value) == expected


def test_audit_csv_export_is_filtered_safe_and_audited(platform: Platform) -> None:
    platform.add_user("audrey", "auditor")
    auditor = platform.as_user("audrey")
    ApiClient(platform.app).post("/api/v1/auth/login", json={"name": '=HYPERLINK("x")', "password": "nope"})
    response = auditor.get("/api/v1/audit/events.csv", params={"action": "auth.login"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0][:4] == ["id", "at", "actor", "action"]
    assert [r[3] for r in rows[1:]] == ["auth.login"]
    assert rows[1][2] == '\'=hyperlink("x")'
    assert "audit.export" in actions(platform)
    assert platform.as_user("sci").get("/api/v1/audit/events.csv").status_code == 403
    paged = auditor.get("/api/v1/audit/events", params={"limit": 1, "offset": 1}).json()
    assert len(paged) == 1


def test_replicas_share_the_lockout_and_it_expires(platform: Platform) -> None:
    """Two app instances over one database stand for two API replicas."""
    from sqlalchemy import update

    from datalibrary.app import create_app
    from datalibrary.db.base import utcnow

    platform.add_user("rex", "scientist")
    replicas = [ApiClient(platform.app), ApiClient(create_app(platform.settings, platform.db))]
    limit = platform.settings.auth.lockout_account_failures
    for attempt in range(limit):
        replica = replicas[attempt % 2]
        assert (
            replica.post("/api/v1/auth/login", json={"name": "rex", "password": "Nope-nope-123"}).status_code
            == 401
        )
    for replica in replicas:
        assert (
            replica.post("/api/v1/auth/login", json={"name": "rex", "password": PASSWORD}).status_code == 429
        )
    with platform.db.session() as session:  # time passes
        session.execute(update(LoginThrottle).values(locked_until=utcnow()))
    assert replicas[1].post(
        "/api/v1/auth/login", json={"name": "REX ", "password": PASSWORD}
    ).status_code in (200, 401)
    assert (
        replicas[0].post("/api/v1/auth/login", json={"name": "rex", "password": PASSWORD}).status_code == 200
    )


@given(st.text(max_size=40))
def test_neutralized_cells_never_start_a_formula(value: str) -> None:
    cell = neutralize(value)
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert cell.endswith(value)
