"""Console pages rendered in-process: sign-in flow, CSRF, navigation, permissions."""

from __future__ import annotations

import re

from sqlalchemy import select

from datalibrary.audit.models import AuditEvent
from datalibrary.web.sections import SECTIONS
from tests.helpers import PASSWORD, ApiClient, Platform


def sign_in(platform: Platform, name: str, password: str) -> ApiClient:
    client = platform.anonymous
    form = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    response = client.post(
        "/login",
        data={"name": name, "password": password, "csrf_token": csrf, "next": "/"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return client


def page_csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_anonymous_visitors_are_sent_to_sign_in(sqlite_platform: Platform) -> None:
    client = sqlite_platform.anonymous
    for path in ["/", *(f"/{s.slug}" for s in SECTIONS), "/account"]:
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")


def test_admin_sees_every_section(sqlite_platform: Platform) -> None:
    client = sign_in(sqlite_platform, "admin", sqlite_platform.admin_password)
    home = client.get("/")
    for section in SECTIONS:
        assert f'href="/{section.slug}"' in home.text
        page = client.get(f"/{section.slug}")
        assert page.status_code == 200
        assert 'aria-current="page"' in page.text
        assert f"<h1>{section.title}</h1>" in page.text or f">{section.title}</h1>" in page.text
        if "Coming to this section" in page.text:  # still a placeholder
            assert section.coming[0] in page.text


def test_scientist_sees_only_permitted_sections(sqlite_platform: Platform) -> None:
    sqlite_platform.add_user("sci", "scientist")
    client = sign_in(sqlite_platform, "sci", PASSWORD)
    home = client.get("/").text
    assert 'href="/query"' in home and 'href="/admin"' not in home
    assert client.get("/admin").status_code == 403


def test_wrong_password_shows_error_and_is_audited(sqlite_platform: Platform) -> None:
    client = sqlite_platform.anonymous
    csrf = page_csrf(client.get("/login").text)
    response = client.post("/login", data={"name": "admin", "password": "bad", "csrf_token": csrf})
    assert response.status_code == 401
    assert "wrong user name or password" in response.text
    empty = client.post("/login", data={"name": "", "password": "", "csrf_token": page_csrf(response.text)})
    assert 'id="name-error"' in empty.text and 'id="password-error"' in empty.text
    with sqlite_platform.db.session() as session:
        outcomes = session.scalars(select(AuditEvent.outcome).where(AuditEvent.action == "auth.login")).all()
    assert outcomes == ["failure"]


def test_login_form_requires_its_csrf_cookie(sqlite_platform: Platform) -> None:
    client = sqlite_platform.anonymous
    response = client.post(
        "/login", data={"name": "admin", "password": sqlite_platform.admin_password, "csrf_token": "forged"}
    )
    assert response.status_code == 401
    assert "form expired" in response.text


def test_open_redirects_are_refused(sqlite_platform: Platform) -> None:
    client = sqlite_platform.anonymous
    csrf = page_csrf(client.get("/login").text)
    response = client.post(
        "/login",
        data={
            "name": "admin",
            "password": sqlite_platform.admin_password,
            "csrf_token": csrf,
            "next": "//evil.example",
        },
        follow_redirects=False,
    )
    assert response.headers["location"] == "/"


def test_logout_needs_the_csrf_token(sqlite_platform: Platform) -> None:
    client = sign_in(sqlite_platform, "admin", sqlite_platform.admin_password)
    forged = client.post("/logout", data={"csrf_token": "forged"}, follow_redirects=False)
    assert forged.status_code == 403
    assert client.get("/", follow_redirects=False).status_code == 200
    csrf = page_csrf(client.get("/").text)
    assert client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
    assert client.get("/", follow_redirects=False).status_code == 303


def test_problem_type_pages_exist(sqlite_platform: Platform) -> None:
    client = sqlite_platform.anonymous
    assert client.get("/problems/permission-denied").status_code == 200
    assert client.get("/problems/made-up").status_code == 404


def test_browsers_get_an_html_page_for_unknown_addresses(sqlite_platform: Platform) -> None:
    client = sqlite_platform.anonymous
    page = client.get("/no/such/page", headers={"Accept": "text/html"})
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "There is no page at this address." in page.text
    api = client.get("/api/v1/no/such", headers={"Accept": "text/html"})
    assert api.headers["content-type"].startswith("application/problem+json")
