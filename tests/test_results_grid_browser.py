"""The Query page's results grid in Chromium at 1920 px: a 40-column SDTM-width table shows
at least 10 columns with one-line headers carrying the type, the page uses the viewport
width, headers stay put while scrolling, cells and rows copy, a failed query clears the old
result, and the table browser lists visible columns with labels and types. The audit log
uses the full width too."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import PASSWORD
from tests.lake_helpers import add_policy, ingest, write_csv

pytestmark = pytest.mark.browser

COLUMNS = 40
ROWS = 450


def wide_table(path: Path) -> Path:
    """An SDTM-like table: identifiers, coded values, ISO dates, numbers (generated)."""
    data: dict[str, list] = {"USUBJID": [f"01-701-{1000 + i}" for i in range(ROWS)]}
    for c in range(1, COLUMNS):
        name = f"VAR{c:02d}"
        if c % 4 == 0:
            data[name] = [i * c for i in range(ROWS)]
        elif c % 4 == 1:
            data[name] = [f"2014-0{1 + i % 9}-1{i % 10}" for i in range(ROWS)]
        elif c % 4 == 2:
            data[name] = [round(i / 7 + c, 3) for i in range(ROWS)]
        else:
            data[name] = [["MILD", "MODERATE", "SEVERE"][i % 3] for i in range(ROWS)]
    return write_csv(path, data)


def sign_in(page, url: str, target: str, user: str = "ada", password: str = PASSWORD) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{url}/login?next={target}")
    page.fill("#name", user)
    page.fill("#password", password)
    page.press("#password", "Enter")
    page.wait_for_url(f"{url}{target}")


def test_results_grid_at_1920(browser, live_platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    platform, url = live_platform
    add_policy(platform)
    ingest(platform, wide_table(tmp_path / "ae.csv"), "cdisc.ae")
    platform.add_user("stew", "steward")
    labelled = platform.as_user("stew").request(
        "PATCH", "/api/v1/datasets/cdisc/ae", json={"column_labels": {"USUBJID": "Unique Subject Identifier"}}
    )
    assert labelled.status_code == 200, labelled.text
    platform.add_user("ada", "scientist")
    platform.as_user("stew").post("/api/v1/grants", json={"principal": "user:ada", "table": "cdisc.ae"})

    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=url)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, url, "/query")

    # table browser: visible columns with labels and types
    page.click("#table-list summary")
    browser_text = page.inner_text("#table-list")
    assert "Unique Subject Identifier" in browser_text
    assert "int64" in browser_text and "string" in browser_text

    page.fill("#sql", "SELECT * FROM cdisc.ae")
    page.click("#run")
    page.wait_for_selector("#results table.grid tbody tr")
    page.screenshot(path=str(tmp_path / "grid-1920.png"))

    # the page uses the viewport width, and never scrolls sideways itself
    main_width = page.evaluate("document.querySelector('main').getBoundingClientRect().width")
    assert main_width >= 1920 - 40, main_width
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    wrap = page.evaluate(
        "(() => { const r = document.getElementById('results').getBoundingClientRect();"
        " return {width: r.width, height: r.height}; })()"
    )
    assert wrap["width"] >= 1800, wrap
    assert wrap["height"] >= 400, wrap  # many rows visible, not a small box

    # at least 10 data columns fully inside the visible part of the grid, headers on one line
    geometry = page.evaluate(
        """(() => {
          const wrap = document.getElementById('results').getBoundingClientRect();
          const heads = [...document.querySelectorAll('#results thead th:not(.rownum)')];
          return heads.map((th) => {
            const r = th.getBoundingClientRect();
            const name = th.querySelector('.col-name');
            const type = th.querySelector('.col-type');
            const line = parseFloat(getComputedStyle(name).lineHeight);
            return {inside: r.left >= wrap.left && r.right <= wrap.right,
                    nameHeight: name.getBoundingClientRect().height, line,
                    clipped: name.scrollWidth > name.clientWidth, type: type.textContent};
          });
        })()"""
    )
    assert len(geometry) == COLUMNS
    visible = [g for g in geometry if g["inside"]]
    assert len(visible) >= 10, f"only {len(visible)} columns visible at 1920 px"
    for g in geometry:
        assert g["nameHeight"] <= g["line"] * 1.2, g  # one line: no wrapped header text
        assert not g["clipped"], g
    assert {g["type"] for g in geometry} >= {"string", "int64", "double"}
    # body cells are single lines too
    heights = page.evaluate(
        "[...document.querySelectorAll('#results tbody tr')].slice(0, 20)"
        ".map(r => r.getBoundingClientRect().height)"
    )
    assert max(heights) < 30, heights

    # paging: 200 rows a page, then the next page
    assert page.locator("#results tbody tr").count() == 200
    assert "of 450 rows" in page.inner_text("#stats")
    page.click("#next")
    page.wait_for_selector("#results tbody tr:first-child th.rownum:text-is('201')")

    # sticky header: scrolled down and right, the header row stays at the top of the grid
    page.evaluate(
        "(() => { const w = document.getElementById('results'); w.scrollTop = 2000; w.scrollLeft = 900; })()"
    )
    offsets = page.evaluate(
        """(() => { const w = document.getElementById('results').getBoundingClientRect();
          const th = document.querySelector('#results thead th:nth-child(5)').getBoundingClientRect();
          const num = document.querySelector('#results tbody tr:last-child th.rownum')
            .getBoundingClientRect();
          return {top: th.top - w.top, left: num.left - w.left}; })()"""
    )
    assert abs(offsets["top"]) <= 2 and abs(offsets["left"]) <= 2, offsets

    # copy a cell and a row
    page.evaluate(
        "(() => { const w = document.getElementById('results'); w.scrollTop = 0; w.scrollLeft = 0; })()"
    )
    page.click("#results tbody tr:first-child td:nth-of-type(1)")
    page.click("#copy-cell")
    page.wait_for_selector("#copy-status:has-text('Cell copied')")
    assert page.evaluate("navigator.clipboard.readText()") == "01-701-1200"
    page.click("#results tbody tr:first-child td:nth-of-type(1)")
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.cellIndex") == 2  # keyboard moves the selection
    page.keyboard.press("Control+Shift+C")
    page.wait_for_selector("#copy-status:has-text('Row copied')")
    row = page.evaluate("navigator.clipboard.readText()").split("\t")
    assert len(row) == COLUMNS and row[0] == "01-701-1200"

    # a failed query clears the old result and says what is wrong, without parser internals
    page.fill("#sql", "SELECT VAR01 * FROM cdisc.ae")
    page.click("#run")
    page.wait_for_selector("#sql-error:not([hidden])")
    message = page.inner_text("#sql-error")
    assert "line 1" in message and "column" in message, message
    assert "<class" not in message and "sqlglot" not in message, message
    assert page.locator("#results table").count() == 0
    assert page.is_disabled("#download-csv")
    assert errors == []
    context.close()


def test_audit_log_uses_the_width(browser, live_platform) -> None:  # type: ignore[no-untyped-def]
    platform, url = live_platform
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    sign_in(page, url, "/admin/audit", user="admin", password=platform.admin_password)
    assert page.evaluate("document.querySelector('main').getBoundingClientRect().width") >= 1880
    heights = page.evaluate(
        "[...document.querySelectorAll('#events tbody tr')]"
        ".map(r => r.querySelector('td:nth-child(2)').getBoundingClientRect().height)"
    )
    assert heights and max(heights) < 40, heights  # the time is on one line
    sticky = page.evaluate("getComputedStyle(document.querySelector('#events th')).position")
    assert sticky == "sticky"
    page.close()
