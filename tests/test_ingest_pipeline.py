"""The ingestion pipeline end to end on real parts: SQLite/PostgreSQL, the local warehouse."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from datalibrary.audit.models import AuditEvent
from datalibrary.ingest.models import IngestJob
from datalibrary.lake.catalog import open_lake
from datalibrary.lake.planning import plan_table
from tests.helpers import Platform
from tests.lake_helpers import add_policy, ingest, read_table, write_csv


def test_csv_lands_as_one_snapshot_with_provenance(platform: Platform, tmp_path: Path) -> None:
    add_policy(platform)
    source = write_csv(tmp_path / "lb.csv", {"USUBJID": ["S1", "S2", "S3"], "LBORRES": [1.5, 2.5, None]})
    job_id, state = ingest(platform, source, "study1.lb")
    assert state == "succeeded"
    table = read_table(platform, "study1.lb")
    assert table.num_rows == 3 and table.column_names == ["USUBJID", "LBORRES"]
    plan = plan_table(open_lake(platform.settings), "study1.lb")
    iceberg = open_lake(platform.settings).load(
        __import__("datalibrary.lake.catalog", fromlist=["x"]).parse_table_name("study1.lb")
    )
    summary = iceberg.current_snapshot().summary.additional_properties
    assert summary["datalibrary.job-id"] == job_id
    assert summary["datalibrary.policy"] == "keep-all" and summary["datalibrary.policy-version"] == "1"
    assert len(iceberg.snapshots()) == 1 and plan.row_count == 3
    with platform.db.session() as session:
        job = session.get(IngestJob, job_id)
        assert job.rows_written == 3 and job.snapshot_id == plan.snapshot_id
        assert not Path(job.raw_path).exists(), "the raw landing copy is deleted after the commit"
        actions = session.scalars(select(AuditEvent.action)).all()
    assert "ingest.submit" in actions and "ingest.commit" in actions
