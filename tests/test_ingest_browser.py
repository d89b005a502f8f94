"""The steward's ingestion page in Chromium: upload in chunks with progress, watch the jobs
change state live, retry a quarantined file after a policy fix, delete one not worth a retry.

The live server runs without workers (lifespan off), so the test plays the worker: it runs
each queued job the page created, while the page polls the job API on its own."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from datalibrary.ingest.models import IngestJob
from datalibrary.ingest.worker import run_one
from tests.lake_helpers import add_policy, read_table, write_csv
from tests.test_browser import watch_errors
from tests.test_results_grid_browser import sign_in

pytestmark = pytest.mark.browser
VITALS = "name: vitals\nversion: {v}\ncolumns:\n  USUBJID: keep\n  VSORRES: keep\n{extra}"


def _run_queued(platform) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    with platform.db.session() as session:
        queued = session.scalars(select(IngestJob.id).where(IngestJob.state == "queued")).all()
    return [run_one(platform.settings, platform.db, "test-worker", job_id) for job_id in queued]


def _upload(page, path: Path) -> None:  # type: ignore[no-untyped-def]
    page.set_input_files("#u-files", str(path))
    page.wait_for_selector(f"#uploads li:has-text('{path.name}'):has-text('queued')")


def test_upload_progress_retry_and_delete(browser, live_platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    platform, url = live_platform
    add_policy(platform, VITALS.format(v=1, extra=""))
    platform.add_user("ada", "steward")
    rows = 500_000  # about 9 MB: two 8 MB chunks
    good = write_csv(
        tmp_path / "vs.csv", {"USUBJID": [f"S{i:07d}" for i in range(rows)], "VSORRES": list(range(rows))}
    )
    assert good.stat().st_size > 8_000_000
    bad = write_csv(tmp_path / "vs_ssn.csv", {"USUBJID": ["S1"], "VSORRES": [1], "SSN": ["123-45-6789"]})
    stray = write_csv(tmp_path / "stray.csv", {"USUBJID": ["S2"], "VSORRES": [2], "SSN": ["987-65-4321"]})

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems = watch_errors(page)
    sign_in(page, url, "/catalog/ingest")
    page.fill("#u-table", "lab.vs")
    page.select_option("#u-policy", "vitals")
    _upload(page, good)
    bar = page.locator("#uploads li:has-text('vs.csv') progress")
    assert bar.get_attribute("max") == str(good.stat().st_size)
    assert page.evaluate("document.querySelector('#uploads li progress').value") == good.stat().st_size
    _upload(page, bad)
    assert sorted(state for _, state in _run_queued(platform)) == ["quarantined", "succeeded"]
    # the page shows both outcomes without a reload
    page.wait_for_selector("#jobs tr[data-state=succeeded] >> text=vs.csv")
    quarantined = page.locator("#jobs tr[data-state=quarantined]")
    quarantined.wait_for()
    assert "SSN" in (quarantined.locator("td.state").get_attribute("title") or "")

    add_policy(platform, VITALS.format(v=2, extra="  SSN: drop\n"))
    quarantined.locator("button.retry").click()
    page.wait_for_selector("#action-status:has-text('queued again')")
    assert [state for _, state in _run_queued(platform)] == ["succeeded"]
    page.locator("#jobs tr[data-state=succeeded]").nth(1).wait_for()  # the retried file too
    assert read_table(platform, "lab.vs").num_rows == rows + 1

    add_policy(platform, VITALS.format(v=3, extra=""))  # SSN uncovered again
    _upload(page, stray)
    assert [state for _, state in _run_queued(platform)] == ["quarantined"]
    row = page.locator("#jobs tr[data-state=quarantined]:has-text('stray.csv')")
    row.wait_for()
    page.once("dialog", lambda dialog: dialog.accept())
    row.locator("button.delete-file").click()
    page.wait_for_selector("#action-status:has-text('file deleted')")
    row.locator("button.retry[disabled]").wait_for()
    assert row.locator("button.delete-file").count() == 0
    assert problems == [], problems
    context.close()
