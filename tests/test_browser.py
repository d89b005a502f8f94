"""The console in a real Chromium: sign in, visit every section, no console errors,
no horizontal scrolling at desktop and phone widths, keyboard navigation works."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from datalibrary.audit.models import AuditEvent
from datalibrary.auth.models import ApiToken
from datalibrary.web.sections import SECTIONS

pytestmark = pytest.mark.browser


def watch_errors(page) -> list[str]:  # type: ignore[no-untyped-def]
    """Collect console errors and uncaught exceptions of ``page``."""
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    return problems


def test_console_sections_in_chromium(browser, live_platform) -> None:
    platform, url = live_platform
    for width, height in ((1280, 800), (390, 844)):
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        problems = watch_errors(page)

        page.goto(f"{url}/")
        assert page.url.startswith(f"{url}/login")
        page.fill("#name", "admin")
        page.fill("#password", platform.admin_password)
        page.press("#password", "Enter")
        page.wait_for_url(f"{url}/")
        assert page.locator("h1").inner_text().startswith("Welcome")

        for section in SECTIONS:
            page.click(f'nav a[href="/{section.slug}"]')
            page.wait_for_url(f"{url}/{section.slug}")
            assert page.locator("h1").inner_text() == section.title
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{section.slug} scrolls horizontally at {width}px"

        # keyboard: the first Tab lands on the skip link, which moves focus to the content
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "skip-link"
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "main"

        page.click("text=Sign out")
        page.wait_for_url(f"{url}/login")
        assert problems == [], problems
        context.close()


def test_wrong_password_shows_the_error_next_to_the_form(browser, live_platform) -> None:
    platform, url = live_platform
    page = browser.new_page()
    page.goto(f"{url}/login")
    page.fill("#name", "admin")
    page.fill("#password", "not-the-password")
    page.click("button[type=submit]")
    assert page.locator("#form-error").inner_text() == "wrong user name or password"
    page.close()
    with platform.db.session() as session:
        failures = session.scalars(
            select(AuditEvent.actor).where(AuditEvent.action == "auth.login", AuditEvent.outcome == "failure")
        ).all()
    assert failures == ["admin"]


def test_create_a_token_on_the_account_page_then_sign_out(browser, live_platform) -> None:
    platform, url = live_platform
    page = browser.new_page(viewport={"width": 390, "height": 844})
    problems = watch_errors(page)
    page.goto(f"{url}/account")
    page.fill("#name", "admin")
    page.fill("#password", platform.admin_password)
    page.press("#password", "Enter")
    page.wait_for_url(f"{url}/account")
    page.fill("#token-name", "laptop")
    page.fill("#token-expires", "7")
    page.click("text=Create token")
    secret = page.locator("#token-secret").inner_text()
    assert secret.startswith("dl_")
    assert "laptop" in page.locator("#tokens").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    with platform.db.session() as session:
        assert session.scalar(select(ApiToken.token_hash).where(ApiToken.name == "laptop")) != secret
    for path in ("/admin/users", "/admin/users/admin", "/admin/groups", "/admin/projects", "/admin/audit"):
        page.goto(f"{url}{path}")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} scrolls horizontally at 390px"
    page.click("text=Sign out")
    page.wait_for_url(f"{url}/login")
    page.goto(f"{url}/account")
    assert page.url.startswith(f"{url}/login")
    assert problems == [], problems
    page.close()
