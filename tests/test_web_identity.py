"""Admin and account pages in-process: forms with CSRF, errors next to fields, permissions."""

from __future__ import annotations

import html
import re

from sqlalchemy import select

from datalibrary.auth.models import ApiToken, User
from tests.helpers import PASSWORD, Platform
from tests.test_web import page_csrf, sign_in


def field_error(page: str, field: str) -> str:
    match = re.search(rf'id="{field}-error">([^<]+)<', page)
    assert match, f"no error shown for {field}"
    return html.unescape(match.group(1))


def test_admin_pages_render_and_manage_users(sqlite_platform: Platform) -> None:
    client = sign_in(sqlite_platform, "admin", sqlite_platform.admin_password)
    for path in (
        "/admin",
        "/admin/users",
        "/admin/groups",
        "/admin/projects",
        "/admin/audit",
        "/admin/users/admin",
    ):
        response = client.get(path)
        assert response.status_code == 200, path
        assert "Coming to this section" not in response.text
    csrf = page_csrf(client.get("/admin/projects").text)
    assert (
        client.post(
            "/admin/projects", data={"csrf_token": csrf, "name": "onc"}, follow_redirects=False
        ).status_code
        == 303
    )

    bad = client.post(
        "/admin/users",
        data={"csrf_token": csrf, "name": "Bad Name", "password": "short", "roles": ["scientist"]},
    )
    assert bad.status_code == 422
    assert "user name must be" in field_error(bad.text, "f-name")
    good = client.post(
        "/admin/users",
        data={"csrf_token": csrf, "name": "nina", "password": "short", "roles": ["scientist"]},
    )
    assert good.status_code == 422 and "password must have" in field_error(good.text, "f-password")
    done = client.post(
        "/admin/users",
        data={
            "csrf_token": csrf,
            "name": "nina",
            "password": PASSWORD,
            "roles": ["scientist"],
            "project": "onc",
        },
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/admin/users/nina"
    detail = client.get("/admin/users/nina").text
    assert "onc" in detail and "(default)" in detail

    # disable, roles, group membership through the detail page's forms
    assert (
        client.post(
            "/admin/users/nina/active", data={"csrf_token": csrf, "active": "false"}, follow_redirects=False
        ).status_code
        == 303
    )
    assert '<dd id="user-status">disabled</dd>' in client.get("/admin/users/nina").text
    assert (
        client.post(
            "/admin/users/nina/roles",
            data={"csrf_token": csrf, "roles": ["steward", "auditor"]},
            follow_redirects=False,
        ).status_code
        == 303
    )
    assert (
        client.post(
            "/admin/groups",
            data={"csrf_token": csrf, "name": "readers", "roles": ["auditor"]},
            follow_redirects=False,
        ).status_code
        == 303
    )
    assert (
        client.post(
            "/admin/users/nina/groups", data={"csrf_token": csrf, "group": "readers"}, follow_redirects=False
        ).status_code
        == 303
    )
    with sqlite_platform.db.session() as session:
        nina = session.scalar(select(User).where(User.name == "nina"))
        assert nina is not None and not nina.is_active
        assert nina.role_names == {"steward", "auditor"} and nina.group_names == {"readers"}
    weak = client.post(
        "/admin/users/nina/password", data={"csrf_token": csrf, "password": "nina-is-great-2025"}
    )
    assert weak.status_code == 422 and "not containing the user name" in field_error(weak.text, "f-password")
    strong = {"csrf_token": csrf, "password": "Fresh-Passw0rd-2025"}
    assert client.post("/admin/users/nina/password", data=strong, follow_redirects=False).status_code == 303
    # an unknown group is an error next to the field... or the form
    response = client.post("/admin/users/nina/groups", data={"csrf_token": csrf, "group": "nope"})
    assert response.status_code == 422 and "no group named 'nope'" in html.unescape(response.text)


def test_forms_without_the_csrf_token_are_refused(sqlite_platform: Platform) -> None:
    client = sign_in(sqlite_platform, "admin", sqlite_platform.admin_password)
    sqlite_platform.add_user("vic", "scientist")
    for path, data in (
        ("/admin/users/vic/active", {"active": "false"}),
        ("/admin/projects", {"name": "p"}),
        ("/account/tokens", {"name": "x", "expires_days": "5"}),
    ):
        response = client.post(path, data={**data, "csrf_token": "forged"})
        assert response.status_code == 403, path
    with sqlite_platform.db.session() as session:
        assert session.scalar(select(User.is_active).where(User.name == "vic")) is True


def test_admin_section_permissions(sqlite_platform: Platform) -> None:
    sqlite_platform.add_user("aud", "auditor")
    sqlite_platform.add_user("sci", "scientist")
    auditor = sign_in(sqlite_platform, "aud", PASSWORD)
    users = auditor.get("/admin/users")
    assert users.status_code == 200 and "New local user" not in users.text  # read-only
    assert auditor.get("/admin/audit").status_code == 200
    csrf = page_csrf(users.text)
    assert auditor.post("/admin/projects", data={"csrf_token": csrf, "name": "x"}).status_code == 403
    scientist = sign_in(sqlite_platform, "sci", PASSWORD)
    for path in ("/admin", "/admin/users", "/admin/audit"):
        assert scientist.get(path).status_code == 403, path
    assert sqlite_platform.anonymous.get("/admin/users", follow_redirects=False).status_code == 303


def test_audit_page_filters_pages_and_links_the_csv(sqlite_platform: Platform) -> None:
    for _ in range(3):
        sqlite_platform.anonymous.post("/api/v1/auth/login", json={"name": "admin", "password": "wrong"})
    client = sign_in(sqlite_platform, "admin", sqlite_platform.admin_password)
    page = client.get("/admin/audit", params={"action": "auth.login", "since": "2000-01-01"}).text
    rows = re.findall(r'<tr class="outcome-(\w+)">', page)
    assert rows.count("failure") == 3 and rows.count("success") == 1
    link = html.unescape(re.search(r'href="([^"]+)" download', page).group(1))
    assert link.startswith("/api/v1/audit/events.csv?") and "action=auth.login" in link
    exported = client.get(link)
    assert exported.status_code == 200 and exported.text.count("auth.login") == 4
    bad = client.get("/admin/audit", params={"since": "yesterday"})
    assert bad.status_code == 422 and field_error(bad.text, "f-since") == "Enter a date as YYYY-MM-DD."
    assert client.get("/admin/audit", params={"page_no": 2}).status_code == 200


def test_account_page_creates_shows_once_and_revokes_tokens(sqlite_platform: Platform) -> None:
    sqlite_platform.add_user("tess", "scientist")
    client = sign_in(sqlite_platform, "tess", PASSWORD)
    page = client.get("/account")
    assert page.status_code == 200 and "Personal API tokens" in page.text
    csrf = page_csrf(page.text)
    bad = client.post("/account/tokens", data={"csrf_token": csrf, "name": "", "expires_days": "0"})
    assert bad.status_code == 422
    assert field_error(bad.text, "token-name").startswith("Give the token a name")
    assert field_error(bad.text, "token-expires").startswith("Enter a number of days")
    created = client.post(
        "/account/tokens", data={"csrf_token": csrf, "name": "laptop", "expires_days": "30"}
    )
    assert created.status_code == 201
    secret = re.search(r'id="token-secret">([^<]+)<', created.text).group(1)
    assert (
        sqlite_platform.anonymous.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code
        == 200
    )
    assert secret not in client.get("/account").text  # shown once
    with sqlite_platform.db.session() as session:
        token_id = session.scalar(select(ApiToken.id).where(ApiToken.name == "laptop"))
    revoked = client.post(
        f"/account/tokens/{token_id}/revoke", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert revoked.status_code == 303
    assert (
        sqlite_platform.anonymous.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code
        == 401
    )
    # someone else's token cannot be revoked from this page
    sqlite_platform.as_user("other")
    with sqlite_platform.db.session() as session:
        other_id = session.scalar(
            select(ApiToken.id).where(ApiToken.name == "test").order_by(ApiToken.id.desc())
        )
    assert client.post(f"/account/tokens/{other_id}/revoke", data={"csrf_token": csrf}).status_code == 403
