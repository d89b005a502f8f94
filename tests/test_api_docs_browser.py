"""The API reference page renders the OpenAPI 3.1 document in Chromium: Swagger UI 5 from a
package, served locally, lists the operations (Swagger UI 4 said "Unable to render this
definition" for 3.1)."""

from __future__ import annotations

import pytest

from tests.test_browser import watch_errors

pytestmark = pytest.mark.browser


def test_api_docs_render_operations(browser, live_platform) -> None:  # type: ignore[no-untyped-def]
    platform, url = live_platform
    assert platform.anonymous.get("/api/openapi.json").json()["openapi"].startswith("3.1")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems = watch_errors(page)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status >= 400 else None)
    page.goto(f"{url}/api/docs")
    page.wait_for_selector(".opblock-summary", timeout=60_000)
    text = page.inner_text("#swagger-ui")
    assert "Unable to render this definition" not in text
    assert page.locator(".opblock").count() >= 50  # every operation of the API is listed
    assert page.locator(".opblock-summary-path:has-text('/api/v1/query')").count() >= 1
    assert "OAS 3.1" in text
    page.locator(".opblock-summary-path:has-text('/api/v1/query/tables')").first.click()
    page.wait_for_selector(".opblock.is-open .responses-wrapper")
    assert all(r.startswith(url) for r in requests), "the docs load nothing from other origins"
    assert missing == [] and problems == [], (missing, problems)
    page.close()
