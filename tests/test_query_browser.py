"""The Query page in Chromium: browse granted tables, run SQL, see rows and bytes scanned,
and a refused query's error next to the editor."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import PASSWORD
from tests.lake_helpers import add_policy, ingest, write_csv
from tests.test_browser import watch_errors

pytestmark = pytest.mark.browser


def test_query_page(browser, live_platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    platform, url = live_platform
    add_policy(platform)
    write_csv(tmp_path / "dm.csv", {"USUBJID": ["S1", "S2"], "AGE": [40, 50]})
    ingest(platform, tmp_path / "dm.csv", "cdisc.dm")
    platform.add_user("stew", "steward")
    platform.add_user("ada", "scientist")
    platform.as_user("stew").post("/api/v1/grants", json={"principal": "user:ada", "table": "cdisc.dm"})

    page = browser.new_page(viewport={"width": 390, "height": 844})
    problems = watch_errors(page)
    page.goto(f"{url}/login?next=/query")
    page.fill("#name", "ada")
    page.fill("#password", PASSWORD)
    page.press("#password", "Enter")
    page.wait_for_url(f"{url}/query")
    page.click("#table-list button:has-text('cdisc.dm')")
    assert page.input_value("#sql") == "SELECT * FROM cdisc.dm LIMIT 100"
    page.press("#sql", "Control+Enter")
    page.wait_for_selector("#results table tbody tr")
    assert page.locator("#results tbody tr").count() == 2
    assert "scanned" in page.inner_text("#stats")
    page.fill("#sql", "COPY cdisc.dm TO '/tmp/x'")
    page.click("#run")
    page.wait_for_selector("#sql-error:not([hidden])")
    assert "query refused" in page.inner_text("#sql-error")
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    history = page.locator("#history li")
    assert history.count() >= 1
    assert [p for p in problems if "422" not in p] == []
    page.close()
