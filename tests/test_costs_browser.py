"""The Costs section in Chromium: the dashboard draws its charts, the CSV export equals the
API's report, the pages fit 390 px and 1280 px; the Query page shows a large query's price first."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path

import pytest

from datalibrary.costs.models import StorageMeasurement
from datalibrary.db.base import utcnow
from datalibrary.workspaces.models import Workspace, WorkspaceUsage
from tests.helpers import PASSWORD
from tests.lake_helpers import add_policy, ingest, write_csv
from tests.test_browser import watch_errors
from tests.test_costs_budgets import spend_queries

pytestmark = pytest.mark.browser


def _usage(platform) -> None:  # type: ignore[no-untyped-def]
    platform.add_user("alice", "scientist")
    platform.add_user("bob", "scientist")
    spend_queries(platform, "alice", 0.8)
    spend_queries(platform, "bob", 0.2)
    with platform.db.session() as session:
        from datalibrary.auth.models import User

        bob = session.query(User).filter_by(name="bob").one()
        w = Workspace(owner_id=bob.id, project=None, product="python-notebook",
                      instance_type="m5.2xlarge", environment="python", provisioner="process",
                      state="stopped", provisioner_state={})  # fmt: skip
        session.add(w)
        session.flush()
        now = utcnow().replace(microsecond=0)
        start = max(now.replace(hour=0, minute=0, second=0), now - timedelta(hours=3))  # today
        session.add(WorkspaceUsage(workspace_id=w.id, user_id=bob.id, project=None,
                                   instance_type="m5.2xlarge", state="running", started_at=start,
                                   ended_at=now))  # fmt: skip
        session.add(StorageMeasurement(kind="dataset", resource="cdisc.dm", day=utcnow().date(),
                                       user="alice", project=None, bytes=500 * 1024**3))  # fmt: skip


def _login(page, url: str, name: str, target: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{url}/login?next={target}")
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.press("#password", "Enter")
    page.wait_for_url(f"{url}{target}")


def test_dashboard_charts_and_csv_export(browser, live_platform) -> None:  # type: ignore[no-untyped-def]
    platform, url = live_platform
    _usage(platform)
    platform.add_user("aud", "auditor")
    page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    problems = watch_errors(page)
    _login(page, url, "aud", "/costs")
    daily = page.locator('svg[data-chart="daily"]').first
    assert daily.is_visible()
    chart = '#dash-title ~ figure svg[data-chart="daily"]'
    series = {
        page.locator(f'{chart} rect.bar[data-series="{s}"]').count() for s in ("compute", "storage", "query")
    }
    assert 0 not in series  # each category drew its bar today
    for name in ("users", "projects", "products"):
        assert page.locator(f'svg[data-chart="{name}"] rect.bar').count() >= 1
    assert "alice" in page.text_content('svg[data-chart="users"]')
    # the CSV export equals the API's report for the same filters
    with page.expect_download() as info:
        page.click("#csv-export")
    exported = list(csv.reader(io.StringIO(Path(info.value.path()).read_text())))
    api = platform.as_user("aud").get("/api/v1/costs/report", params={"by": "user"}).json()
    assert exported[0] == ["user", "amount", "currency"]
    assert exported[1:-1] == [[r["key"], r["amount"], api["currency"]] for r in api["rows"]]
    assert exported[-1] == ["TOTAL", api["total"], api["currency"]]
    assert page.inner_text("#dash-total").startswith(api["total"])
    # filters: one user
    page.fill("#f-user", "bob")
    page.click("form[aria-label='Filters'] button")
    page.wait_for_url(f"{url}/costs?*user=bob*")
    assert "alice" not in page.text_content('svg[data-chart="users"]')
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    page.goto(f"{url}/costs/compare?purchase_price=6000&lifetime_months=36")
    assert "166.67" in page.inner_text("#comparison")
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    assert problems == []
    page.close()


def test_query_page_shows_the_price_first(browser, live_platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    platform, url = live_platform
    add_policy(platform)
    write_csv(tmp_path / "dm.csv", {"USUBJID": ["S1", "S2"], "AGE": [40, 50]})
    ingest(platform, tmp_path / "dm.csv", "cdisc.dm")
    platform.add_user("stew", "steward")
    platform.add_user("ada", "scientist")
    platform.as_user("stew").post("/api/v1/grants", json={"principal": "user:ada", "table": "cdisc.dm"})
    platform.settings.costs.estimate_above_bytes = 0  # every query counts as large here
    page = browser.new_page(viewport={"width": 390, "height": 844})
    problems = watch_errors(page)
    _login(page, url, "ada", "/query")
    page.fill("#sql", "SELECT * FROM cdisc.dm")
    page.click("#run")
    page.wait_for_selector("#estimate:not([hidden])")
    assert "about 0.00 EUR" in page.inner_text("#estimate") and "Run again" in page.inner_text("#estimate")
    assert page.locator("#results table").count() == 0
    page.click("#run")
    page.wait_for_selector("#results table tbody tr")
    assert page.locator("#estimate").is_hidden()
    # the workspaces page shows the price of a working day
    page.goto(f"{url}/workspaces")
    assert "A typical working day" in page.inner_text("#launch-price")
    assert problems == []
    page.close()
