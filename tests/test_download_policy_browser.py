"""The Query page's Download CSV follows the airlock policy in Chromium: a row-level
download becomes an export request and the page says so; the steward sees the rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import PASSWORD
from tests.lake_helpers import add_policy, ingest, write_csv

pytestmark = pytest.mark.browser


def sign_in(page, url: str, name: str, target: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{url}/login?next={target}")
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.press("#password", "Enter")
    page.wait_for_url(f"{url}{target}")


def test_download_csv_is_routed_to_the_airlock(browser, live_platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    platform, url = live_platform
    add_policy(platform)
    write_csv(
        tmp_path / "dm.csv", {"USUBJID": [f"S{i}" for i in range(30)], "AGE": [40 + i % 3 for i in range(30)]}
    )
    ingest(platform, tmp_path / "dm.csv", "cdisc.dm")
    platform.add_user("stew", "steward")
    platform.add_user("ada", "scientist")
    platform.as_user("stew").post("/api/v1/grants", json={"principal": "user:ada", "table": "cdisc.dm"})

    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    sign_in(page, url, "ada", "/query")
    page.fill("#sql", "SELECT USUBJID, AGE FROM cdisc.dm")
    page.click("#run")
    page.wait_for_selector("#results table tbody tr")
    page.click("#download-csv")
    page.wait_for_url(f"{url}/exports?routed=*")
    notice = page.inner_text("main")
    assert "became export request" in notice and "review" in notice
    assert page.locator("#my-exports tbody tr").count() == 1
    context.close()

    steward = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    sign_in(steward, url, "stew", "/exports")
    steward.click("a:has-text('Review')")
    steward.wait_for_selector("#sample")
    assert "Row-level data" in steward.inner_text("#result-kind")
    assert steward.locator("#sample tbody tr").count() == 20
    assert "S0" in steward.inner_text("#sample")
    steward.click("button[value=approve]")
    steward.wait_for_selector(".field-error")
    assert "override" in steward.inner_text(".field-error")
    steward.context.close()
