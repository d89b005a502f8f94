"""Retry of a quarantined file after a policy fix, through the API: the retry takes the
policy's current version, the audit entry names the old and new versions, and the file
reaches the lake without the dropped column."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from datalibrary.audit.models import AuditEvent
from datalibrary.ingest.worker import run_one
from tests.helpers import Platform
from tests.lake_helpers import add_policy, ingest, read_table, write_csv

VITALS = "name: vitals\nversion: {v}\ncolumns:\n  USUBJID: keep\n  VSORRES: keep\n{extra}"


def test_quarantined_file_retried_after_policy_fix(platform: Platform, tmp_path: Path) -> None:
    add_policy(platform, VITALS.format(v=1, extra=""))
    bad = write_csv(tmp_path / "vs.csv", {"USUBJID": ["S1"], "VSORRES": [1], "SSN": ["123-45-6789"]})
    job_id, state = ingest(platform, bad, "demo.vs", policy="vitals")
    assert state == "quarantined"
    platform.add_user("stew", "steward")
    stew = platform.as_user("stew")
    refused = stew.post(f"/api/v1/ingest/jobs/{job_id}/retry")
    assert refused.status_code == 202 or refused.status_code == 200, refused.text  # allowed, same policy
    assert run_one(platform.settings, platform.db, "w", job_id) == (job_id, "quarantined")

    add_policy(platform, VITALS.format(v=2, extra="  SSN: drop\n"))
    retried = stew.post(f"/api/v1/ingest/jobs/{job_id}/retry")
    assert retried.status_code in (200, 202), retried.text
    assert retried.json()["state"] == "queued" and retried.json()["policy"]["version"] == "2"
    assert run_one(platform.settings, platform.db, "w", job_id) == (job_id, "succeeded")
    table = read_table(platform, "demo.vs")
    assert table.num_rows == 1 and "SSN" not in table.column_names
    again = stew.post(f"/api/v1/ingest/jobs/{job_id}/retry")
    assert again.status_code == 409  # only failed or quarantined jobs
    with platform.db.session() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == "ingest.retry")).all()
    assert [e.details["policy"] for e in events] == ["vitals@1", "vitals@2"]
    assert events[1].details["was"] == "quarantined" and events[1].actor == "stew"
