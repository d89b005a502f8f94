"""Request access in Chromium: a pre-filled request link fills in the table, the
scientist sees a confirmation, the steward approves and sees one too, and the dataset page
then offers "Query it" (which opens the Query page on that table)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.lake_helpers import add_policy, ingest, write_csv
from tests.test_browser import watch_errors
from tests.test_results_grid_browser import sign_in

pytestmark = pytest.mark.browser


def test_request_access_flow(browser, live_platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    platform, url = live_platform
    add_policy(platform)
    ingest(platform, write_csv(tmp_path / "dm.csv", {"USUBJID": ["S1", "S2"], "AGE": [40, 50]}), "cdisc.dm")
    platform.add_user("stew", "steward")
    platform.add_user("ada", "scientist")

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems = watch_errors(page)
    sign_in(page, url, "/catalog")
    # without a grant the catalog shows nothing of the table (issue #12): the scientist comes
    # with the name a steward or a colleague gave, as a pre-filled request link
    assert page.locator("a[href='/catalog/cdisc/dm']").count() == 0
    page.goto(f"{url}/access?table=cdisc.dm#new-request")
    assert page.input_value("#f-table") == "cdisc.dm"
    page.fill("#f-justification", "Safety analysis of the pilot study")
    page.click("button:has-text('Send request')")
    page.wait_for_selector("p.notice:has-text('sent to the data stewards')")
    context.close()

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems += watch_errors(page)
    sign_in(page, url, "/access", user="stew")
    page.click("article[id^=request-] button[value=approve]")
    page.wait_for_selector("#decision-notice")
    assert "approved" in page.inner_text("#decision-notice")
    context.close()

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems += watch_errors(page)
    sign_in(page, url, "/catalog/cdisc/dm")
    assert page.locator("#request-access").count() == 0
    page.click("#dataset-actions a:has-text('Query it')")
    page.wait_for_url(f"{url}/query?table=cdisc.dm")
    assert page.input_value("#sql") == "SELECT * FROM cdisc.dm LIMIT 100"
    assert problems == [], problems
    context.close()
