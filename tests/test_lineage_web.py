"""Lineage and exports console pages: in-process (permissions, CSRF, content) and in a real
Chromium (graph readable at phone and desktop widths, keyboard reaches its links, print CSS)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import PASSWORD, Platform
from tests.lake_helpers import add_policy, ingest, write_csv
from tests.test_browser import watch_errors
from tests.test_web import page_csrf, sign_in


def seed(platform: Platform, tmp_path: Path) -> None:
    add_policy(platform)
    write_csv(tmp_path / "dm.csv", {"SITEID": [str(700 + i % 2) for i in range(30)], "AGE": list(range(30))})
    assert ingest(platform, tmp_path / "dm.csv", "study.dm")[1] == "succeeded"
    platform.add_user("stew", "steward")
    platform.add_user("ada", "scientist")
    platform.add_user("audrey", "auditor")
    platform.as_user("stew").post("/api/v1/grants", json={"principal": "user:ada", "table": "study.dm"})
    platform.as_user("ada").post("/api/v1/query", json={"sql": "SELECT * FROM study.dm"})


def test_lineage_pages_for_auditor_and_scientist(sqlite_platform: Platform, tmp_path: Path) -> None:
    seed(sqlite_platform, tmp_path)
    auditor = sign_in(sqlite_platform, "audrey", PASSWORD)
    index = auditor.get("/lineage")
    assert index.status_code == 200 and 'href="/lineage/datasets/study.dm"' in index.text
    page = auditor.get("/lineage/datasets/study.dm")
    assert page.status_code == 200
    assert "<svg" in page.text and 'href="/lineage/users/ada"' in page.text and "dm.csv" in page.text
    assert "<script" not in page.text.split("<main", 1)[1]  # no inline script (CSP)
    assert auditor.get("/lineage/datasets/bad name").status_code == 422
    user = auditor.get("/lineage/users/ada")
    assert user.status_code == 200 and "study.dm" in user.text
    report = auditor.get("/lineage/report", params={"scope": "study"})
    assert report.status_code == 200 and 'id="chain"' in report.text and "verified" in report.text
    assert "format=csv" in report.text
    scientist = sign_in(sqlite_platform, "ada", PASSWORD)
    assert 'href="/lineage"' in scientist.get("/").text
    own = scientist.get("/lineage", follow_redirects=False)
    assert own.status_code == 303 and own.headers["location"] == "/lineage/users/ada"
    assert scientist.get("/lineage/users/ada").status_code == 200
    assert scientist.get("/lineage/users/audrey").status_code == 403
    assert scientist.get("/lineage/datasets/study.dm").status_code == 403
    assert scientist.get("/lineage/report", params={"scope": "study"}).status_code == 403


def test_exports_pages_request_review_download_once(sqlite_platform: Platform, tmp_path: Path) -> None:
    seed(sqlite_platform, tmp_path)
    ada = sign_in(sqlite_platform, "ada", PASSWORD)
    form = ada.get("/exports")
    assert form.status_code == 200 and "<h1>Exports</h1>" in form.text
    body = {
        "kind": "query",
        "sql": "SELECT AGE FROM study.dm",
        "purpose": "poster for the congress",
        "destination": "my laptop",
        "format": "csv",
    }
    no_csrf = ada.post("/exports", data=body | {"csrf_token": "nope"}, follow_redirects=False)
    assert no_csrf.status_code == 403
    sent = ada.post("/exports", data=body | {"csrf_token": page_csrf(form.text)}, follow_redirects=False)
    assert sent.status_code == 303
    invalid = ada.post("/exports", data=body | {"purpose": "x", "csrf_token": page_csrf(form.text)})
    assert invalid.status_code == 422 and "say why" in invalid.text
    stew = sign_in(sqlite_platform, "stew", PASSWORD)
    listing = stew.get("/exports")
    export_id = re.search(r'href="/exports/(\d+)"', listing.text).group(1)
    review = stew.get(f"/exports/{export_id}", params={"qi": "AGE"})
    assert review.status_code == 200 and "30 rows" in review.text and "does not pass" in review.text
    assert "First rows" in review.text and "Row-level data" in review.text
    refused = stew.post(
        f"/exports/{export_id}/decision",
        data={"decision": "approve", "qi": "AGE", "csrf_token": page_csrf(review.text)},
        follow_redirects=False,
    )  # a failed check is approved only with an explicit override and its reason
    assert refused.status_code == 422 and "override" in refused.text
    decided = stew.post(
        f"/exports/{export_id}/decision",
        data={
            "decision": "approve",
            "qi": "AGE",
            "override_reason": "ages only, for the congress poster",
            "csrf_token": page_csrf(review.text),
        },
        follow_redirects=False,
    )
    assert decided.status_code == 303
    mine = ada.get("/exports")
    assert "Download (once)" in mine.text
    got = ada.post(f"/exports/{export_id}/download", data={"csrf_token": page_csrf(mine.text)})
    assert got.status_code == 200 and got.text.startswith('"AGE"')
    again = ada.post(f"/exports/{export_id}/download", data={"csrf_token": page_csrf(mine.text)})
    assert again.status_code == 409
    assert sign_in(sqlite_platform, "audrey", PASSWORD).get("/exports").status_code == 403


@pytest.mark.browser
def test_lineage_graph_in_chromium(browser, live_platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    platform, url = live_platform
    seed(platform, tmp_path)
    for width, height in ((1280, 800), (390, 844)):
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        errors = watch_errors(page)
        page.goto(f"{url}/login?next=/lineage/datasets/study.dm")
        page.fill("#name", "audrey")
        page.fill("#password", PASSWORD)
        page.press("#password", "Enter")
        page.wait_for_url(f"{url}/lineage/datasets/study.dm")
        assert page.locator("svg.lineage-graph").is_visible()
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the lineage page scrolls horizontally at {width}px"
        link = page.locator('svg.lineage-graph a[href="/lineage/users/ada"]')
        link.focus()
        page.keyboard.press("Enter")
        page.wait_for_url(f"{url}/lineage/users/ada")
        page.goto(f"{url}/lineage/report?scope=study")
        page.emulate_media(media="print")
        assert not page.locator(".topbar").is_visible() and page.locator("#chain").is_visible()
        assert errors == [], errors
        context.close()
