"""The jobs page in Chromium (issue 22): a steward sees a real ingestion job running, cancels it
with the page's Cancel button, and watches it end ``cancelled``; the filter shows only the
jobs one submitted; a scientist has no jobs page."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pytest

from datalibrary.auth.permissions import Principal
from datalibrary.ingest.models import IngestJob
from datalibrary.ingest.submit import submit_file
from datalibrary.ingest.worker import run_one
from tests.lake_helpers import SYSTEM, add_policy, write_csv
from tests.test_results_grid_browser import sign_in


def _state(platform, job_id: str) -> str:  # type: ignore[no-untyped-def]
    with platform.db.session() as session:
        return session.get(IngestJob, job_id).state


@pytest.mark.browser
def test_cancel_a_running_job_from_the_jobs_page(browser, live_platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    platform, url = live_platform
    add_policy(platform)
    platform.add_user("stew", "steward")
    platform.add_user("ada", "scientist")
    stew = Principal.system("stew")
    settings = platform.settings.model_copy(
        update={"ingest": platform.settings.ingest.model_copy(update={"job_lease_seconds": 1.5})}
    )
    # long enough to be seen running and cancelled on a fast machine too (~5 s of work here)
    rows = 12_000_000
    numbers = pa.array(np.arange(rows))
    big = tmp_path / "big.csv"
    pacsv.write_csv(
        pa.table({"ID": pc.binary_join_element_wise("r", pc.cast(numbers, pa.string()), ""), "N": numbers}),
        big,
    )
    small = write_csv(tmp_path / "small.csv", {"ID": ["a"], "N": [1]})
    with platform.db.session() as session:
        job_id = submit_file(session, stew, settings, big, table="jobs.big", policy="keep-all").id
        other = submit_file(session, SYSTEM, settings, small, table="jobs.small", policy="keep-all").id
        session.get(IngestJob, other).created_by = "system:landing"

    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    sign_in(page, url, "/jobs", user="stew")
    page.wait_for_selector(f'tr[data-job="{other}"]')
    page.check("#f-mine")
    page.wait_for_selector(f'tr[data-job="{other}"]', state="detached")
    assert page.locator(f'tr[data-job="{job_id}"]').count() == 1, "own jobs stay listed"

    result: list[object] = []
    worker = threading.Thread(target=lambda: result.append(run_one(settings, platform.db, "w", job_id)))
    worker.start()
    try:
        running = page.locator(f'tr[data-job="{job_id}"][data-state="running"]')
        running.wait_for(timeout=60_000)
        assert "Cancel" in running.inner_text()
        running.locator("button.cancel").click()
        deadline = time.monotonic() + 90
        while _state(platform, job_id) not in ("cancelled", "succeeded", "failed", "quarantined"):
            assert time.monotonic() < deadline, (_state(platform, job_id), page.inner_text("#action-status"))
            time.sleep(0.2)
        assert _state(platform, job_id) == "cancelled", (result, page.inner_text("#action-status"))
        page.wait_for_selector(f'tr[data-job="{job_id}"][data-state="cancelled"]', timeout=30_000)
        status = page.inner_text("#action-status")
        assert "stopping" in status or "cancelled" in status
        row = page.locator(f'tr[data-job="{job_id}"]')
        assert "cancelled" in row.inner_text() and row.locator("button.retry").count() == 1
    finally:
        worker.join(120)
    assert result == [(job_id, "cancelled")]
    with platform.db.session() as session:
        job = session.get(IngestJob, job_id)
        assert job.state == "cancelled" and job.reason["code"] == "cancelled"
    page.context.close()

    scientist = browser.new_context().new_page()
    sign_in(scientist, url, "/", user="ada")
    assert scientist.locator('nav a[href="/jobs"]').count() == 0
    response = scientist.goto(f"{url}/jobs")
    assert response is not None and response.status == 403
    scientist.context.close()


def test_jobs_page_and_filter_over_http(sqlite_platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    platform = sqlite_platform
    add_policy(platform)
    platform.add_user("stew", "steward")
    small = write_csv(tmp_path / "s.csv", {"ID": ["a"], "N": [1]})
    with platform.db.session() as session:
        stew = Principal.system("stew")
        mine = submit_file(session, stew, platform.settings, small, table="j.a", policy="keep-all")
        theirs = submit_file(session, SYSTEM, platform.settings, small, table="j.b", policy="keep-all")
        mine_id, theirs_id = mine.id, theirs.id
    client = platform.as_user("stew")
    every = {j["id"] for j in client.get("/api/v1/ingest/jobs").json()}
    assert {mine_id, theirs_id} <= every
    only = client.get("/api/v1/ingest/jobs", params={"created_by": "stew"}).json()
    assert [j["id"] for j in only] == [mine_id]
    cancelled = client.post(f"/api/v1/ingest/jobs/{mine_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    platform.add_user("ada", "scientist")
    assert platform.as_user("ada").get("/api/v1/ingest/jobs").status_code == 403
    # the steward's review of a kept file ends with Delete file: gone, the job stays, audited
    kept = client.get(f"/api/v1/ingest/jobs/{mine_id}").json()
    assert kept["state"] == "cancelled" and kept["file_kept"] is True
    with platform.db.session() as session:
        stored = Path(session.get(IngestJob, mine_id).raw_path)
    assert stored.exists()
    assert platform.as_user("ada").delete(f"/api/v1/ingest/jobs/{mine_id}/file").status_code == 403
    deleted = client.delete(f"/api/v1/ingest/jobs/{mine_id}/file")
    assert deleted.status_code == 200 and deleted.json()["file_kept"] is False, deleted.text
    assert not stored.exists() and deleted.json()["sha256"] == kept["sha256"]
    assert client.delete(f"/api/v1/ingest/jobs/{mine_id}/file").status_code == 409
    assert client.post(f"/api/v1/ingest/jobs/{mine_id}/retry").status_code == 409
    queued = client.delete(f"/api/v1/ingest/jobs/{theirs_id}/file")
    assert queued.status_code == 409, "a queued job: nothing to delete"
    with platform.db.session() as session:
        from sqlalchemy import select

        from datalibrary.audit.models import AuditEvent

        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "ingest.file-deleted")).one()
        assert event.actor == "stew" and event.details["job"] == mine_id
