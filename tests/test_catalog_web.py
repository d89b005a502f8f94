"""Catalog pages: list with search and tags, dataset page, quarantine; in-process and in Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest

from datalibrary.lake.catalog import open_lake
from datalibrary.lake.datasets import update_dataset
from tests.helpers import PASSWORD, Platform
from tests.lake_helpers import SYSTEM, add_policy, ingest, write_csv
from tests.test_web import sign_in


def load_examples(platform: Platform, tmp_path: Path) -> None:
    add_policy(platform)
    add_policy(platform, "name: strict\nversion: 1\ncolumns:\n  USUBJID: keep\n")
    ingest(platform, write_csv(tmp_path / "dm.csv", {"USUBJID": ["S1", "S2"], "AGE": [61, 70]}), "cdisc.dm")
    ingest(platform, write_csv(tmp_path / "vs.csv", {"USUBJID": ["S1"], "VSORRES": ["120"]}), "cdisc.vs")
    ingest(
        platform,
        write_csv(tmp_path / "bad.csv", {"USUBJID": ["S9"], "SSN": ["123"]}),
        "cdisc.vs",
        policy="strict",
    )
    with platform.db.session() as session:
        update_dataset(
            session,
            SYSTEM,
            open_lake(platform.settings),
            "cdisc.dm",
            {"title": "Demographics", "tags": ["sdtm", "pilot"], "column_labels": {"AGE": "Age in years"}},
        )


def test_catalog_list_search_dataset_page_and_quarantine(sqlite_platform: Platform, tmp_path: Path) -> None:
    load_examples(sqlite_platform, tmp_path)
    client = sign_in(sqlite_platform, "admin", sqlite_platform.admin_password)
    page = client.get("/catalog").text
    assert "cdisc.dm" in page and "cdisc.vs" in page and "Demographics" in page
    # SSN looks identifying: quarantined with that evidence (#5)
    assert "Quarantine (1)" in page and "policy-identifying-column" in page and "SSN" in page
    searched = client.get("/catalog", params={"q": "demog"}).text
    assert 'href="/catalog/cdisc/dm"' in searched and 'href="/catalog/cdisc/vs"' not in searched
    tagged = client.get("/catalog", params={"tag": "pilot"}).text
    assert 'href="/catalog/cdisc/dm"' in tagged and 'href="/catalog/cdisc/vs"' not in tagged
    detail = client.get("/catalog/cdisc/dm").text
    for text in ("Age in years", "Snapshot history", "Column profile", "keep-all@1", "dm.csv", "Compression"):
        assert text in detail, text
    assert client.get("/catalog/cdisc/nothing").status_code == 404
    assert client.get("/catalog/Bad Name/x").status_code == 404


def test_scientists_browse_but_see_no_jobs(sqlite_platform: Platform, tmp_path: Path) -> None:
    load_examples(sqlite_platform, tmp_path)
    sqlite_platform.add_user("sci", "scientist")
    client = sign_in(sqlite_platform, "sci", PASSWORD)
    # without a grant a table is not in the catalog, and its page answers like a missing one
    assert "cdisc.dm" not in client.get("/catalog").text
    hidden, missing = client.get("/catalog/cdisc/dm"), client.get("/catalog/cdisc/nope")
    assert hidden.status_code == missing.status_code == 404
    sqlite_platform.add_user("stew", "steward")
    granted = sqlite_platform.as_user("stew").post(
        "/api/v1/grants", json={"principal": "user:sci", "table": "cdisc.dm"}
    )
    assert granted.status_code == 201, granted.text
    page = client.get("/catalog").text
    assert "cdisc.dm" in page and "Quarantine" not in page
    assert "Recent ingestion jobs" not in client.get("/catalog/cdisc/dm").text
    sqlite_platform.add_user("nobody")
    assert sign_in(sqlite_platform, "nobody", PASSWORD).get("/catalog").status_code == 403


@pytest.mark.browser
def test_catalog_pages_fit_phone_and_desktop(browser, live_platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    platform, url = live_platform
    load_examples(platform, tmp_path)
    for width, height in ((1280, 800), (390, 844)):
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        problems: list[str] = []
        page.on("console", lambda msg, seen=problems: seen.append(msg.text) if msg.type == "error" else None)
        page.goto(f"{url}/login?next=/catalog")
        page.fill("#name", "admin")
        page.fill("#password", platform.admin_password)
        page.press("#password", "Enter")
        page.wait_for_url(f"{url}/catalog")
        page.fill("#q", "demo")
        page.press("#q", "Enter")
        page.wait_for_url(f"{url}/catalog?q=demo*")
        page.click("text=cdisc.dm")
        page.wait_for_url(f"{url}/catalog/cdisc/dm")
        assert page.locator("h1").inner_text() == "Demographics"
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the dataset page scrolls horizontally at {width}px"
        assert problems == []
        context.close()
